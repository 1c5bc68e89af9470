#!/usr/bin/env bash
# Installs what is missing, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
COMFYQ_SETUP_FRONTEND=1 source scripts/setup.sh
# The release artifacts first: a test installs them in a bare Debian root (ReleaseTests).
bash scripts/package.sh .build/dist
export COMFYQ_DIST="$PWD/.build/dist"
swift build --build-tests
if [ $# -gt 0 ]; then
    swift test --skip-build "$@"
else
    # The release test (a bare Debian root, chroot, two installs and runs) loads the machine for
    # a minute: it runs after the rest, so the other tests do not share the machine with it.
    swift test --skip-build --skip ReleaseTests
    swift test --skip-build --filter ReleaseTests
fi
