"""`python -m bench --rows engine`: the same batch over a corpus, local engine against a local Dask
cluster of 1 and of 2 workers (issue "When one machine is not enough").

Run as a child of `python -m bench` (`python -m bench.engine --squad … --questions N --cache DIR
--work DIR`): it writes the corpus (SQuAD articles as a JSON Lines corpus, one article a SQuAD
article; by default the SQuAD files in tests/data, so it runs from a clean clone), indexes it
untimed, makes N questions from the corpus's own (cycled with `bench.questions.variants`; every
other line names its article), then answers them in this process, as `batch` does without writing:

- local: `batch.run.answer_records` over the pipeline, models loaded first (timed apart);
- dask with 1 and with 2 workers: a fresh local cluster each (`batch.distributed.dask_client`);
  the start-up is the cluster's start plus every worker opening the index and loading the models
  (`warm_up`), the throughput is the questions over the answering alone, and over the whole run.

Every run's records are rendered as the output writes them and checked identical to the local
ones. The result is one line, RESULT_MARKER + JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

RESULT_MARKER = "ENGINE_RESULT "
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQUAD = [ROOT / "tests" / "data" / name for name in ("train_sample.json", "seed_dev.squad.json",
                                                              "tiny_squad2.json")]


def write_corpus(squad_files: list[Path], articles: int, folder: Path) -> tuple[Path, list[tuple[str, str]]]:
    """A JSON Lines corpus of the first `articles` SQuAD articles, and (article id, question) pairs."""
    from bench.squad_corpus import load_squad

    lines, asked, seen = [], [], set()
    for path in squad_files:
        squad = load_squad(path)
        for number, title in enumerate(squad.titles):
            if len(lines) >= articles:
                break
            article_id = f"{path.stem}-{number}"
            if article_id in seen:
                continue
            seen.add(article_id)
            paragraphs = [p for p, a in zip(squad.paragraphs, squad.article_of) if a == number]
            asked += [(article_id, q) for p, q in squad.questions if squad.article_of[p] == number]
            lines.append(json.dumps({"id": article_id, "title": title, "text": "\n\n".join(paragraphs)}))
    corpus = folder / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus, asked


def question_lines(asked: list[tuple[str, str]], count: int) -> list[bytes]:
    """`count` JSON lines from the corpus's questions, cycled as variants; every other names its article."""
    from bench.questions import variants

    texts = variants([q for _, q in asked], count)
    out = []
    for i, text in enumerate(texts):
        record = {"id": f"q{i}", "question": text}
        if i % 2:
            record["article"] = asked[i % len(asked)][0]
        out.append(json.dumps(record).encode() + b"\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine")
    parser.add_argument("--squad", type=Path, action="append", help="SQuAD file(s); default: tests/data's")
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)

    import io

    from article_qa.batch.distributed import Started, answer_on_dask, dask_client, worker_spec
    from article_qa.batch.engine import choose_engine
    from article_qa.batch.input import read_batch
    from article_qa.batch.output import JsonLinesFormat
    from article_qa.batch.run import answer_records
    from article_qa.qa.pipeline import ArticleQA
    from article_qa.terminal.process import quiet_libraries

    quiet_libraries()
    args.work.mkdir(parents=True, exist_ok=True)
    corpus, asked = write_corpus(args.squad or DEFAULT_SQUAD, args.articles, args.work)
    began = time.perf_counter()
    qa = ArticleQA.open_corpus([str(corpus)], index_dir=args.cache)
    index_s = time.perf_counter() - began
    lines = question_lines(asked, args.questions)
    data = b"".join(lines)
    render = JsonLinesFormat().render
    result = {"load_average": [round(x, 2) for x in os.getloadavg()], "articles": len(qa.index), "passages": qa.index.passage_count, "questions": len(lines),
              "index_s": round(index_s, 2), "runs": []}

    began = time.perf_counter()
    qa.prepare()
    load_s = time.perf_counter() - began
    began = time.perf_counter()
    local = [render(r) for r in answer_records(qa, read_batch(io.BytesIO(data)))]
    answer_s = time.perf_counter() - began
    result["runs"].append({"engine": "local", "workers": 0, "start_s": round(load_s, 2), "answer_s": round(answer_s, 2),
                           "qps": round(len(local) / answer_s, 1),
                           "qps_whole": round(len(local) / (answer_s + load_s), 1), "identical": True})
    print(f"local: {len(local) / answer_s:.1f} q/s", file=sys.stderr)
    spec = worker_spec(qa, None, None, args.cache)
    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        started = Started()
        began = time.perf_counter()
        with dask_client(choose_engine("dask", None, workers), started) as client:
            got = [render(r) for r in answer_on_dask(client, spec, read_batch(io.BytesIO(data)), started=started)]
            done = time.perf_counter()
        whole = done - began
        answer_s = done - started.ready_at  # from the blocks' sending to the last record
        result["runs"].append({"engine": "dask", "workers": workers, "cluster_s": round(started.cluster_s, 2),
                               "load_s": round(started.load_s, 2),
                               "start_s": round(started.ready_at - began, 2), "answer_s": round(answer_s, 2),
                               "qps": round(len(got) / answer_s, 1), "qps_whole": round(len(got) / whole, 1),
                               "identical": got == local})
        print(f"dask x{workers}: {len(got) / answer_s:.1f} q/s, identical {got == local}", file=sys.stderr)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(RESULT_MARKER + json.dumps(result))
    return 0


def rows(data: dict) -> list[dict]:
    """The bench table's lines for this result: one per run."""
    out = []
    local = data["runs"][0]
    for run in data["runs"]:
        name = "engine local" if run["engine"] == "local" else f"engine dask x{run['workers']}"
        if run["engine"] == "local":
            measured = (f"{run['qps']} q/s ({data['questions']:,} questions, {data['articles']} articles, "
                        f"{data['passages']} passages); models {run['start_s']} s")
        else:
            measured = (f"{run['qps']} q/s answering, {run['qps_whole']} q/s whole; start {run['start_s']} s "
                        f"(cluster {run['cluster_s']} s + load {run['load_s']} s); "
                        f"{'identical' if run['identical'] else 'DIFFERENT'} output; "
                        f"{run['qps'] / local['qps']:.2f}× local")
        out.append({"row": name, "what": "the same batch over a corpus", "measured": measured,
                    "target": "identical output" if run["engine"] == "dask" else "—",
                    "met": run["identical"] if run["engine"] == "dask" else None, "data": run})
    return out


if __name__ == "__main__":
    sys.exit(main())
