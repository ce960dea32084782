"""Which lexical index scales: `python -m bench.lexical_compare --squad PATH [--passages N]`.

Builds the same synthetic SQuAD corpus (bench/squad_corpus.py) into three BM25 indexes, all fed the
project's tokenisation (`index.lexical.terms`): the project's numpy BM25 (`index/lexical.py`),
bm25s, and tantivy (`index/lexical_backends.py`). Reports build time, query p50/p95 over SQuAD
questions of the corpus, whether one article's passages can be deleted and added back in place
(and how long that takes), and how far the top 10 of bm25s and tantivy agree with the project's
BM25. Prints a table and one JSON line prefixed with RESULT_MARKER. A developer's tool: the numbers
behind the choice of tantivy stated in the README ("Scale").
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULT_MARKER = "BENCH-LEXICAL "


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def compare(squad_path: Path, passages: int, queries: int, work: Path, log=print) -> dict:
    from article_qa.index.lexical import BM25, terms
    from article_qa.index.lexical_backends import new_lexical_index
    from bench.squad_corpus import load_squad, make_corpus, rename

    squad = load_squad(squad_path)
    corpus = make_corpus(squad, passages)
    texts = corpus.texts(0, len(corpus))
    rng = np.random.default_rng(7)
    asked = [squad.questions[i] for i in rng.choice(len(squad.questions), queries, replace=False)]
    # a question about a random copy of its paragraph, with that copy's names
    copies = int(corpus.copy.max()) + 1
    questions = [rename(q, int(rng.integers(copies))) for _, q in asked]
    out: dict = {"passages": passages, "queries": len(questions)}
    article = int(corpus.article[len(corpus) // 2])
    article_ids = corpus.passages_of(article)

    log(f"project BM25 (index/lexical.py): building over {passages:,} passages")
    started = time.perf_counter()
    bm25 = BM25(texts)
    build = time.perf_counter() - started
    times, top_bm25 = [], []
    for q in questions:
        t = time.perf_counter()
        scores = bm25.scores(q)
        top = np.argsort(-scores, kind="stable")[:10]
        times.append((time.perf_counter() - t) * 1000)
        top_bm25.append(top[scores[top] > 0])
    out["bm25"] = {"build_s": build, "query_p50_ms": _p(times, 50), "query_p95_ms": _p(times, 95),
                   "delete": "no: built once over a fixed list; a changed article is a rebuild",
                   "update_s": build}
    del bm25

    try:
        import bm25s
    except ImportError:
        out["bm25s"] = {"error": "bm25s is not installed (pip install bm25s to compare it)"}
    else:
        log("bm25s: building")
        started = time.perf_counter()
        tokenized = [terms(t) for t in texts]
        retriever = bm25s.BM25(k1=1.5, b=0.75)
        retriever.index(tokenized, show_progress=False)
        build = time.perf_counter() - started
        del tokenized
        times, agree = [], []
        for q, want in zip(questions, top_bm25):
            words = [w for w in terms(q) if w in retriever.vocab_dict]
            t = time.perf_counter()
            if words:
                docs, scores = retriever.retrieve([words], k=10, show_progress=False, n_threads=1)
                got = docs[0][scores[0] > 0]
            else:
                got = np.zeros(0, np.int64)
            times.append((time.perf_counter() - t) * 1000)
            agree.append(_overlap(got, want))
        out["bm25s"] = {"build_s": build, "query_p50_ms": _p(times, 50), "query_p95_ms": _p(times, 95),
                        "top10_agreement": statistics.mean(agree),
                        "delete": "no: a static index (a changed article is a rebuild)", "update_s": build}
        del retriever

    log("tantivy: building")
    folder = work / "lexical-compare-tantivy"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    index = new_lexical_index(path=folder)
    ids = np.arange(len(texts), dtype=np.int64)
    for first in range(0, len(texts), 50_000):
        index.add(ids[first:first + 50_000], texts[first:first + 50_000])
    index.save()
    build = time.perf_counter() - started
    times, agree = [], []
    for q, want in zip(questions, top_bm25):
        t = time.perf_counter()
        _, got = index.search(q, 10)
        times.append((time.perf_counter() - t) * 1000)
        agree.append(_overlap(got, want))
    started = time.perf_counter()
    index.remove(article_ids)
    index.save()
    removed = len(index) == len(texts) - len(article_ids)
    index.add(article_ids, [texts[i] for i in article_ids])
    index.save()
    update = time.perf_counter() - started
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    out["tantivy"] = {"build_s": build, "query_p50_ms": _p(times, 50), "query_p95_ms": _p(times, 95),
                      "top10_agreement": statistics.mean(agree), "delete": "yes, in place",
                      "update_s": update, "update_passages": len(article_ids), "removed_ok": removed,
                      "size_mb": size / 1e6}
    shutil.rmtree(folder, ignore_errors=True)
    return out


def _overlap(got: np.ndarray, want: np.ndarray) -> float:
    if len(want) == 0:
        return 1.0 if len(got) == 0 else 0.0
    return len(np.intersect1d(got, want)) / len(want)


def table(out: dict) -> str:
    rows = [("index", "build", "query p50 / p95", "top-10 agreement with BM25", "delete an article",
             "update one article")]
    for name in ("bm25", "bm25s", "tantivy"):
        r = out.get(name, {})
        if "error" in r:
            rows.append((name, r["error"], "", "", "", ""))
            continue
        rows.append((name, f"{r['build_s']:.1f} s", f"{r['query_p50_ms']:.2f} / {r['query_p95_ms']:.2f} ms",
                     "—" if name == "bm25" else f"{r['top10_agreement']:.3f}", r["delete"].split(":")[0],
                     f"{r['update_s']:.2f} s" + (" (rebuild)" if name != "tantivy" else
                                                 f" ({r['update_passages']} passages out and back)")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lexical_compare", description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD 1.0 training file (.json or .json.gz)")
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)
    if not args.squad.is_file():
        parser.error(f"file not found: {args.squad}")
    with tempfile.TemporaryDirectory(prefix="article-qa-lexical-") as tmp:
        out = compare(args.squad, args.passages, args.queries, Path(tmp),
                      log=lambda m: print(f"[lexical {time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True))
    print(table(out))
    print(RESULT_MARKER + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
