"""The corpus row of `python -m bench`: the scaling backends over 10k, 100k and 1M SQuAD passages.

`python -m bench --rows corpus --squad squad1_train.json.gz` runs this module twice over in fresh
processes: `run` builds and measures each corpus, and for each one `probe` opens the saved indexes
in a new process and times retrieval there (cold open, warm p50/p95, peak RSS), as an `ask` would.

What is real and what is not, said again in the table and the README:

- **Vectors.** Embedding a million passages with the real model is not possible on the project's
  2-core machine (it encodes ~6-60 SQuAD paragraphs a second, depending on the load). So the first
  `--base` paragraphs (10,000 by default) and 300 SQuAD questions are encoded for real
  (bench/corpus_embed.py, timed), the 10k corpus is those real vectors, and the 100k and 1M corpora
  repeat them as renamed copies (bench/squad_corpus.py) whose vectors are the real vector of their
  paragraph plus a random direction, sized so that a copy's cosine to its paragraph is the median
  cosine measured between real embeddings of renamed copies and their paragraphs. Embedding time is
  measured for 10k and extrapolated (passages ÷ measured passages per second) for 100k and 1M.
- **Texts** are real SQuAD paragraphs (renamed copies past 18,746), so the lexical index is built
  and searched for real at every size.
- **Queries** are real question embeddings (vector side) and SQuAD questions renamed to a copy
  (lexical side). recall@10 is measured on 150 held-out questions against exact search over the
  same float vectors; `nprobe` is tuned on the other 150.
- **Whole `ask` and cold `ask` over a corpus** need the corpus itself (issue #19 items 1-2, built on
  another branch) and a corpus built through it, which embeds every passage for real: those rows
  say so. The probe's cold open, retrieval latency and RSS are the part of them these backends own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

RESULT_MARKER = "BENCH-CORPUS "
SIZES = (10_000, 100_000, 1_000_000)
CHUNK = 50_000
K = 10
TUNE_QUERIES = 150  # of the 300 embedded questions; the rest measure recall
# nprobe is tuned to 0.99 on the tuning questions so that new questions clear the 0.98 target:
# recall measured on a sample of 150 varies by about ±0.005 from sample to sample.
TUNE_TARGET = 0.99
UPDATE_AT = 100_000
RENAMED_SAMPLE = 200  # renamed copies embedded for real to size the perturbation


def log(message: str) -> None:
    print(f"[corpus {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Not getrusage: Linux carries ru_maxrss over fork and exec, so a
    probe started by the 1 GB build process would report that process's peak as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def _folder_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file(follow_symlinks=False))


def _streamed_exact(vectors_of, n: int, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids over n vectors made a chunk at a time by `vectors_of(first, last)`."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for first in range(0, n, CHUNK):
        block = vectors_of(first, min(first + CHUNK, n))
        scores = queries @ block.T
        ids = np.arange(first, first + len(block), dtype=np.int64)
        top = np.argpartition(-scores, k, axis=1)[:, :k] if scores.shape[1] > k else np.argsort(-scores, axis=1)
        s = np.concatenate([best_s, np.take_along_axis(scores, top, 1)], axis=1)
        i = np.concatenate([best_i, ids[top]], axis=1)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)
    return best_i


# -- run: build and measure every corpus -----------------------------------------------------------


def run(args) -> dict:
    from article_qa.index.lexical_backends import new_lexical_index
    from article_qa.index.vector_backends import (
        choose_kind,
        new_vector_index,
        recall_at_k,
        training_sample_size,
        tune_nprobe,
    )
    from bench.corpus_embed import embedder
    from bench.squad_corpus import load_squad, make_corpus, noise_for_cosine, perturbed_vectors, rename

    squad = load_squad(args.squad)
    saved = np.load(args.embeddings)
    base_vectors, query_vectors = saved["paragraphs"], saved["queries"]
    question_ids = saved["question_ids"]
    meta = json.loads(str(saved["meta"]))
    per_passage_s = meta["seconds"] / meta["paragraphs"]
    bases = len(base_vectors)
    log(f"{bases:,} real paragraph vectors ({1 / per_passage_s:.1f} passages/s when embedded), "
        f"{len(query_vectors)} question vectors")
    encoder = embedder(args.cache)

    # How far a renamed copy's real embedding lies from its paragraph's: the perturbation's size.
    sample = list(range(min(RENAMED_SAMPLE, bases)))
    renamed = encoder.encode([rename(squad.paragraphs[i], 1 + i % 7) for i in sample])
    cosines = np.sum(renamed * base_vectors[sample], axis=1)
    cosine = float(np.median(cosines))
    noise = noise_for_cosine(cosine)
    log(f"renamed copies: median cosine {cosine:.4f} to their paragraph (real embeddings): noise {noise:.3f}")

    rng = np.random.default_rng(5)
    tune_q, test_q = query_vectors[:TUNE_QUERIES], query_vectors[TUNE_QUERIES:]
    out = {"bases": bases, "embed_passages_per_s": 1 / per_passage_s, "embed_measured_on": meta["paragraphs"],
           "renamed_cosine_median": cosine, "renamed_cosine_p10": float(np.percentile(cosines, 10)),
           "noise": noise, "sizes": []}
    for n in args.sizes:
        corpus = make_corpus(squad, n, bases=bases)
        vectors_of = (lambda c: (lambda first, last: perturbed_vectors(base_vectors, c, first, last, noise)))(corpus)
        synthetic = n > bases
        kind = args.kind or choose_kind(n)
        folder = args.work / f"corpus-{n}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        row: dict = {"passages": n, "kind": kind, "synthetic_vectors": synthetic,
                     "embed_s": n * per_passage_s, "embed_extrapolated": n > meta["paragraphs"]}
        log(f"{n:,} passages: vector index ({kind})")
        started = time.perf_counter()
        training = None
        if kind == "ivf-sq8":
            chosen = np.sort(rng.choice(n, training_sample_size(n), replace=False))
            parts = []
            for first in range(0, n, CHUNK):
                inside = chosen[(chosen >= first) & (chosen < first + CHUNK)]
                if len(inside):
                    parts.append(vectors_of(first, first + CHUNK)[inside - first])
            training = np.concatenate(parts)
        index = new_vector_index(base_vectors.shape[1], n, kind=kind, training_sample=training)
        row["train_s"] = time.perf_counter() - started
        del training
        t = time.perf_counter()
        for first in range(0, n, CHUNK):
            index.add(np.arange(first, min(first + CHUNK, n), dtype=np.int64), vectors_of(first, first + CHUNK))
        row["add_s"] = time.perf_counter() - t
        t = time.perf_counter()
        truth = _streamed_exact(vectors_of, n, query_vectors, K)
        row["exact_truth_s"] = time.perf_counter() - t  # the bench's ground truth, not part of the build
        t = time.perf_counter()
        nprobe, tuned_recall = tune_nprobe(index, tune_q, target_recall=TUNE_TARGET, k=K,
                                             exact_ids=truth[:TUNE_QUERIES])
        row["tune_s"] = time.perf_counter() - t
        row["nprobe"], row["tuned_recall"] = nprobe, tuned_recall
        row["recall_at_10"] = recall_at_k(index.search(test_q, K)[1], truth[TUNE_QUERIES:])
        t = time.perf_counter()
        index.save(folder / "vectors.idx")
        row["vector_save_s"] = time.perf_counter() - t
        row["vector_config"] = index.configuration()
        row["vector_build_s"] = row["train_s"] + row["add_s"] + row["tune_s"] + row["vector_save_s"]
        row["vector_bytes"] = (folder / "vectors.idx").stat().st_size
        row["build_peak_rss_mb"] = _peak_rss_mb()

        log(f"{n:,} passages: lexical index (tantivy)")
        t = time.perf_counter()
        lexical = new_lexical_index(path=folder / "lexical")
        for first in range(0, n, CHUNK):
            lexical.add(np.arange(first, min(first + CHUNK, n), dtype=np.int64), corpus.texts(first, first + CHUNK))
        lexical.save()
        row["lexical_build_s"] = time.perf_counter() - t
        row["lexical_bytes"] = _folder_bytes(folder / "lexical")
        row["index_build_s"] = row["vector_build_s"] + row["lexical_build_s"]
        row["build_ratio"] = (row["embed_s"] + row["index_build_s"]) / row["embed_s"]

        if n == args.update_at:
            row["update"] = _update_one_article(corpus, index, lexical, folder, encoder)
        del index, lexical

        # the probe's questions: held-out vectors, and their texts renamed to a copy in this corpus
        copies = int(corpus.copy.max()) + 1
        texts = [rename(squad.questions[int(q)][1], int(rng.integers(copies))) for q in question_ids[TUNE_QUERIES:]]
        article = int(corpus.article[n // 2])
        np.save(folder / "probe-queries.npy", test_q)
        (folder / "probe.json").write_text(json.dumps({"questions": texts,
                                                       "allowed": corpus.passages_of(article).tolist()}))
        log(f"{n:,} passages: probing retrieval in a fresh process")
        row["probe"] = _probe_subprocess(folder)
        out["sizes"].append(row)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        log(f"{n:,} passages done: {json.dumps({k: v for k, v in row.items() if k != 'vector_config'})}")
    return out


def _update_one_article(corpus, index, lexical, folder: Path, encoder) -> dict:
    """One article changed: its passages' new texts embedded for real, removed from both indexes,
    added back, both saved. Timed whole and by part."""
    from bench.squad_corpus import rename

    article = int(corpus.article[len(corpus) // 3])
    ids = corpus.passages_of(article)
    texts = [rename(corpus.squad.paragraphs[int(corpus.base[i])], int(corpus.copy[i]) + 1000) for i in ids]
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    embedded = time.perf_counter()
    index.remove(ids)
    lexical.remove(ids)
    index.add(ids, vectors)
    lexical.add(ids, texts)
    changed = time.perf_counter()
    index.save(folder / "vectors.idx")
    lexical.save()
    done = time.perf_counter()
    found = lexical.search(texts[0], 1)[1]
    return {"passages": len(ids), "total_s": done - started, "embed_s": embedded - started,
            "remove_add_s": changed - embedded, "save_s": done - changed,
            "lexical_finds_new_text": bool(len(found) and found[0] in ids),
            "vector_finds_new": bool(index.search(vectors[:1], 1)[1][0, 0] == ids[0])}


def _probe_subprocess(folder: Path) -> dict:
    import subprocess

    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.corpus", "probe", str(folder)], capture_output=True,
                          text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["probe failed"])[-1]}
    line = next(x for x in proc.stdout.splitlines() if x.startswith(RESULT_MARKER))
    data = json.loads(line[len(RESULT_MARKER):])
    data["process_s"] = time.perf_counter() - started
    return data


# -- probe: a fresh process that opens the saved indexes and retrieves ------------------------------


def probe(folder: Path) -> dict:
    started = time.perf_counter()
    import faiss  # noqa: F401 - imported here to be timed apart from opening the index
    import tantivy  # noqa: F401

    from article_qa.index.lexical_backends import open_lexical_index
    from article_qa.index.vector_backends import open_vector_index

    imported = time.perf_counter()
    vectors = open_vector_index(folder / "vectors.idx")
    vector_open = time.perf_counter()
    lexical = open_lexical_index(folder / "lexical")
    lexical_open = time.perf_counter()
    queries = np.load(folder / "probe-queries.npy")
    spec = json.loads((folder / "probe.json").read_text())
    questions, allowed = spec["questions"], np.array(spec["allowed"], dtype=np.int64)
    t = time.perf_counter()
    vectors.search(queries[:1], K)
    lexical.search(questions[0], K)
    first = time.perf_counter() - t
    vector_ms, lexical_ms, both_ms, filtered_ms, filtered_hits = [], [], [], [], []
    cpu_ms = []  # CPU time of the process per question: what the machine's other jobs cannot inflate
    for repeat in range(2):
        for q, text in zip(queries, questions):
            cpu = time.process_time()
            a = time.perf_counter()
            vectors.search(q[None], K)
            b = time.perf_counter()
            lexical.search(text, K)
            c = time.perf_counter()
            if repeat:  # the first pass warms the page cache and the allocator
                vector_ms.append((b - a) * 1000)
                lexical_ms.append((c - b) * 1000)
                both_ms.append((c - a) * 1000)
                cpu_ms.append((time.process_time() - cpu) * 1000)
    for q in queries[:30]:
        a = time.perf_counter()
        _, hits = vectors.search(q[None], K, allowed=allowed)
        filtered_ms.append((time.perf_counter() - a) * 1000)
        filtered_hits.append(int((hits >= 0).sum()))
    return {
        "import_s": imported - started, "vector_open_s": vector_open - imported,
        "lexical_open_s": lexical_open - vector_open, "first_query_s": first,
        "cold_retrieval_s": (lexical_open - started) + first,
        "vector_p50_ms": _pct(vector_ms, 50), "vector_p95_ms": _pct(vector_ms, 95),
        "lexical_p50_ms": _pct(lexical_ms, 50), "lexical_p95_ms": _pct(lexical_ms, 95),
        "retrieval_p50_ms": _pct(both_ms, 50), "retrieval_p95_ms": _pct(both_ms, 95),
        "retrieval_cpu_p50_ms": _pct(cpu_ms, 50), "retrieval_cpu_p95_ms": _pct(cpu_ms, 95),
        "load_average": list(os.getloadavg()),
        "filtered_p50_ms": _pct(filtered_ms, 50), "filtered_hits_min": min(filtered_hits),
        "filtered_allowed": len(allowed), "queries": len(queries), "peak_rss_mb": _peak_rss_mb(),
    }


# Targets of issue #19 item 4, stated for 1M passages (the smaller corpora are held to them too).
RECALL_MIN = 0.98
RETRIEVAL_P50_MAX_MS = 20.0
COLD_ASK_MAX_S = 2.0
ASK_RSS_MAX_MB = 1500.0
BUILD_MAX_RATIO = 1.2
UPDATE_MAX_S = 2.0


def _size_name(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def rows(data: dict) -> list[dict]:
    """The table rows (row, what, measured, target, met, data) of one `run`."""
    out = [{
        "row": "corpus-embed", "what": "real embedding throughput (ONNX, shipped encoder), SQuAD paragraphs",
        "measured": f"{data['embed_passages_per_s']:.1f} passages/s over {data['embed_measured_on']:,} paragraphs; "
                    f"renamed copies: median cosine {data['renamed_cosine_median']:.3f} to their paragraph",
        "target": "info", "met": None, "data": {k: v for k, v in data.items() if k != "sizes"},
    }]
    for row in data["sizes"]:
        n, probe = row["passages"], row.get("probe", {})
        if "error" in probe:
            out.append({"row": f"corpus-{_size_name(n)}", "what": "", "measured": f"error: {probe['error']}",
                        "target": "", "met": False, "data": row})
            continue
        size_mb = (row["vector_bytes"] + row["lexical_bytes"]) / 1e6
        tuned = (f"nprobe {row['nprobe']} of {row['vector_config']['nlist']} lists" if row["kind"] == "ivf-sq8"
                 else "exact")
        notes = []
        if row["synthetic_vectors"]:
            notes.append("synthetic vectors")
        if row["embed_extrapolated"]:
            notes.append("embedding time extrapolated")
        measured = (
            f"{row['kind']}; build {row['index_build_s']:.0f} s (vectors {row['vector_build_s']:.0f}, lexical "
            f"{row['lexical_build_s']:.0f}) + embedding {row['embed_s']:.0f} s = {row['build_ratio']:.3f}× embedding; "
            f"{size_mb:.0f} MB on disk (vectors {row['vector_bytes'] / 1e6:.0f}, lexical {row['lexical_bytes'] / 1e6:.0f}); "
            f"retrieval p50 {probe['retrieval_p50_ms']:.1f} / p95 {probe['retrieval_p95_ms']:.1f} ms (vector "
            f"{probe['vector_p50_ms']:.1f}/{probe['vector_p95_ms']:.1f}, lexical {probe['lexical_p50_ms']:.1f}/"
            f"{probe['lexical_p95_ms']:.1f}; CPU p50 {probe['retrieval_cpu_p50_ms']:.1f}); recall@10 {row['recall_at_10']:.3f} vs exact ({tuned}); "
            f"cold open + first query {probe['cold_retrieval_s']:.2f} s; RSS {probe['peak_rss_mb']:.0f} MB"
            + (f" [{', '.join(notes)}]" if notes else ""))
        met = (row["recall_at_10"] >= RECALL_MIN and probe["retrieval_p50_ms"] <= RETRIEVAL_P50_MAX_MS
               and row["build_ratio"] <= BUILD_MAX_RATIO and probe["peak_rss_mb"] <= ASK_RSS_MAX_MB)
        out.append({"row": f"corpus-{_size_name(n)}", "what": f"{n:,} SQuAD passages: vector + lexical index",
                    "measured": measured,
                    "target": f"recall@10 ≥ {RECALL_MIN}, retrieval p50 ≤ {RETRIEVAL_P50_MAX_MS:.0f} ms, build ≤ "
                              f"{BUILD_MAX_RATIO}× embedding, RSS ≤ {ASK_RSS_MAX_MB:.0f} MB (retrieval process)",
                    "met": met, "data": row})
        if "update" in row:
            u = row["update"]
            ok = u["lexical_finds_new_text"] and u["vector_finds_new"]
            out.append({
                "row": "corpus-update", "what": f"one article of {n:,} changed: re-embed, remove, add, save",
                "measured": f"{u['total_s']:.2f} s for {u['passages']} passages (embed {u['embed_s']:.2f}, remove + add "
                            f"{u['remove_add_s']:.2f}, save {u['save_s']:.2f})" + ("" if ok else "; new text NOT found"),
                "target": f"≤ {UPDATE_MAX_S:.0f} s", "met": ok and u["total_s"] <= UPDATE_MAX_S, "data": u})
    for name, what in (("corpus-ask", "whole ask over the 1M corpus, p50/p95"),
                       ("corpus-cold-ask", f"cold ask over the 1M corpus (≤ {COLD_ASK_MAX_S:.0f} s, RSS ≤ "
                                           f"{ASK_RSS_MAX_MB:.0f} MB)")):
        out.append({"row": name, "what": what, "measured": "needs the corpus: its ask (issue #19 items 1-2) is not on this "
                    "branch yet, and building it embeds every passage for real",
                    "target": f"cold ≤ {COLD_ASK_MAX_S:.0f} s, RSS ≤ {ASK_RSS_MAX_MB:.0f} MB" if "cold" in name else "info",
                    "met": None, "data": {}})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpus")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--squad", type=Path, required=True)
    r.add_argument("--embeddings", type=Path, required=True, help="made by bench.corpus_embed")
    r.add_argument("--cache", type=Path, required=True, help="cache folder with the ONNX exports")
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--sizes", default=",".join(map(str, SIZES)))
    r.add_argument("--kind", choices=["exact", "ivf-sq8"], help="force a vector index kind (default: by size)")
    r.add_argument("--keep", action="store_true", help="keep the built indexes in --work")
    r.add_argument("--update-at", type=int, default=UPDATE_AT, help="the corpus size whose one article is re-indexed")
    p = sub.add_parser("probe")
    p.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "probe":
        print(RESULT_MARKER + json.dumps(probe(args.folder)), flush=True)
        return 0
    args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    print(RESULT_MARKER + json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
