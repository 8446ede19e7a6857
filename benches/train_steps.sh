#!/usr/bin/env bash
# Compares the training step of two verbatim binaries in one run, alternating A, B, A, B:
#   benches/train_steps.sh BIN_A BIN_B [DATA_DIR]   (default ../shared/data)
# Each leg trains on 9,600 texts of the committed branch's mix (300 steps of 32) and is stopped
# after step 200; it prints the wall time of steps 100–200 and the minor page faults and the user
# and kernel CPU ticks spent over them (/proc/PID/stat fields 10, 14, 15). Used for the heap-trim
# change (models/sentiment/HISTORY.md, session 44): build the binary before it (f1fe871) and after.
# Needs models/minilm; takes about 5 minutes a leg on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [DATA_DIR]" >&2; exit 2; }
data="${3:-../shared/data}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
stat_of() { awk '{print "faults", $10, "user", $14, "kernel", $15}' "/proc/$1/stat"; }
for bin in "$1" "$2" "$1" "$2"; do
  rm -rf "$scratch/out"
  "$bin" train sentiment --model-dir models/minilm --data "$data" --out "$scratch/out" --written-repeats 3 --outcome-repeats 3 \
    --review-titles --sst2-repeats 1 --epochs 1 --limit 9600 --seed 44 > "$scratch/log" 2>&1 &
  pid=$!
  until grep -q "step 100/" "$scratch/log" || ! kill -0 $pid 2>/dev/null; do sleep 1; done
  before=$(stat_of $pid); t0=$(date +%s.%N)
  until grep -q "step 200/" "$scratch/log" || ! kill -0 $pid 2>/dev/null; do sleep 1; done
  after=$(stat_of $pid); t1=$(date +%s.%N)
  echo "$bin: steps 100-200 in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s; at step 100: $before; at step 200: $after"
  kill $pid; wait $pid 2>/dev/null || true
done
