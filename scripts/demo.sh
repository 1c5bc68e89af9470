#!/usr/bin/env bash
# Installs what is missing, builds comfyq (release), and runs the example batch on the built-in
# ComfyUI simulator: the seed sweep, prompt matrix, hires-fix and img2img jobs in jobs/, served in
# a browser while they run, outputs under ./out (each job's page and contact sheet too), with
# the timings-csv.lua hook writing out/timings.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product comfyq
bin=$(swift build -c release --show-bin-path)/comfyq
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export COMFYQ_DB="$work/queue.db"   # a throwaway queue, so the demo can run again and again
mkdir -p out
# (jobs/ui-workflow.json is a workflow as ComfyUI's Save writes it: converting it needs a
# server's node definitions, which the run below has from the simulator it starts.)
echo "== comfyq validate --no-preflight (every job in the API format)"
"$bin" validate --no-preflight jobs/seed-sweep.json jobs/prompt-matrix.json jobs/hires-fix.json jobs/img2img-folder.json jobs/*.lua
echo
echo "== comfyq run --simulate --serve 127.0.0.1:0 jobs/seed-sweep.json jobs/prompt-matrix.json jobs/hires-fix.json jobs/img2img-folder.json jobs/ui-workflow.json --hook scripts/timings-csv.lua"
"$bin" run --simulate --serve 127.0.0.1:0 jobs/seed-sweep.json jobs/prompt-matrix.json jobs/hires-fix.json jobs/img2img-folder.json jobs/ui-workflow.json \
  --hook scripts/timings-csv.lua --hook-opt timings-csv.file=out/timings.csv --no-user-hooks
echo
echo "== comfyq status"
"$bin" status
echo
echo "outputs and their sidecars:"
ls out/seed-sweep out/hires-fix out/img2img-folder | head -40
echo
echo "each job's page (open in a browser, no server needed) and its contact sheet:"
for job in seed-sweep prompt-matrix hires-fix img2img-folder ui-workflow; do echo "  out/$job/index.html  out/$job/contact-sheet.png"; done
echo "while a batch runs, 'comfyq serve' (or run --serve ADDR:PORT) shows it live: http://127.0.0.1:8190/"
echo
echo "out/timings.csv (from the timings-csv.lua hook):"
head -4 out/timings.csv
