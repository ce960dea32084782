"""Embedding alone, the yardstick of the big-article row: `python -m bench.embed_only ARTICLE INDEX_DIR`.

Splits the article into the passages `article-qa index` makes and times only the encoder over
them (ONNX Runtime, the exports of INDEX_DIR), in a fresh process like the index it is compared
with. Prints one JSON line prefixed with RESULT_MARKER: passages, seconds, peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time

RESULT_MARKER = "BENCH-EMBED "


def main(argv: list[str]) -> None:
    from pathlib import Path

    from article_qa.index.article import load_article
    from article_qa.index.cache_layout import CacheLayout
    from article_qa.index.embedding_model import resolve_model
    from article_qa.index.embeddings import Embedder
    from article_qa.index.passages import Chunking, split_passages

    article_path, cache = argv[0], CacheLayout(Path(argv[1]))
    article = load_article(article_path)
    embedder = Embedder(resolve_model(None, hash_cache=cache.hash_cache), export_dir=cache.exports)
    chunking = Chunking()
    limit = min(chunking.max_tokens, embedder.max_tokens - 2)
    passages = split_passages(article.text, embedder.token_spans,
                              Chunking(limit, chunking.min_tokens, chunking.overlap_sentences))
    texts = [p.text for p in passages]
    embedder.encode(texts[:8])  # loads the session (not timed: the index pays it too, but once)
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    print(RESULT_MARKER + json.dumps({"passages": len(texts), "seconds": seconds, "runtime": embedder.runtime_in_use,
                                      "dim": int(vectors.shape[1]), "peak_rss_mb": round(peak, 1)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
