"""Theme quality on a simulated workspace: each segment's planted theme (found by its sentence in
src/simulate.rs) against the theme Verbatim gave it. A measurement script (README, Themes, Known
limits); nothing in the build or the tests needs it.

    verbatim demo --dir demo --no-serve            # or simulate + import + recluster
    verbatim export-assignments --output assignments.csv
    python3 benches/simulated_themes.py assignments.csv src/simulate.rs

Prints the number of themes and of distinct labels, the segment-level NMI against the planted
themes, purity, how many themes hold 90% of each planted theme's segments, and how many
two-segment verbatims had both segments put in one theme."""
import csv, sys, math
from collections import Counter, defaultdict

import planted_topics

rows = list(csv.DictReader(open(sys.argv[1])))
topics = planted_topics.load(sys.argv[2])
def planted(t):
    return planted_topics.planted(topics, t)
pairs = [(planted(r["segment_text"]), r["theme_id"]) for r in rows]
pairs = [(p, t) for p, t in pairs if p]
def nmi(a, b):
    n = len(a); ca, cb, cab = Counter(a), Counter(b), Counter(zip(a, b))
    mi = sum(v / n * math.log(v * n / (ca[x] * cb[y])) for (x, y), v in cab.items())
    h = lambda c: -sum(v / n * math.log(v / n) for v in c.values())
    return 2 * mi / (h(ca) + h(cb))
truth, pred = [p for p, _ in pairs], [t for _, t in pairs]
by_theme = defaultdict(Counter)
for p, t in pairs:
    by_theme[t][p] += 1
purity = sum(c.most_common(1)[0][1] for c in by_theme.values()) / len(pairs)
# Per planted theme, how many themes hold 90% of its segments.
spread = {}
for name in sorted(set(truth)):
    counts = sorted((c[name] for c in by_theme.values() if c[name]), reverse=True)
    total, acc, k = sum(counts), 0, 0
    for v in counts:
        acc += v; k += 1
        if acc >= 0.9 * total: break
    spread[name] = k
by_response = defaultdict(list)
for r in rows:
    by_response[r["response_id"]].append(r["theme_id"])
two = [t for t in by_response.values() if len(t) == 2]
together = sum(1 for t in two if t[0] == t[1])
distinct_ids = len(set(r["theme_id"] for r in rows))
distinct_labels = len(set(r["theme_label"] for r in rows))
print(f"themes {distinct_ids} (distinct labels {distinct_labels}), segment NMI {nmi(truth, pred):.3f}, purity {purity:.3f}")
print(f"themes holding 90% of each planted theme: {spread}")
print(f"two-segment verbatims with both segments in one theme: {together} of {len(two)}")
