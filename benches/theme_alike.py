#!/usr/bin/env python3
"""How often a theme's most alike theme (centroid cosine, as `verbatim themes` and ListThemes list
it) holds the same planted topic, on a simulated workspace's database (`verbatim demo --no-serve`).

    python3 benches/theme_alike.py verbatim.db [src/simulate.rs]

A theme's topic is read two ways: the planted topic of most of its segments, and of most of its
quotes. Standard library only; not needed by the build or the tests."""
import collections, json, math, sqlite3, struct, sys

import planted_topics

db = sqlite3.connect(sys.argv[1])
topics = planted_topics.load(sys.argv[2] if len(sys.argv) > 2 else "src/simulate.rs")

def planted(text):
    return planted_topics.planted(topics, text)

def majority(texts):
    c = collections.Counter(p for p in map(planted, texts) if p)
    return c.most_common(1)[0][0] if c else None

version = db.execute("SELECT active_version FROM theme_state WHERE workspace = 'default'").fetchone()[0]
centroid, quotes = {}, {}
for tid, blob, q in db.execute("SELECT theme_id, centroid, quotes FROM themes WHERE workspace = 'default' AND version = ? AND theme_id != 0", (version,)):
    v = struct.unpack("<%df" % (len(blob) // 4), blob)
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    centroid[tid], quotes[tid] = [x / norm for x in v], json.loads(q)
members = collections.defaultdict(list)
for tid, text in db.execute("SELECT s.theme_id, s.text FROM segments s JOIN responses r ON r.id = s.response WHERE r.workspace = 'default' AND s.theme_version = ?", (version,)):
    members[tid].append(text)
by_segments = {t: majority(members[t]) for t in centroid}
by_quotes = {t: majority(quotes[t]) for t in centroid}
same = collections.Counter()
for t in centroid:
    alike = max((u for u in centroid if u != t), key=lambda u: sum(a * b for a, b in zip(centroid[t], centroid[u])))
    same["segments"] += by_segments[t] is not None and by_segments[t] == by_segments[alike]
    same["quotes"] += by_quotes[t] is not None and by_quotes[t] == by_quotes[alike]
n = len(centroid)
print(f"{n} themes; the most alike theme holds the same planted topic: by segments {same['segments'] / n:.0%}, by quotes {same['quotes'] / n:.0%}")
