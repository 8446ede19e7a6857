#!/usr/bin/env python3
"""How far does a theme's score impact move week over week in each survey's points? The alert
thresholds (3 NPS points, 2 CSAT points, 0.05 CES) come from this measurement: the same answers,
read once as NPS 0–10, once as CSAT 1–5 and once as CES 1–7 (each score keeps its position on its
scale), are imported into three databases, reclustered and reported; the weekly moves of every
theme's impact are compared at the median, 90th and 99th percentile.

    verbatim simulate --dir sim
    python3 benches/impact_moves.py target/release/verbatim sim OUT_DIR [--model-dir DIR] [...]

Extra arguments go to every verbatim call (before the subcommand). Takes a few minutes (three
imports of the simulated workspace's 4,000 responses). Standard library only; not needed by the
build or the tests."""
import csv, json, os, subprocess, sys

binary, sim, out, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
os.makedirs(out, exist_ok=True)
SCALES = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}
rows = list(csv.DictReader(open(os.path.join(sim, "responses.csv"))))
end = max(r["submitted_at"] for r in rows)


def verbatim(db, *args):
    subprocess.run([binary, "--db", db, *extra, *args], check=True, stdout=subprocess.DEVNULL)


def moves(report):
    """|impact this week − impact the week before| per (theme, week), where both exist."""
    out = {}
    for t in json.load(open(report))["themes"]:
        for a, b in zip(t["trend"], t["trend"][1:]):
            if a["impact"] is not None and b["impact"] is not None:
                out[(t["theme_id"], b["from"])] = abs(b["impact"] - a["impact"])
    return out


readings = {}
for survey, (lo, hi) in SCALES.items():
    path, db, report = (os.path.join(out, f"{survey.lower()}{ext}") for ext in (".csv", ".db", ".json"))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=rows[0].keys())
        w.writeheader()
        for r in rows:
            position = (float(r["score"]) - float(r["scale_min"])) / (float(r["scale_max"]) - float(r["scale_min"]))
            w.writerow(dict(r, survey=survey, scale_min=lo, scale_max=hi, score=round(lo + position * (hi - lo))))
    if not os.path.exists(report):
        verbatim(db, "import-accounts", os.path.join(sim, "accounts.csv"))
        verbatim(db, "import", path)
        verbatim(db, "recluster")
        verbatim(db, "report", "--period", "28d", "--until", end, "--output", report)
    readings[survey] = moves(report)

common = sorted(set.intersection(*(set(m) for m in readings.values())))
quantile = lambda v, p: sorted(v)[min(len(v) - 1, int(p * len(v)))]
print(f"{len(common)} theme-weeks with an impact in every reading")
for survey, m in readings.items():
    values = [m[k] for k in common]
    qs = [quantile(values, p) for p in (0.5, 0.9, 0.99)]
    print(f"{survey:5} moves p50 / p90 / p99 = " + " / ".join(f"{q:.4f}" for q in qs) + f", max {max(values):.4f}")
nps = [readings["NPS"][k] for k in common]
for survey in ("CSAT", "CES"):
    values = [readings[survey][k] for k in common]
    ratios = [quantile(nps, p) / quantile(values, p) for p in (0.5, 0.9, 0.99)]
    print(f"NPS / {survey} at p50 / p90 / p99: " + " / ".join(f"{r:.2f}" for r in ratios))
