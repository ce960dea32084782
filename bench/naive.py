"""The naive baseline: what a user would write without article-qa, one process per question.

`SCRIPT` is written to a temporary file and run with the benchmark's interpreter, so it is timed as
a whole process, exactly like `article-qa ask`. It does the same work the straightforward way:
sentence-transformers for the question vector, the saved FAISS index of the article (found through
the index folder's `index.json` sidecar), top 3 passages, then the shipped reader merged in PyTorch
and fed by transformers' AutoTokenizer, one passage at a time, and prints the best span.

Usage of the script: python naive.py QUESTION INDEX_FOLDER
"""

from __future__ import annotations

SCRIPT = r'''
import json
import sys
from pathlib import Path

import faiss
import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

from article_qa.index.article import load_article
from article_qa.index.embedding_model import resolve_model
from article_qa.qa.reader_loading import SHIPPED_READER, merged_network, shipped_config

MAX_ANSWER_TOKENS = 30


def main():
    question, folder = sys.argv[1], Path(sys.argv[2])
    text = load_article(None).text

    model_path = resolve_model(None).path
    encoder = SentenceTransformer(model_path, device="cpu")
    meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    vectors = faiss.read_index(str(folder / meta["files"]["dense"]["name"]))
    offsets = meta["passages"]
    query = encoder.encode([question], convert_to_numpy=True, normalize_embeddings=True).astype(np.float32)
    _, ids = vectors.search(query, 3)
    passages = [offsets[int(i)] for i in ids[0] if i >= 0]

    config = shipped_config()
    network = merged_network(model_path, SHIPPED_READER, config)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    best = (float("-inf"), 0, 0)
    for start, end in passages:
        enc = tokenizer(
            question, text[start:end], truncation="only_second",
            max_length=int(config.get("max_length", 384)), stride=int(config.get("stride", 128)),
            return_overflowing_tokens=True, return_offsets_mapping=True, padding=True, return_tensors="pt",
        )
        with torch.inference_mode():
            starts, ends = network(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        for w in range(starts.shape[0]):
            context = [t for t, s in enumerate(enc.sequence_ids(w)) if s == 1]
            if not context:
                continue
            lo, hi = context[0], context[-1] + 1
            scores = starts[w, lo:hi].numpy()[:, None] + ends[w, lo:hi].numpy()[None, :]
            i, j = np.indices(scores.shape)
            scores[(j < i) | (j - i >= MAX_ANSWER_TOKENS)] = -np.inf
            s, e = np.unravel_index(int(np.argmax(scores)), scores.shape)
            margin = float(scores[s, e]) - float(starts[w, 0] + ends[w, 0])
            if margin > best[0]:
                spans = enc["offset_mapping"][w]
                best = (margin, start + int(spans[lo + s][0]), start + int(spans[lo + e][1]))
    margin, a, b = best
    print(text[a:b] if margin > float("-inf") else "(no answer)")


main()
'''
