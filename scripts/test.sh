#!/usr/bin/env bash
# Installs what is missing, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The release artifacts first: a test installs them in a bare Debian root (ReleaseTests).
bash scripts/package.sh .build/dist
export COMFYQ_DIST="$PWD/.build/dist"
swift build --build-tests "$@"
swift test --skip-build "$@"
