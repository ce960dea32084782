"""Articles read out of real web pages: `python -m bench.pages ../shared/eval/news_dev`.

For each page `html/<name>.html` of the folder (as `../shared/eval/news_dev` is laid out: the
page as its server sent it, the story as `<name>.txt`, its questions as `<name>.squad.json`):

- **word F1** of the text article-qa reads from the page (`--html story`, the default) against the
  `.txt`: the words (`\\w+`, lower-cased) of both as bags, the F1 of their overlap; also for
  `--html whole`, the page as laid out, for comparison;
- **same answers**: the article's SQuAD questions asked against the page and against the `.txt`
  with the same models and settings; an answer is the same when both give the same text (SQuAD's
  normalisation: case, punctuation, articles) or both give none ("Not sure." and "The article does
  not say." both give none); the SQuAD F1 of each against the reference answers is shown too;
- **extract_s** (in `--json`): seconds to read the page's story (parse, extract), trafilatura
  already imported.

Targets (issue #20): F1 >= 0.95 on every page; all answers but at most one per article the same.
The pages are read from the path given (never copied into the project); the indexes go into a
temporary folder unless `--index-dir` names one. Prints a table (or `--json`) and exits 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path

F1_TARGET = 0.95
MAX_DIFFERENT = 1
_WORD = re.compile(r"\w+")


def words(text: str) -> collections.Counter:
    return collections.Counter(_WORD.findall(text.lower()))


def word_f1(extracted: str, reference: str) -> tuple[float, float, float]:
    """(F1, precision, recall) of the bags of words of `extracted` against `reference`."""
    got, want = words(extracted), words(reference)
    common = sum((got & want).values())
    if not common:
        return 0.0, 0.0, 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall), precision, recall


def _given(answer) -> str | None:
    from article_qa.evaluation.squad import normalize_answer

    return normalize_answer(answer.text) if answer.answered else None


def measure(folder: Path, names: list[str], index_dir: Path, answers: bool = True) -> list[dict]:
    from article_qa.evaluation.squad import best_scores, load_squad
    from article_qa.index.article import load_article

    import trafilatura  # noqa: F401 - imported once up front, so that extract_s is the page's own time

    rows = []
    shared = None
    for name in names:
        page_path, text_path = folder / "html" / f"{name}.html", folder / f"{name}.txt"
        started = time.perf_counter()
        page = load_article(str(page_path))
        seconds = time.perf_counter() - started
        whole = load_article(str(page_path), html="whole")
        story = load_article(str(text_path))
        f1, precision, recall = word_f1(page.text, story.text)
        row = {"name": name, "f1": round(f1, 3), "precision": round(precision, 3), "recall": round(recall, 3),
               "whole_f1": round(word_f1(whole.text, story.text)[0], 3), "title": page.title,
               "extract_s": round(seconds, 2)}
        if answers:
            from article_qa.qa.pipeline import ArticleQA

            if shared is None:
                shared = ArticleQA.open(story, index_dir=index_dir)
            on_text, on_page = shared.for_article(story, index_dir), shared.for_article(page, index_dir)
            questions = [q for d in load_squad(folder / f"{name}.squad.json") for q in d.questions]
            asked = [q.question for q in questions]
            differing = []
            f1_text = f1_page = 0.0
            for q, a, b in zip(questions, on_text.ask_many(asked), on_page.ask_many(asked)):
                if _given(a) != _given(b):
                    differing.append({"id": q.id, "question": q.question, "text": a.text, "page": b.text})
                f1_text += best_scores(a.text, q.answers)[1]
                f1_page += best_scores(b.text, q.answers)[1]
            row.update(questions=len(questions), different=len(differing), differing=differing,
                       squad_f1_text=round(100 * f1_text / len(questions), 1),
                       squad_f1_page=round(100 * f1_page / len(questions), 1))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the news_dev folder: html/<name>.html, <name>.txt, <name>.squad.json")
    parser.add_argument("--names", nargs="*", help="only these pages (default: every html/*.html)")
    parser.add_argument("--index-dir", type=Path, help="cache folder for the indexes (default: a temporary one)")
    parser.add_argument("--no-answers", action="store_true", help="only the word F1 (no models loaded)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in (args.folder / "html").glob("*.html"))
    if not names:
        print(f"no pages in {args.folder / 'html'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.folder, names, args.index_dir or Path(tmp), answers=not args.no_answers)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'page':28} {'F1':>5} {'P':>5} {'R':>5} {'whole':>5} {'same answers':>13} {'SQuAD F1 txt/page':>18}  met")
    for r in rows:
        met = r["f1"] >= F1_TARGET and r.get("different", 0) <= MAX_DIFFERENT
        same = f"{r['questions'] - r['different']}/{r['questions']}" if "questions" in r else "-"
        squad = f"{r['squad_f1_text']}/{r['squad_f1_page']}" if "questions" in r else "-"
        print(f"{r['name']:28} {r['f1']:5.3f} {r['precision']:5.3f} {r['recall']:5.3f} {r['whole_f1']:5.3f} "
              f"{same:>13} {squad:>18}  {'yes' if met else 'no'}")
        for d in r.get("differing", []):
            print(f"    {d['id']}: {d['question']!r}: txt {d['text']!r}, page {d['page']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
