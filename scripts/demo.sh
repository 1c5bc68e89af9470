#!/usr/bin/env bash
# Installs what is missing, builds comfyq (release), and runs the example batch on the built-in
# ComfyUI simulator: the seed sweep and the hires-fix jobs in jobs/, outputs under ./out.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product comfyq
bin=$(swift build -c release --show-bin-path)/comfyq
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export COMFYQ_DB="$work/queue.db"   # a throwaway queue, so the demo can run again and again
echo "== comfyq validate jobs/*.json"
"$bin" validate jobs/*.json
echo
echo "== comfyq run --simulate jobs/seed-sweep.json jobs/hires-fix.json"
"$bin" run --simulate jobs/seed-sweep.json jobs/hires-fix.json
echo
echo "== comfyq status"
"$bin" status
echo
echo "outputs and their sidecars:"
ls out/seed-sweep out/hires-fix | head -20
