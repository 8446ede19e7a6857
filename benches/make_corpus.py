"""Writes the fixed benchmark corpus (one text per line) from ../shared: the first 384 Banking77
questions (short, like most survey sentences) and the first 128 non-empty clothing reviews (long,
some past 256 tokens). Usage: make_corpus.py SHARED_DIR OUT_FILE"""
import csv
import sys

shared, out = sys.argv[1], sys.argv[2]
texts = []
with open(f"{shared}/data/banking77/train.csv", newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        texts.append(row["text"])
        if len(texts) == 384:
            break
reviews = 0
with open(f"{shared}/data/clothing_reviews/reviews.csv", newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        text = " ".join((row["Review Text"] or "").split())
        if text:
            texts.append(text)
            reviews += 1
            if reviews == 128:
                break
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(texts) + "\n")
print(f"corpus: {len(texts)} texts -> {out}")
