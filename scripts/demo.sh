#!/usr/bin/env bash
# Installs what is missing, builds comfyq (release), and runs the example: validate the example
# jobs and queue one (in a throwaway queue), start the built-in ComfyUI simulator in the
# background and check it with `comfyq doctor`, then replay a recorded hires-fix session (two
# samplers) through the progress engine.
# (Once the runner lands, this runs the example batch on the simulator instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product comfyq
bin=$(swift build -c release --show-bin-path)/comfyq
output=$(mktemp -d)
log="$output/simulator.log"
"$bin" simulate --port 0 --output "$output" --step-time 20ms --load-time 200ms >"$log" 2>&1 &
simulator=$!
trap 'kill -INT $simulator 2>/dev/null; wait $simulator 2>/dev/null; rm -rf "$output"' EXIT
for _ in $(seq 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
export COMFYQ_DB="$output/queue.db"
echo "== comfyq validate jobs/*.json"
"$bin" validate jobs/*.json
echo
echo "== comfyq add jobs/seed-sweep.json && comfyq status"
"$bin" add jobs/seed-sweep.json
"$bin" status
echo
echo "== comfyq doctor --server $url"
"$bin" doctor --server "$url"
echo
echo "== comfyq replay Tests/Fixtures/traces/two-samplers.jsonl"
"$bin" replay Tests/Fixtures/traces/two-samplers.jsonl
