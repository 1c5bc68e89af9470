#!/usr/bin/env bash
# Installs what comfyq needs to build and test, if it is missing. Safe to run again.
# Debian/Ubuntu: system libraries through apt-get (as root, or through sudo).
set -euo pipefail

packages=(pkg-config liblua5.4-dev libsqlite3-dev libssl-dev zlib1g-dev libpq-dev)
# scripts/package.sh: libcurl to link the static Foundation against, patchelf and binutils to
# lay the libraries out beside the binary, and (for its test) debootstrap for a bare Debian root.
if [ -n "${COMFYQ_SETUP_PACKAGE:-}" ]; then packages+=(libcurl4-openssl-dev patchelf binutils python3); fi
if [ -z "${COMFYQ_SETUP_BUILD_ONLY:-}" ]; then  # scripts/install.sh needs only the above
    packages+=(python3 python3-websockets python3-pil openssl)
    # Test-only: a real browser for the web pages (headless), and a font for its screenshots.
    packages+=(chromium fonts-dejavu-core)
    # Test-only: a PostgreSQL server, for the throwaway clusters the queue tests start and remove.
    packages+=(postgresql)
    # Test-only: the shells whose completions are tested, and man to render the man page.
    packages+=(zsh fish man-db)
    # Test-only: the release artifacts (scripts/package.sh) proven in a bare Debian root.
    packages+=(libcurl4-openssl-dev patchelf binutils debootstrap)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for package in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "comfyq setup: installing ${missing[*]}" >&2
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
elif [ "$(uname)" = "Darwin" ]; then
    command -v pkg-config >/dev/null && pkg-config --exists lua5.4 || {
        echo "comfyq setup: on macOS run: brew install lua pkg-config sqlite" >&2
        exit 1
    }
fi

# Swift 6 toolchain: not packaged for Debian 12, so it cannot be apt-installed here.
if ! command -v swift >/dev/null 2>&1; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin "$HOME/.local/share/swiftly/bin"; do
        if [ -x "$candidate/swift" ]; then
            export PATH="$candidate:$PATH"
            break
        fi
    done
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "comfyq setup: no Swift toolchain found. Install Swift 6 from https://www.swift.org/install/linux/ (swiftly), then run this again." >&2
    exit 1
fi

# Test-only: ComfyUI's own frontend (comfyui-frontend-package from PyPI, pinned), which the
# simulator serves so the extension is tested in the real page. Its static folder goes to
# /usr/local/share/comfyq-test/ (the tests look there, or at $COMFYQ_TEST_FRONTEND). Only for
# scripts/test.sh (COMFYQ_SETUP_FRONTEND=1): the demo does not need it.
FRONTEND_VERSION=1.58.1
FRONTEND_SHA256=37912597537a731a8f421179618a736c24184c5bdbfa327f38b2fb7c291852d9
FRONTEND_DIR=/usr/local/share/comfyq-test/comfyui-frontend-package-$FRONTEND_VERSION
if [ -n "${COMFYQ_SETUP_FRONTEND:-}" ] && [ "$(uname)" = "Linux" ] && [ ! -f "$FRONTEND_DIR/static/index.html" ]; then
    echo "comfyq setup: installing comfyui-frontend-package $FRONTEND_VERSION (for the tests) in $FRONTEND_DIR" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    download=$(mktemp -d)
    if ! python3 -m pip --version >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    python3 -m pip download --quiet --no-deps --only-binary=:all: "comfyui-frontend-package==$FRONTEND_VERSION" -d "$download"
    wheel="$download/comfyui_frontend_package-$FRONTEND_VERSION-py3-none-any.whl"
    echo "$FRONTEND_SHA256  $wheel" | sha256sum --check --quiet
    python3 -m zipfile -e "$wheel" "$download/unpacked"
    $sudo mkdir -p "$FRONTEND_DIR"
    $sudo cp -R "$download/unpacked/comfyui_frontend_package/static" "$FRONTEND_DIR/static.new"
    $sudo rm -rf "$FRONTEND_DIR/static"
    $sudo mv "$FRONTEND_DIR/static.new" "$FRONTEND_DIR/static"
    rm -rf "$download"
fi
