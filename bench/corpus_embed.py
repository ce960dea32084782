"""Real embeddings of SQuAD paragraphs and questions for the corpus benchmark, timed.

`python -m bench.corpus_embed --squad PATH --paragraphs N --questions Q --out FILE.npz --cache DIR`
encodes the first N paragraphs and Q questions (a fixed random choice) with the shipped encoder
(ONNX Runtime, the exports in the cache folder DIR) and saves them with the encoding time of the
paragraphs alone, in steps, so an interrupted run keeps what it did. The corpus benchmark builds
its 10k corpus from these real vectors and its larger ones from them perturbed (bench/corpus.py),
and extrapolates the embedding time of a corpus from the measured passages per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

STEP = 500
QUESTION_SEED = 11


def question_choice(n_questions: int, count: int) -> np.ndarray:
    """Which SQuAD questions serve as queries (the same in every run)."""
    return np.sort(np.random.default_rng(QUESTION_SEED).choice(n_questions, min(count, n_questions), replace=False))


def embedder(cache_dir: Path):
    from article_qa.index.cache_layout import CacheLayout
    from article_qa.index.embedding_model import resolve_model
    from article_qa.index.embeddings import Embedder

    cache = CacheLayout(Path(cache_dir))
    return Embedder(resolve_model(None, hash_cache=cache.hash_cache), export_dir=cache.exports)


def main(argv: list[str] | None = None) -> int:
    from bench.squad_corpus import load_squad

    parser = argparse.ArgumentParser(prog="python -m bench.corpus_embed")
    parser.add_argument("--squad", type=Path, required=True)
    parser.add_argument("--paragraphs", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="cache folder holding the ONNX exports")
    args = parser.parse_args(argv)
    squad = load_squad(args.squad)
    encoder = embedder(args.cache)
    chosen = question_choice(len(squad.questions), args.questions)
    questions = [squad.questions[i][1] for i in chosen]
    encoder.encode(questions[:8])  # loads the session, untimed (an index build pays it once too)
    query_vectors = encoder.encode(questions)
    texts = squad.paragraphs[: args.paragraphs]
    done, seconds, cpu_seconds, parts = 0, 0.0, 0.0, []
    while done < len(texts):
        batch = texts[done : done + STEP]
        started, cpu = time.perf_counter(), time.process_time()
        parts.append(encoder.encode(batch))
        seconds += time.perf_counter() - started
        cpu_seconds += time.process_time() - cpu  # all threads: what other jobs cannot inflate
        done += len(batch)
        np.savez(args.out.with_suffix(".partial.npz"), paragraphs=np.concatenate(parts), queries=query_vectors,
                 question_ids=chosen, meta=json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "paragraphs": done,
                                                       "runtime": encoder.runtime_in_use}))
        print(f"[embed {time.strftime('%H:%M:%S')}] {done}/{len(texts)} paragraphs, "
              f"{done / seconds:.1f} passages/s", file=sys.stderr, flush=True)
    args.out.with_suffix(".partial.npz").replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
