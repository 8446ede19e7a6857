#!/usr/bin/env python3
"""Do a report's quotes say what their theme is about? Compares, on one database and one report,
the report's quotes (the most typical sentences in the theme's tone) with the rule they replaced
(the most negative sentences first when the theme leans negative, else the most positive).

    verbatim --db verbatim.db report --period 28d --output report.json
    python3 benches/report_quotes.py verbatim.db report.json [src/simulate.rs]

Two readings per rule, over the report's themes: the share of quotes that hold one of the theme's
label words, and, on a simulated workspace (`verbatim demo`), the share written for the planted
topic most of the theme's period segments were written for. Standard library only; not needed by
the build or the tests."""
import collections, datetime, json, re, sqlite3, sys

import planted_topics

db, report = sqlite3.connect(sys.argv[1]), json.load(open(sys.argv[2]))
topics = planted_topics.load(sys.argv[3] if len(sys.argv) > 3 else "src/simulate.rs")
seconds = lambda s: int(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())
start, end = seconds(report["period"]["from"]), seconds(report["period"]["to"])
workspace = report["workspace"]

period = collections.defaultdict(list)
for tid, text, score, at in db.execute(
        """SELECT s.theme_id, s.text, s.sentiment_positive - s.sentiment_negative, r.submitted_at
           FROM segments s JOIN responses r ON r.id = s.response
           WHERE r.workspace = ? AND s.theme_version = (SELECT active_version FROM theme_state WHERE workspace = ?)
           ORDER BY s.response, s.idx""", (workspace, workspace)):
    if start <= at < end:
        period[tid].append((text, score or 0.0))


def most_extreme(segments, n=3):
    sign = 1 if sum(s for _, s in segments) <= 0 else -1
    out = []
    for text, _ in sorted(segments, key=lambda x: sign * x[1]):
        if len(out) == n:
            break
        if text.lower() not in (q.lower() for q in out):
            out.append(text)
    return out


words = lambda text: set(re.findall(r"[a-z0-9']+", text.lower()))
rules = {"report (typical in tone)": lambda t: t["quotes"], "most extreme first": lambda t: most_extreme(period[t["theme_id"]])}
simulated = any(planted_topics.planted(topics, t) for seg in period.values() for t, _ in seg[:5])
for name, quotes_of in rules.items():
    labelled = on_topic = n = 0
    for theme in report["themes"]:
        label = words(theme["label"].replace("/", " "))
        major = collections.Counter(planted_topics.planted(topics, t) for t, _ in period[theme["theme_id"]]).most_common(1)[0][0]
        for q in quotes_of(theme):
            n += 1
            labelled += bool(words(q) & label)
            on_topic += planted_topics.planted(topics, q) == major
    line = f"{name:26} {n} quotes: {labelled / n:.1%} hold a label word"
    print(line + (f", {on_topic / n:.1%} from the theme's main planted topic" if simulated else ""))
