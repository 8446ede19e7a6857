#!/usr/bin/env python3
"""Would a roll-up of themes into topics by centroid similarity work? On a simulated workspace's
database (`verbatim demo --no-serve`), groups the active themes by average-linkage agglomeration
of (a) their stored centroids and (b) the mean of their segments' own embeddings (without the
response context), at several cosine thresholds, and scores each grouping against the planted
topics: segment-weighted purity, and over how many groups each topic's themes spread.

    python3 benches/theme_rollup.py verbatim.db [src/simulate.rs]

Standard library only; not needed by the build or the tests."""
import collections, math, sqlite3, struct, sys

import planted_topics

db = sqlite3.connect(sys.argv[1])
topics = planted_topics.load(sys.argv[2] if len(sys.argv) > 2 else "src/simulate.rs")

def planted(text):
    return planted_topics.planted(topics, text)

def unit(v):
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]

def floats(blob):
    return struct.unpack("<%df" % (len(blob) // 4), blob)

version = db.execute("SELECT active_version FROM theme_state WHERE workspace = 'default'").fetchone()[0]
centroid = {t: unit(floats(b)) for t, b in db.execute(
    "SELECT theme_id, centroid FROM themes WHERE workspace = 'default' AND version = ? AND theme_id > 0", (version,))}
members, sums = collections.defaultdict(list), {}
for t, text, blob in db.execute(
        "SELECT s.theme_id, s.text, s.embedding FROM segments s JOIN responses r ON r.id = s.response "
        "WHERE r.workspace = 'default' AND s.theme_version = ? AND s.theme_id > 0", (version,)):
    members[t].append(planted(text))
    e = floats(blob)
    sums[t] = [a + b for a, b in zip(sums[t], e)] if t in sums else list(e)
ids = sorted(t for t in centroid if members[t])
own = {t: unit(sums[t]) for t in ids}
major = {t: collections.Counter(members[t]).most_common(1)[0][0] for t in ids}

def groups(vec, threshold):
    """Average linkage (UPGMA) until no two groups are closer than `threshold` (mean cosine)."""
    sim = {(a, b): sum(x * y for x, y in zip(vec[a], vec[b])) for a in ids for b in ids if a < b}
    clusters = {t: [t] for t in ids}
    link = dict(sim)
    while len(clusters) > 1:
        (a, b), s = max(link.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
        if s < threshold:
            break
        na, nb = len(clusters[a]), len(clusters[b])
        clusters[a] += clusters.pop(b)
        for c in clusters:
            if c == a:
                continue
            ka, kb = (min(a, c), max(a, c)), (min(b, c), max(b, c))
            link[ka] = (na * link[ka] + nb * link[kb]) / (na + nb)
        link = {k: v for k, v in link.items() if b not in k}
    return list(clusters.values())

total = sum(len(members[t]) for t in ids)
print(f"{len(ids)} themes; themes by their segments' planted topic: {dict(collections.Counter(major.values()))}")
for name, vec in (("stored centroids", centroid), ("segments' own embeddings", own)):
    same = [sum(x * y for x, y in zip(vec[a], vec[b])) for a in ids for b in ids if a < b and major[a] == major[b]]
    diff = sorted(sum(x * y for x, y in zip(vec[a], vec[b])) for a in ids for b in ids if a < b and major[a] != major[b])
    q = lambda xs, p: sorted(xs)[int(p * (len(xs) - 1))]
    print(f"{name}: same topic median cosine {q(same, 0.5):.2f}; different topics median {q(diff, 0.5):.2f}, 90th {q(diff, 0.9):.2f}, 99th {q(diff, 0.99):.2f}")
    for threshold in (0.35, 0.40, 0.45, 0.50):
        found = groups(vec, threshold)
        pure = sum(collections.Counter(p for t in g for p in members[t]).most_common(1)[0][1] for g in found) / total
        spread = collections.defaultdict(set)
        for i, g in enumerate(found):
            for t in g:
                spread[major[t]].add(i)
        print(f"  cosine >= {threshold:.2f}: {len(found)} groups, purity {pure:.3f}, groups per topic {dict(sorted((k, len(v)) for k, v in spread.items()))}")
