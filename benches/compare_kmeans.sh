#!/usr/bin/env bash
# Recluster fit time, Verbatim vs scikit-learn KMeans (n_init=4, as the four k-means starts of a fit), on the same
# synthetic vectors and k, in one run. Prints both times, the ratio (<1 means Verbatim is faster)
# and each NMI against the planted themes. Needs PyPI for the throwaway venv in benches/.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/kmeans-compare
mkdir -p "$dir"
if [ ! -x benches/.venv/bin/python ]; then
  python3 -m venv benches/.venv
fi
benches/.venv/bin/pip install -q scikit-learn numpy
ours=$(cargo bench --bench recluster -- --bench --dump "$dir" | tee /dev/stderr)
for spec in 10000:77 100000:100; do
  n=${spec%%:*}
  theirs=$(benches/.venv/bin/python - "$dir" "$n" <<'PY'
import sys, time, numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
d, n = sys.argv[1], int(sys.argv[2])
x = np.fromfile(f"{d}/vectors-{n}.f32", dtype="<f4").reshape(n, 384)
truth = np.loadtxt(f"{d}/truth-{n}.txt", dtype=int)
k = len(set(truth))
t = time.perf_counter()
km = KMeans(k, n_init=4, max_iter=100, random_state=0).fit(x)
print(f"{time.perf_counter() - t:.2f} {normalized_mutual_info_score(truth, km.labels_):.4f} {k}")
PY
)
  read -r secs nmi k <<<"$theirs"
  mine=$(echo "$ours" | awk -v n="$n" '$2=="n="n && $4=="(given):" {print $5}')
  ratio=$(python3 -c "print(f'{$mine / $secs:.2f}')")
  echo "n=$n k=$k: verbatim recluster ${mine} s, scikit-learn KMeans ${secs} s (NMI $nmi), ratio ${ratio}x"
done
