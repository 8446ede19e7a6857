#!/usr/bin/env bash
# Retrains the sentiment branch with the settings and seed recorded in the committed branch's
# metrics.json, into a scratch directory, and checks that its dev figures match the committed
# ones within 0.5 points (issue 3's reproducibility criterion):
#   tests/reproduce_sentiment.sh [DATA_DIR] [OUT_DIR]   (defaults ../shared/data, a temp dir)
# A branch averaged from others (`train sentiment --average`, its metrics.json lists them as
# `ingredients`) is rebuilt the same way: each ingredient retrained into OUT_DIR/ingredient-N with
# its own recorded settings, then averaged into OUT_DIR.
# About as long as the trainings it repeats (60–75 minutes each on an idle 2-core machine): not
# part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
out="${2:-$(mktemp -d)}"
committed=models/sentiment/metrics.json
cargo build --release --quiet
# One line of training options per branch to train: the ingredients, or the branch itself.
mapfile -t runs < <(python3 - "$committed" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for b in m.get("ingredients") or [m]:
    a = f"--layers {b['layers']} --epochs {b['epochs']} --lr {b['learning_rate']} --max-tokens {b['max_tokens']} --seed {b['seed']}"
    a += f" --written-repeats {b.get('written_repeats', 0)} --outcome-repeats {b.get('outcome_repeats', 0)}"
    print(a if b.get("customer_data") else a + " --without-customer-data")
PY
)
if [ "${#runs[@]}" -eq 1 ]; then
    echo "retraining into $out with ${runs[0]}"
    # shellcheck disable=SC2086 # the line is a list of options
    target/release/verbatim train sentiment --data "$data" --out "$out" ${runs[0]}
else
    average=()
    for i in "${!runs[@]}"; do
        echo "retraining ingredient $i into $out/ingredient-$i with ${runs[$i]}"
        # shellcheck disable=SC2086
        target/release/verbatim train sentiment --data "$data" --out "$out/ingredient-$i" ${runs[$i]}
        average+=(--average "$out/ingredient-$i")
    done
    target/release/verbatim train sentiment --data "$data" --out "$out" "${average[@]}"
fi
python3 - "$committed" "$out/metrics.json" <<'PY'
import json, sys
was, now = (json.load(open(p))["dev"] for p in sys.argv[1:3])
bad = []
for key in ["sst2_accuracy", "reviews_macro_f1", "reviews_accuracy"]:
    diff = 100 * (now[key] - was[key])
    print(f"{key}: committed {was[key]:.4f}, retrained {now[key]:.4f} ({diff:+.2f} points)")
    if abs(diff) > 0.5:
        bad.append(key)
if bad:
    sys.exit(f"not reproduced within 0.5 points: {', '.join(bad)}")
print("reproduced within 0.5 points")
PY
