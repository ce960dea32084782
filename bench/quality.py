"""Answer quality on every development set at once: `python -m bench.quality ../shared/eval`.

Runs `article-qa eval`'s own code (evaluation/run.py) over the sets of an eval folder laid out as
`../shared/eval` is (see its README), and prints one table: the six news articles (their SQuAD
files scored as one set) and their conversations, the default article's questions and
conversations, and the SQuAD 2.0 dev subset. `--details DIR` keeps every question's line
(`eval --details`) per set, to read what went wrong. The data is passed as a path, never copied.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ("f1", "HasAns_f1", "NoAns_exact", "ece", "answered", "answered_wrong", "abstained_answerable", "questions")


def merged_squad(files: list[Path], into: Path) -> Path:
    """One SQuAD file holding the articles of `files` (each stays its own document)."""
    data = [article for f in files for article in json.loads(f.read_text(encoding="utf-8"))["data"]]
    into.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    return into


def run_sets(folder: Path, reader: str | None, details_dir: Path | None, only: set[str] | None) -> dict[str, dict]:
    from article_qa.evaluation.run import evaluate_chats, evaluate_file

    news = folder / "news_dev"
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            "news_dev": lambda d: evaluate_file(merged_squad(sorted(news.glob("*.squad.json")), Path(tmp) / "news.json"),
                                                reader=reader, details=d).metrics,
            "news_dev_chats": lambda d: _chats(evaluate_chats, news / "news_dev_chats.jsonl", None, reader, d),
            "seed_dev": lambda d: evaluate_file(folder / "seed_dev.squad.json", reader=reader, details=d).metrics,
            "seed_dev_chats": lambda d: _chats(evaluate_chats, folder / "seed_dev_chats.jsonl", None, reader, d),
            "squad2_dev_subset": lambda d: evaluate_file(folder / "squad2_dev_subset.json", reader=reader,
                                                         details=d).metrics,
        }
        for name, run in sets.items():
            if only and name not in only:
                continue
            started = time.perf_counter()
            records: list[dict] = []
            results[name] = run(records)
            print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            if details_dir is not None:
                details_dir.mkdir(parents=True, exist_ok=True)
                (details_dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return results


def _chats(evaluate_chats, path: Path, article, reader, details) -> dict:
    notes: list[str] = []
    metrics = evaluate_chats(path, article=article, reader=reader, notes=notes, details=details)
    for note in notes:
        if note.startswith("warning"):
            print(note, file=sys.stderr)
    return {key.removeprefix("chat_"): value for key, value in metrics.items()}


def table(results: dict[str, dict]) -> str:
    lines = ["| set | " + " | ".join(COLUMNS) + " |", "|" + " --- |" * (len(COLUMNS) + 1)]
    for name, metrics in results.items():
        cells = [str(metrics.get(c if c in metrics else c.replace("questions", "turns"), "")) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the eval folder (../shared/eval)")
    parser.add_argument("--reader", default=None, help="a reader folder (default: the shipped one)")
    parser.add_argument("--details", type=Path, default=None, help="folder for one JSON Lines file per set")
    parser.add_argument("--only", nargs="+", default=None, help="run only these sets")
    parser.add_argument("--json", type=Path, default=None, help="also write the metrics as JSON here")
    args = parser.parse_args(argv)
    results = run_sets(args.folder, args.reader, args.details, set(args.only) if args.only else None)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
