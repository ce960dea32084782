"""`article-qa eval`: run the real answering path over SQuAD files and score it.

Each SQuAD article is one document that the tool splits and indexes its own way, and each question
is searched in its own article only, exactly as a user's question would be. Besides the official
SQuAD v2 scores it reports retrieval recall@k (so a drop in F1 can be traced to retrieval or to
the reader), the calibration error of the confidence (ECE), and how many questions were answered
wrongly or refused although answerable, so the trade-off of the answer threshold is visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from article_qa.evaluation.squad import Scoreboard, best_scores, is_right, load_chats, load_squad
from article_qa.index.article import article_from_text, load_article
from article_qa.index.printable import printable, quoted
from article_qa.qa.conversation import Contextual, Conversations
from article_qa.qa.pipeline import ArticleQA

CHUNK = 32
RECALL_DEPTH = 5


@dataclass
class EvalResult:
    metrics: dict
    notes: list[str] = field(default_factory=list)


def _with_every_guess(qa: ArticleQA) -> ArticleQA:
    """The same pipeline, keeping a best guess however unlikely: calibration is measured on the
    best candidate of every question, given or not."""
    return qa.with_settings(decision=replace(qa.settings.decision, guess_floor=0.0))


def _add(board: Scoreboard, answer, golds, retrieved, gold_spans, seconds) -> None:
    candidate = answer.text if answer.answered else (answer.best_guess.text if answer.best_guess else None)
    board.add(answer.text, golds, retrieved, gold_spans, seconds,
              candidate=candidate, confidence=answer.score if candidate is not None else None)


def detail(kind: str, article: str, question_id, answer, golds: list[str]) -> dict:
    """One line of `eval --details`: what was asked, how it was read, what came back, and how it scored."""
    guess = answer.best_guess.text if answer.best_guess is not None else None
    return {
        "set": kind, "article": article, "id": question_id, "question": answer.question,
        "read_as": answer.read_as, "verdict": answer.verdict, "answer": answer.text, "best_guess": guess,
        "score": round(float(answer.score), 4), "references": list(golds),
        "f1": round(100 * best_scores(answer.text, golds)[1], 2),
        "right": is_right(answer.text, golds) if golds else not answer.answered,
    }


def evaluate_file(
    path: Path, *, k: int = 3, limit: int | None = None, article_id: str | None = None,
    chats: Path | None = None, chats_article: Path | None = None, index_dir=None, model=None, reader=None,
    progress=None, answer_threshold: float | None = None, details: list[dict] | None = None,
) -> EvalResult:
    documents = load_squad(path)
    if article_id is not None:
        documents = [d for d in documents if d.title == article_id]
        if not documents:
            raise ValueError(f"no article titled {quoted(article_id)} in {printable(str(path))}")
    total = sum(len(d.questions) for d in documents)
    if limit is not None:
        total = min(total, limit)
    board = Scoreboard()
    done = 0
    shared = None  # reader and settings loaded once, reused across articles
    for document in documents:
        if done >= total:
            break
        questions = document.questions[: total - done]
        article = article_from_text(document.text, document.title)
        if shared is None:
            qa = ArticleQA.open(article, model=model, reader=reader, index_dir=index_dir)
            qa = _with_every_guess(_with_threshold(qa, answer_threshold)).with_settings(k=k)
        else:
            qa = shared.for_article(article, index_dir)
        shared = qa
        for first in range(0, len(questions), CHUNK):
            chunk = questions[first : first + CHUNK]
            started = time.perf_counter()
            answers = qa.ask_many([q.question for q in chunk])
            per_question = (time.perf_counter() - started) / len(chunk)
            # Recall is of retrieval alone, searched again as deep as it is reported.
            deep_hits = qa.search_many([Contextual(q.question, q.question) for q in chunk], max(k, RECALL_DEPTH))
            for q, answer, deep in zip(chunk, answers, deep_hits):
                _add(board, answer, q.answers, [(x.passage.start, x.passage.end) for x in deep],
                     q.answer_spans, per_question)
                if details is not None:
                    details.append(detail("question", document.title, q.id, answer, q.answers))
            done += len(chunk)
            if progress:
                progress(done, total)
    metrics = board.summary()
    result = EvalResult(metrics)
    if shared is not None:
        result.notes.append(f"reader: {shared.reader.name}; decision: {_describe(shared)}")
    if chats is not None:
        metrics.update(evaluate_chats(chats, article=chats_article, index_dir=index_dir, model=model,
                                      reader=reader, k=k, notes=result.notes, answer_threshold=answer_threshold,
                                      details=details))
    return result


def evaluate_corpus(
    path: Path, *, k: int = 3, limit: int | None = None, index_dir=None, model=None, reader=None,
    progress=None, answer_threshold: float | None = None, details: list[dict] | None = None,
) -> EvalResult:
    """A SQuAD file's articles as one corpus: each question is searched across all of them, as a
    question over a folder of articles is. Besides the usual scores it reports recall@k of the
    right article (`article_recall@k`: the question's own article among the articles of the first
    k passages) and of the right passage (`recall@k`: a passage of that article holding a reference
    answer)."""
    from article_qa.index.corpus_sources import Entry, Listing

    documents = load_squad(path)
    ids: dict[str, int] = {}
    entries = []
    for document in documents:  # a title SQuAD repeats gets a number, so every article has its own id
        ids[document.title] = ids.get(document.title, 0) + 1
        article_id = document.title if ids[document.title] == 1 else f"{document.title} ({ids[document.title]})"
        entries.append(Entry(article_id, f"{path}#{article_id}", text=document.text, title=document.title,
                             where=f"{path}#{article_id}"))
    if not entries:
        raise ValueError(f"{printable(str(path))} holds no articles")
    listing = Listing((f"{Path(path).resolve()}#squad-corpus",), entries)
    qa = ArticleQA.open_corpus(listing, model=model, reader=reader, index_dir=index_dir)
    qa = _with_every_guess(_with_threshold(qa, answer_threshold)).with_settings(k=k)
    asked = [(entry.id, q) for entry, document in zip(entries, documents) for q in document.questions]
    if limit is not None:
        asked = asked[:limit]
    board = Scoreboard()
    for first in range(0, len(asked), CHUNK):
        chunk = asked[first:first + CHUNK]
        started = time.perf_counter()
        answers = qa.ask_many([q.question for _, q in chunk])
        per_question = (time.perf_counter() - started) / len(chunk)
        deep_hits = qa.search_many([Contextual(q.question, q.question) for _, q in chunk], max(k, RECALL_DEPTH))
        for (article_id, q), answer, deep in zip(chunk, answers, deep_hits):
            # A passage of another article never holds this question's reference span.
            spans = [(h.passage.start, h.passage.end) if h.passage.article.id == article_id else (-1, -1)
                     for h in deep]
            # An answer read from another article is scored by its text, as SQuAD scores any answer.
            _add(board, answer, q.answers, spans, q.answer_spans, per_question)
            if q.answers:
                board.add_article_rank([h.passage.article.id for h in deep], article_id)
            if details is not None:
                record = detail("question", article_id, q.id, answer, q.answers)
                record["answer_article"] = answer.article.id if answer.article is not None else None
                details.append(record)
        if progress:
            progress(first + len(chunk), len(asked))
    result = EvalResult(board.summary())
    result.metrics["articles"] = len(entries)
    result.notes.append(f"reader: {qa.reader.name}; decision: {_describe(qa)}; {len(entries)} articles, "
                        f"{qa.index.passage_count} passages in one corpus")
    return result


def _with_threshold(qa: ArticleQA, answer_threshold: float | None) -> ArticleQA:
    if answer_threshold is None:
        return qa
    return qa.with_settings(decision=replace(qa.settings.decision, answer_threshold=answer_threshold))


def _describe(qa: ArticleQA) -> str:
    d = qa.settings.decision
    if d.calibrator is not None:
        return f"calibrated confidence, answer at p ≥ {d.answer_threshold}"
    return f"margin over no answer ≥ {d.null_threshold} logits"


def evaluate_chats(path: Path, *, article: Path | None = None, index_dir=None, model=None, reader=None, k: int = 3,
                   notes: list[str], answer_threshold: float | None = None, details: list[dict] | None = None) -> dict:
    """Follow-up conversations, each turn asked after the previous turns of its conversation,
    exactly as `chat` and `batch` ask them. A turn is about its line's `"article"` (a path relative
    to the conversations file), else `article` (default: the shipped one). When `article` is a
    corpus (a folder, a glob, a JSON Lines file: `index.corpus_kind.is_corpus`), every turn is
    asked across all of its articles, as `chat --article FOLDER` asks, and a line's `"article"`
    (an id or path of the corpus) limits that turn to that article, as in `batch`. Turns whose
    references are nowhere in their article (in a corpus: in any of its articles, or in the one
    the line names) are counted in a note: the wrong article was given. A bad conversations file
    is reported before any article is indexed."""
    from article_qa.index.corpus_kind import is_corpus

    opened: dict[Path | None, ArticleQA] = {}
    corpus = article is not None and is_corpus([str(article)])

    def pipeline(turn) -> ArticleQA:
        if corpus:
            if not opened:
                qa = ArticleQA.open_corpus([str(article)], model=model, reader=reader, index_dir=index_dir)
                opened[None] = _with_every_guess(_with_threshold(qa, answer_threshold)).with_settings(k=k)
            return opened[None]
        named = turn.get("article")
        where = (Path(path).parent / named) if isinstance(named, str) and named else article
        if where not in opened:
            if opened:
                opened[where] = next(iter(opened.values())).for_article(load_article(where), index_dir)
            else:
                qa = ArticleQA.open(load_article(where), model=model, reader=reader, index_dir=index_dir)
                opened[where] = _with_every_guess(_with_threshold(qa, answer_threshold)).with_settings(k=k)
        return opened[where]

    def within(qa: ArticleQA, turn) -> str | None:
        named = turn.get("article")
        return qa.resolve_within(named) if corpus and isinstance(named, str) and named else None

    def texts(qa: ArticleQA, article_id: str | None) -> list[str]:
        if not corpus:
            return [qa.article.text]
        ids = [article_id] if article_id is not None else list(qa.index.refs)
        return [qa.text_of(qa.index.refs[i]) for i in ids]

    conversations: Conversations | None = None
    board = Scoreboard()
    turns = load_chats(path)
    missing = 0
    for turn in turns:
        qa = pipeline(turn)
        limit = within(qa, turn)
        if turn["answers"] and not any(a in text for text in texts(qa, limit) for a in turn["answers"]):
            missing += 1
        if conversations is None:
            conversations = qa.conversations()
        conversation = conversations.named(str(turn["conversation"]))
        conversation.qa = qa  # a turn is asked about its own article
        started = time.perf_counter()
        answer = conversation.ask(turn["question"], within=limit)
        _add(board, answer, turn["answers"], None, [], time.perf_counter() - started)
        f1 = best_scores(answer.text, turn["answers"])[1]
        read = f" (read as {answer.read_as!r})" if answer.read_as else ""
        guess = f", guess {answer.best_guess.text!r} {answer.score:.2f}" if answer.best_guess else ""
        notes.append(f"chat {turn['id']}: {turn['question']!r}{read} -> {answer.text!r}{guess} (F1 {100 * f1:.0f})")
        if details is not None:
            source = (answer.article.source if answer.article is not None else None) if corpus else qa.article.source
            details.append(detail("turn", source, turn["id"], answer, turn["answers"]))
    if missing:
        notes.insert(0, f"warning: the references of {missing} of {len(turns)} turns are not in their article "
                        "(is --article the one the conversations are about?)")
    summary = board.summary()
    return {
        "chat_exact": summary["exact"], "chat_f1": summary["f1"], "chat_turns": len(turns),
        "chat_ece": summary["ece"], "chat_answered_wrong": summary["answered_wrong"],
        "chat_abstained_answerable": summary["abstained_answerable"],
    }
