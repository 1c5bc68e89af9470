#!/usr/bin/env bash
# Installs what is missing, builds comfyq (release), and runs the example: a recorded ComfyUI
# session (a hires-fix workflow with two samplers) replayed through the progress engine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product comfyq
bin=$(swift build -c release --show-bin-path)/comfyq
"$bin" replay Tests/Fixtures/traces/two-samplers.jsonl
