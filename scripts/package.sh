#!/usr/bin/env bash
# Makes comfyq's release artifacts from this checkout, in OUT (default dist/):
#   comfyq-VERSION-linux-ARCH.tar.gz
#       comfyq-VERSION/bin/comfyq                    the program (Swift runtime and Foundation linked in)
#       comfyq-VERSION/lib/comfyq/*.so.*             the C libraries it needs beyond glibc and the C++
#                                                    runtime (Lua, SQLite, libpq, OpenSSL, zlib, libcurl
#                                                    and theirs), found beside it ($ORIGIN)
#       comfyq-VERSION/share/…                       man page, bash/zsh/fish completions, hook types,
#                                                    the systemd user unit (as scripts/install.sh lays them out)
#   comfyq-VERSION-py3-none-manylinux_X_Y_ARCH.whl   the same, as a Python wheel: `pip install FILE.whl`
#                                                    puts comfyq on the PATH of the environment
# Installs what is missing to build (scripts/setup.sh, with libcurl's headers and patchelf).
# Prints each artifact with its size. The version is ComfyQ.version; the binary also carries the
# commit and the date (`comfyq --version`).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

COMFYQ_SETUP_BUILD_ONLY=1 COMFYQ_SETUP_PACKAGE=1 source scripts/setup.sh

version="$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/ComfyCLI/ComfyQ.swift)"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit-modified"
built="$(date -u +%Y-%m-%d)"
arch="$(uname -m)"

# The commit and date, compiled in for this build only (the file is not part of the sources).
stamp=Sources/ComfyCLI/BuildStamp.generated.swift
stage="$(mktemp -d)"
trap 'rm -f "$stamp"; rm -rf "$stage"' EXIT
cat > "$stamp" <<EOF
#if COMFYQ_STAMPED
enum BuildStamp {
    static let commit = "$commit"
    static let date = "$built"
}
#endif
EOF

scratch="${COMFYQ_PACKAGE_SCRATCH:-.build-release}"
flags=(-c release --static-swift-stdlib --product comfyq --scratch-path "$scratch" -Xswiftc -DCOMFYQ_STAMPED
    -Xlinker -lcurl -Xlinker -rpath -Xlinker '$ORIGIN/../lib/comfyq')
swift build "${flags[@]}"
binary="$(swift build "${flags[@]}" --show-bin-path)/comfyq"

root="$stage/comfyq-$version"
mkdir -p "$root/bin" "$root/lib/comfyq"
install -m 755 "$binary" "$root/bin/comfyq"
strip "$root/bin/comfyq"
# Every library the binary needs, but glibc's own and the C++ runtime, which every Linux has.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r name path; do
    case "$name" in
        libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | libutil.so.* | ld-linux* | \
            libstdc++.so.* | libgcc_s.so.*) continue ;;
    esac
    cp -L "$path" "$root/lib/comfyq/$name"
    chmod 644 "$root/lib/comfyq/$name"
    strip --strip-unneeded "$root/lib/comfyq/$name"
    patchelf --set-rpath '$ORIGIN' "$root/lib/comfyq/$name"  # each finds its own dependencies beside it
done
# Nothing may still come from the build machine's library folders but glibc and the C++ runtime.
missing="$(LD_LIBRARY_PATH= ldd "$root/bin/comfyq" | awk '$2 == "=>" { print $1, $3 }' |
    grep -vE '^(libc|libm|libpthread|libdl|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so|/lib/comfyq/' || true)"
[ -z "$missing" ] || { echo "comfyq package: not carried: $missing" >&2; exit 1; }

# The oldest glibc it runs on: the newest GLIBC_ symbol version the binary and its libraries ask for.
glibc="$(for file in "$root/bin/comfyq" "$root"/lib/comfyq/*; do objdump -T "$file"; done |
    grep -o 'GLIBC_[0-9]*\.[0-9]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -u | tail -1)"

share="$root/share"
mkdir -p "$share/man/man1" "$share/bash-completion/completions" "$share/zsh/site-functions" "$share/fish/vendor_completions.d" \
    "$share/comfyq/types"
"$root/bin/comfyq" man > "$share/man/man1/comfyq.1"
"$root/bin/comfyq" completions bash > "$share/bash-completion/completions/comfyq"
"$root/bin/comfyq" completions zsh > "$share/zsh/site-functions/_comfyq"
"$root/bin/comfyq" completions fish > "$share/fish/vendor_completions.d/comfyq.fish"
"$root/bin/comfyq" hook types > "$share/comfyq/types/comfyq.lua"
cp scripts/comfyq.service "$share/comfyq/comfyq.service"  # @BINDIR@: where bin/comfyq is (see README)

mkdir -p "$out"
tarball="$out/comfyq-$version-linux-$arch.tar.gz"
tar -C "$stage" --owner=0 --group=0 -czf "$tarball" "comfyq-$version"
wheel="$(python3 scripts/wheel.py "$root" "$out" "$version" "$glibc" "$arch")"

size() { du -h "$1" | cut -f1; }
echo "comfyq package: $("$root/bin/comfyq" --version); needs glibc $glibc or newer"
echo "  $tarball ($(size "$tarball"))"
echo "  $wheel ($(size "$wheel"))"
