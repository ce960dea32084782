"""Fit the reader's confidence: `python -m training.calibrate --data squad1_train.json.gz --reader runs/reader`.

The calibrator (`qa/confidence.py`) is fitted on questions the reader never saw, asked the way
users ask them: each held-out training article (`training/reader.py --holdout-articles`) is
indexed whole and every question goes through retrieval, reading and the candidates' features.
Half the questions are unanswerable, in three kinds:
- a question of another article (what users mostly ask that an article does not answer);
- a question with one name or number swapped for another of the same article (a near miss);
- a question whose answer sentence was cut out of the article.
Articles are split: the calibrator is fitted on most of them and its calibration error and F1 are
reported on the rest (`check`), then it is refitted on all and written into the reader's
reader.json; it answers when an answer is more likely right than wrong (ANSWER_THRESHOLD). The dev sets are
never used for fitting; `--dev` only scores the result for the model card.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.examples import Item, antonym_swapped, negated, question_items, swap_entity, without_answer_sentence

GUESS_FLOOR = 0.1  # below this a best guess is noise (measured: right well under 1 time in 10)
# An answer is given when it is more likely right than wrong; below that the candidate is shown as a
# labelled guess ("Not sure … (28%)"). The threshold that maximises F1 on the held-out articles
# (0.25 for the shipped reader) treats a wrong answer like a refusal, and answered "Who is the prime
# minister of Japan?" with "Zelensky" (p 0.30): a made-up answer, what users trust least. It is
# still reported (`f1_best_threshold`) to show the trade-off.
ANSWER_THRESHOLD = 0.5
CHECK_SHARE = 0.25  # of the held-out articles: kept out of the fit to measure it
# How much of the fit each source of questions weighs (see `row_weights`): real news, where users
# ask; SQuAD 2.0's people-written near misses; held-out SQuAD 1.0 articles with made-up negatives.
# News (its questions and its follow-up turns, `--chats`) weighs most: it is where users ask, and
# with SQuAD's shares (0.35/0.35/0.30) the confidence was timid on news, each news article left out:
# 65.8 -> 66.6 F1 on its questions and 52.6 -> 55.7 on its conversations, the pool's own 61.2 -> 61.4.
SOURCE_SHARES = {"news": 0.45, "pool": 0.30, "squad": 0.25}


@dataclass(frozen=True)
class CalibrationQuestion:
    question: str
    golds: list[str]  # [] = unanswerable
    kind: str


@dataclass(frozen=True)
class CalibrationDocument:
    title: str
    text: str
    questions: list[CalibrationQuestion]


def seen_by_init(articles, trained_on: list[dict]) -> set[str]:
    """Ids of the questions the readers we continued from were trained on (each one's data position
    over its own shuffle of the training questions): those are not "never seen"."""
    seen: set[str] = set()
    for earlier in trained_on:
        items = question_items(articles, frozenset(earlier.get("held_out_articles", [])))
        random.Random(earlier["seed"]).shuffle(items)
        seen |= {str(item.qa["id"]) for item in items[: earlier["position"]]}
    return seen


def calibration_documents(articles, held_out: list[int], exclude: set[str], seed: int,
                          per_article: int = 40) -> list[CalibrationDocument]:
    """Per held-out article: the article whole (answerable questions, other articles' questions,
    entity-swapped questions), the article without some answer sentences (those questions), and
    the article whole again with negated and antonym questions (a document of their own, so rows
    collected before these kinds existed stay valid and only these need collecting)."""
    rng = random.Random(f"calibration-{seed}")
    pools = {a: [it for it in question_items(articles, frozenset(range(len(articles))) - {a})
                 if str(it.qa["id"]) not in exclude] for a in held_out}
    documents = []
    for a in held_out:
        paragraphs = articles[a]
        text = "\n\n".join(p["context"] for p in paragraphs)
        pool = list(pools[a])
        rng.shuffle(pool)
        positives = pool[:per_article]
        questions = [CalibrationQuestion(it.qa["question"], _golds(it), "answerable") for it in positives]
        others = [it for b in held_out if b != a for it in pools[b]]
        for it in rng.sample(others, min(len(others), per_article // 3)):
            if not any(g.lower() in text.lower() for g in _golds(it)):
                questions.append(CalibrationQuestion(it.qa["question"], [], "question from another article"))
        for it in pool[per_article: per_article + per_article // 3]:
            swapped = swap_entity(it.qa["question"], paragraphs[it.paragraph]["context"], paragraphs, it.paragraph, rng)
            if swapped is not None:
                questions.append(CalibrationQuestion(swapped, [], "entity swapped in the question"))
        documents.append(CalibrationDocument(str(a), text, questions))
        cut_items = pool[per_article + per_article // 3: per_article + 2 * (per_article // 3)]
        cut = _without_answers(paragraphs, cut_items)
        if cut is not None:
            cut_text, removed = cut
            documents.append(CalibrationDocument(
                f"{a}-cut", cut_text,
                [CalibrationQuestion(it.qa["question"], [], "answer sentence removed") for it in removed]))
        documents.append(CalibrationDocument(f"{a}-adversarial", text, adversarial_questions(
            paragraphs, pool[per_article + 2 * (per_article // 3):], per_article // 3)))
    return documents


def adversarial_questions(paragraphs, items: list[Item], count: int) -> list[CalibrationQuestion]:
    """SQuAD 2.0's near misses made from answerable questions: a negation added, or a word turned
    into an antonym the article never uses. Asked against the whole article, like a user would."""
    text = " ".join(p["context"] for p in paragraphs)
    out = []
    negations = (negated(it.qa["question"]) for it in items)
    out += [CalibrationQuestion(q, [], "negation added") for q in negations if q][: max(1, count // 2)]
    antonyms = (antonym_swapped(it.qa["question"], text) for it in items)
    out += [CalibrationQuestion(q, [], "antonym") for q in antonyms if q][:count]
    return out


def _golds(item: Item) -> list[str]:
    return list(dict.fromkeys(a["text"] for a in item.qa["answers"]))


def _without_answers(paragraphs, items: list[Item]):
    """The article with each item's answer sentence cut out, and the items whose answer then
    occurs nowhere in it."""
    contexts = [p["context"] for p in paragraphs]
    for it in items:
        context = contexts[it.paragraph]
        answer = it.qa["answers"][0]["text"]
        at = context.find(answer)
        if at >= 0:
            contexts[it.paragraph] = without_answer_sentence(context, at, at + len(answer)) or context
    text = "\n\n".join(c for c in contexts if c.strip())
    removed = [it for it in items if not any(g.lower() in text.lower() for g in _golds(it))]
    return (text, removed) if removed else None


def collect(documents: list[CalibrationDocument], reader: str | None, index_dir, k: int = 3):
    """Per question: the feature vector of the candidate the answering path weighs and whether it
    is right, grouped by document (so the fit/check split can keep articles apart). Questions go
    through `ArticleQA.evidence_many`, the path users get (the wider look included)."""
    from article_qa.index.article import article_from_text
    from article_qa.qa.pipeline import ArticleQA

    rows = []
    shared = None
    for n, doc in enumerate(documents):
        if not doc.questions:
            continue
        article = article_from_text(doc.text, doc.title)
        # One encoder and one reader for every document: a new encoder session per article grew
        # the process past 20 GB over 128 articles.
        qa = shared.for_article(article, index_dir) if shared else ArticleQA.open(
            article, reader=reader, index_dir=index_dir).with_settings(k=k)
        shared = qa
        for q, (evidence, _) in zip(doc.questions, qa.evidence_many([q.question for q in doc.questions])):
            document = doc.title if ":" in doc.title else doc.title.split("-")[0]  # "12-cut" is article 12
            rows.append(_row(qa, document, q.kind, q.golds, evidence))
        print(f"collected {n + 1}/{len(documents)} documents, {len(rows)} questions", flush=True)
    return rows


def _row(qa, document: str, kind: str, golds: list[str], evidence) -> dict:
    """A calibration row: the features of the span decide() weighs, and whether it is right."""
    from article_qa.evaluation.squad import is_right
    from article_qa.qa.answer import ordered_candidates
    from article_qa.qa.confidence import features

    text = qa.article.text
    reading = evidence.read.question
    ranked = ordered_candidates(reading, text, evidence.spans, evidence.hits, qa.settings.decision)
    candidates = [(features(reading, text, ranked, 0, evidence.hits), is_right(text[c.start:c.end], golds),
                   text[c.start:c.end]) for c in ranked[:1]]
    return {"document": document, "kind": kind, "golds": golds, "candidates": candidates}


CHAT_KIND = "follow-up turn"


def collect_chats(path: Path, reader: str | None, index_dir, k: int = 3) -> list[dict]:
    """Per turn of a conversations file (`eval --chats` format, each line naming its article): the
    row of the reading the conversation chooses (`evidence_in_context`), asked after the turns
    before it as chat asks them. A turn's document is "news:<article>", so leaving a news article
    out leaves out its conversations too."""
    from article_qa.evaluation.squad import load_chats
    from article_qa.index.article import load_article
    from article_qa.qa.conversation import evidence_in_context, turn_after
    from article_qa.qa.pipeline import ArticleQA

    opened: dict[str, ArticleQA] = {}
    histories: dict[str, list] = {}
    rows = []
    for turn in load_chats(path):
        named = turn.get("article") or ""
        if named not in opened:
            article = load_article(path.parent / named if named else None)
            opened[named] = (next(iter(opened.values())).for_article(article, index_dir) if opened else
                             ArticleQA.open(article, reader=reader, index_dir=index_dir).with_settings(k=k))
        qa = opened[named]
        history = histories.setdefault(str(turn["conversation"]), [])
        evidence, answer = evidence_in_context(qa, [turn["question"]], [history])[0]
        history.append(turn_after(answer))
        rows.append(_row(qa, f"news:{Path(named).stem or 'default'}", CHAT_KIND, list(turn["answers"]), evidence))
    print(f"collected {len(rows)} follow-up turns of {path.name}", flush=True)
    return rows


def squad2_documents(path: Path, titles: set[str] | None, prefix: str,
                     per_article: int | None = None) -> list[CalibrationDocument]:
    """SQuAD 2.0 articles (all, or those titled `titles`) with their own questions, answerable and
    unanswerable as their writers made them; an article is its paragraphs joined by a blank line.
    With `per_article`, a fixed random sample of that many questions of each article."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents = []
    for article in data:
        if titles is not None and article.get("title") not in titles:
            continue
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        questions = [
            CalibrationQuestion(qa["question"], [] if qa.get("is_impossible") else
                                list(dict.fromkeys(a["text"] for a in qa["answers"])),
                                f"{prefix} unanswerable" if qa.get("is_impossible") else f"{prefix} answerable")
            for p in article["paragraphs"] for qa in p["qas"]
        ]
        title = f"{prefix}:{article.get('title', '')}"
        if per_article is not None:
            random.Random(title).shuffle(questions)
            questions = questions[:per_article]
        documents.append(CalibrationDocument(title, text, questions))
    return documents


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50,
                 weights: np.ndarray | None = None):
    """Logistic regression by Newton's method on standardised features, L2 on the weights;
    `weights` weigh the rows (default: 1 each)."""
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[scales < 1e-6] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - means) / scales])
    r = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(z @ w, -50, 50)))
        gradient = z.T @ (r * (p - y)) + penalty * w
        hessian = (z * (r * p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return means, scales, w[1:], float(w[0])


def source(row) -> str:
    """Where a calibration question comes from: "news", "pool" (SQuAD 2.0's own unanswerable
    questions) or "squad" (held-out SQuAD 1.0 articles with made-up negatives)."""
    prefix = row["document"].split(":")[0]
    return prefix if prefix in SOURCE_SHARES else "squad"


def row_weights(rows) -> np.ndarray:
    """Each source weighs SOURCE_SHARES of the fit (among the sources present), however many
    questions it has: 120 news questions count as much as their share, not as 120 of 5,000."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[source(r)] = counts.get(source(r), 0) + len(r["candidates"])
    total_share = sum(SOURCE_SHARES[s] for s in counts)
    size = sum(counts.values())
    per_row = {s: SOURCE_SHARES[s] / total_share * size / n for s, n in counts.items()}
    return np.array([per_row[source(r)] for r in rows for _ in r["candidates"]], dtype=float)


def _calibrator(rows):
    from article_qa.qa.confidence import FEATURES, Calibrator

    x = np.array([f for r in rows for f, _, _ in r["candidates"]], dtype=float)
    y = np.array([right for r in rows for _, right, _ in r["candidates"]], dtype=float)
    means, scales, weights, bias = fit_logistic(x, y, weights=row_weights(rows))
    return Calibrator(FEATURES, tuple(map(float, means)), tuple(map(float, scales)), tuple(map(float, weights)), bias)


def outcomes(rows, calibrator, threshold: float) -> dict:
    """SQuAD-style scores of deciding `rows` with `calibrator` (or a calibrator per document) at
    `threshold`, and the ECE."""
    from article_qa.evaluation.squad import best_scores, calibration_error

    f1s, probabilities, right, answered_wrong, refused = [], [], [], 0, 0
    for r in rows:
        if not r["candidates"]:
            f1s.append(float(not r["golds"]))
            continue
        own = calibrator[r["document"]] if isinstance(calibrator, dict) else calibrator
        p, (_, is_right_, text) = max(((own.probability(c[0]), c) for c in r["candidates"]),
                                      key=lambda pc: pc[0])
        probabilities.append(p)
        right.append(is_right_)
        given = text if p >= threshold else None
        f1s.append(best_scores(given, r["golds"])[1])
        answered_wrong += given is not None and not is_right_
        refused += given is None and bool(r["golds"])
    has = [f for f, r in zip(f1s, rows) if r["golds"]]
    no = [f for f, r in zip(f1s, rows) if not r["golds"]]
    return {
        "f1": round(100 * float(np.mean(f1s)), 2), "HasAns_f1": round(100 * float(np.mean(has)), 2) if has else None,
        "NoAns_exact": round(100 * float(np.mean(no)), 2) if no else None,
        "ece": round(calibration_error(probabilities, right), 4), "answered_wrong": answered_wrong,
        "abstained_answerable": refused, "questions": len(rows),
    }


def each_left_out(rows, kind: str, threshold: float) -> dict | None:
    """Outcomes on the documents of source `kind`, each decided by a calibrator fitted without it:
    what the confidence does on a news story it has not seen."""
    documents = sorted({r["document"] for r in rows if source(r) == kind})
    if len(documents) < 2:
        return None
    calibrators = {d: _calibrator([r for r in rows if r["document"] != d]) for d in documents}
    return outcomes([r for r in rows if r["document"] in calibrators], calibrators, threshold)


def best_threshold(rows, calibrator) -> float:
    grid = [round(t, 2) for t in np.arange(0.2, 0.81, 0.05)]
    return max(grid, key=lambda t: (outcomes(rows, calibrator, t)["f1"], -abs(t - 0.5)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the SQuAD 1.x training JSON the reader trained on")
    parser.add_argument("--reader", type=Path, required=True, help="the trained reader folder (runs/reader)")
    parser.add_argument("--per-article", type=int, default=40, help="answerable questions per held-out article")
    parser.add_argument("--squad-articles", type=int, default=None,
                        help="use only the first N held-out SQuAD 1.0 articles (default: all 40)")
    parser.add_argument("--pool-per-article", type=int, default=None,
                        help="a fixed random sample of N questions of each --pool article (default: all)")
    parser.add_argument("--pool", type=Path, default=None,
                        help="SQuAD 2.0 JSON of people-written unanswerable questions (its articles the reader "
                             "held out, or all of them for a reader never trained on it)")
    parser.add_argument("--news", type=Path, default=None,
                        help="a folder of news articles' SQuAD 2.0 files (*.squad.json), fitted on too")
    parser.add_argument("--chats", type=Path, action="append", default=[],
                        help="a conversations file of news articles (eval --chats format, lines naming their "
                             "article), its follow-up turns fitted on as news; may be repeated")
    parser.add_argument("--rows", type=Path, default=None, help="reuse (or save) the collected features here")
    parser.add_argument("--index-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    import tempfile

    from article_qa.qa.reader_loading import READER_CONFIG
    from training.examples import held_out_articles, load_articles

    state = json.loads((args.reader / "train_state.json").read_text())
    config = state["config"]
    rows = []
    if args.rows is not None and args.rows.is_file():
        # Rows saved by an earlier version held the top three spans; decide() weighs the first.
        rows = [dict(r, candidates=r["candidates"][:1]) for r in json.loads(args.rows.read_text())]
    articles = load_articles(args.data)
    # Questions this reader, or one it continued from, trained on are not "never seen". A reader
    # trained before articles were held out (none in its config) is calibrated on the articles
    # later readers hold out, with the questions it had not reached yet.
    held_out = config.get("held_out_articles") or sorted(held_out_articles(len(articles), 40, config["seed"]))
    own = {"seed": config["seed"], "position": state["position"],
           "held_out_articles": config.get("held_out_articles", [])}
    exclude = seen_by_init(articles, [own, *state.get("init_trained_on", [])])
    documents = calibration_documents(articles, held_out[: args.squad_articles], exclude, config["seed"],
                                      args.per_article)
    if args.pool is not None:
        titles = config.get("pool_held_out_articles")
        documents += squad2_documents(args.pool, set(titles) if titles else None, "pool", args.pool_per_article)
    if args.news is not None:
        for news in sorted(args.news.glob("*.squad.json")):
            documents += squad2_documents(news, None, "news")
    # Saved rows from before a kind of question existed: collect only the documents of that kind.
    collected_kinds = {r["kind"] for r in rows}
    collected_documents = {r["document"] for r in rows}
    missing = [d for d in documents if not {q.kind for q in d.questions} & collected_kinds
               or (":" in d.title and d.title not in collected_documents)]
    if missing:
        with tempfile.TemporaryDirectory() as cache:
            rows += collect(missing, str(args.reader), args.index_dir or cache)
    if args.chats and not any(r["kind"] == CHAT_KIND for r in rows):
        with tempfile.TemporaryDirectory() as cache:
            for chats in args.chats:
                rows += collect_chats(chats, str(args.reader), args.index_dir or cache)
    if (missing or args.chats) and args.rows is not None:
        args.rows.write_text(json.dumps(rows))
    documents = sorted({r["document"] for r in rows})
    check = set(random.Random("check").sample(documents, max(1, int(len(documents) * CHECK_SHARE))))
    fit_rows = [r for r in rows if r["document"] not in check]
    check_rows = [r for r in rows if r["document"] in check]
    trial = _calibrator(fit_rows)
    threshold = ANSWER_THRESHOLD
    best = best_threshold(fit_rows, trial)
    report = {"fit": outcomes(fit_rows, trial, threshold), "check": outcomes(check_rows, trial, threshold),
              "threshold_on_fit": threshold, "f1_best_threshold": best,
              "check_at_f1_best_threshold": outcomes(check_rows, trial, best)}
    for kind in ("news", "pool"):
        left_out = each_left_out(rows, kind, threshold)
        if left_out is not None:
            report[f"{kind}_each_article_left_out"] = left_out
    final = _calibrator(rows)
    kinds = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    path = args.reader / READER_CONFIG
    reader_config = json.loads(path.read_text())
    reader_config["confidence"] = {
        "calibrator": final.to_dict(), "answer_threshold": threshold, "guess_floor": GUESS_FLOOR,
        "fitted_on": {"questions": len(rows), "articles": len(documents), "kinds": kinds},
        "check": report,
    }
    path.write_text(json.dumps(reader_config, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"answer threshold {threshold}; written to {path}")


if __name__ == "__main__":
    main()
