#!/usr/bin/env bash
# Retrains the sentiment branch with the settings and seed recorded in the committed branch's
# metrics.json, into a scratch directory, and checks that its dev figures match the committed
# ones within 0.5 points (issue 3's reproducibility criterion):
#   tests/reproduce_sentiment.sh [DATA_DIR] [OUT_DIR]   (defaults ../shared/data, a temp dir)
# A branch averaged from others (`train sentiment --average`, its metrics.json lists them as
# `ingredients`) is rebuilt the same way: each ingredient retrained into OUT_DIR/ingredient-N with
# its own recorded settings (an ingredient that is itself a mean is rebuilt from its own
# ingredients, below it; a leaf whose settings were already trained is reused), then averaged into
# OUT_DIR. A branch trained on from another (`--init`, recorded as `init`) has that one rebuilt
# first, into OUT_DIR/init. The committed branch needs three trainings.
# About as long as the trainings it repeats (60–85 minutes each on an idle 2-core machine): not
# part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
out="${2:-$(mktemp -d)}"
committed=models/sentiment/metrics.json
cargo build --release --quiet
python3 - "$committed" "$data" "$out" <<'PY'
import json, subprocess, sys

committed, data, out = sys.argv[1:4]

def train(args, into):
    print(f"$ verbatim train sentiment --data {data} --out {into} {' '.join(args)}", flush=True)
    subprocess.run(["target/release/verbatim", "train", "sentiment", "--data", data, "--out", into, *args], check=True)

trained = {}  # leaf settings -> the directory already trained with them

def rebuild(m, into):
    """Trains the branch `m` describes into `into`, or rebuilds and averages its ingredients;
    returns the directory that holds it (a leaf trained earlier with the same settings is reused:
    the trainer is deterministic, and the committed tree holds the default run twice)."""
    if m.get("ingredients"):
        parts = [rebuild(ingredient, f"{into}/ingredient-{i}") for i, ingredient in enumerate(m["ingredients"])]
        train([a for part in parts for a in ("--average", part)], into)
        return into
    args = ["--layers", str(m["layers"]), "--epochs", str(m["epochs"]), "--lr", str(m["learning_rate"]),
            "--max-tokens", str(m["max_tokens"]), "--seed", str(m["seed"]),
            "--written-repeats", str(m.get("written_repeats", 0)), "--outcome-repeats", str(m.get("outcome_repeats", 0)),
            "--negative-review-repeats", str(m.get("negative_review_repeats", 0)),
            "--neutral-review-repeats", str(m.get("neutral_review_repeats", 0)),
            "--sst2-repeats", str(m.get("sst2_repeats", 0)),
            "--labelled-sentences", str(m.get("labelled_sentences", 0)),
            "--plain-repeats", str(m.get("plain_repeats", 0))]
    if not m.get("customer_data"):
        args.append("--without-customer-data")
    if m.get("review_titles"):
        args.append("--review-titles")
    if m.get("average_epochs"):
        args.append("--average-epochs")
    if m.get("init"):
        args += ["--init", rebuild(m["init"], f"{into}/init")]
    key = tuple(args)
    if key in trained:
        print(f"# {into}: same settings as {trained[key]}, reused", flush=True)
        return trained[key]
    train(args, into)
    trained[key] = into
    return into

was = json.load(open(committed))
rebuild(was, out)
now = json.load(open(f"{out}/metrics.json"))
bad = []
for key in ["sst2_accuracy", "reviews_macro_f1", "reviews_accuracy"]:
    a, b = was["dev"][key], now["dev"][key]
    diff = 100 * (b - a)
    print(f"{key}: committed {a:.4f}, retrained {b:.4f} ({diff:+.2f} points)")
    if abs(diff) > 0.5:
        bad.append(key)
if bad:
    sys.exit(f"not reproduced within 0.5 points: {', '.join(bad)}")
print("reproduced within 0.5 points")
PY
