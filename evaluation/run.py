"""`article-qa eval`: run the real answering path over SQuAD files and score it.

Each SQuAD article is one document that the tool splits and indexes its own way, and each question
is searched in its own article only, exactly as a user's question would be. Besides the official
SQuAD v2 scores it reports retrieval recall@k, so a drop in F1 can be traced to retrieval or to the
reader, and with `--tune` the no-answer threshold and retrieval weight that maximise F1 (to be
copied into `reader.json`; tune on development data only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from index.article import article_from_text, load_article
from qa.answer import Decision, decide
from qa.conversation import Contextual
from qa.pipeline import ArticleQA
from evaluation.squad import Scoreboard, best_scores, load_chats, load_squad

CHUNK = 32
RECALL_DEPTH = 5


@dataclass
class EvalResult:
    metrics: dict
    notes: list[str] = field(default_factory=list)
    tuned: tuple[Decision, float] | None = None  # with tune=True: best decision and its F1
    records: list = field(default_factory=list)  # with tune=True: what tuning over several files needs


@dataclass
class _Record:
    golds: list[str]
    spans: list  # reader candidates
    hits: list  # the k hits that were read
    article_text: str


def evaluate_file(
    path: Path, *, k: int = 3, limit: int | None = None, article_id: str | None = None,
    chats: Path | None = None, index_dir=None, model=None, reader=None, progress=None, tune: bool = False,
) -> EvalResult:
    documents = load_squad(path)
    if article_id is not None:
        documents = [d for d in documents if d.title == article_id]
        if not documents:
            raise ValueError(f"no article titled {article_id!r} in {path}")
    total = sum(len(d.questions) for d in documents)
    if limit is not None:
        total = min(total, limit)
    board = Scoreboard()
    records: list[_Record] = []
    done = 0
    shared = None  # reader and settings loaded once, reused across articles
    for document in documents:
        if done >= total:
            break
        questions = document.questions[: total - done]
        qa = ArticleQA.open(article_from_text(document.text, document.title), model=model, reader=reader, index_dir=index_dir)
        if shared is not None:
            qa.use_reader(shared.reader)
        qa = qa.with_settings(k=k)
        shared = qa
        for first in range(0, len(questions), CHUNK):
            chunk = questions[first : first + CHUNK]
            started = time.perf_counter()
            contexts = [Contextual(q.question, q.question) for q in chunk]
            deep_hits = qa.search_many(contexts, max(k, RECALL_DEPTH))
            hits = [h[:k] for h in deep_hits]
            spans = qa.read_many(contexts, hits)
            answers = [decide(q.question, document.text, s, h, qa.settings.decision) for q, s, h in zip(chunk, spans, hits)]
            per_question = (time.perf_counter() - started) / len(chunk)
            for q, answer, deep, s, h in zip(chunk, answers, deep_hits, spans, hits):
                board.add(answer.text, q.answers, [(x.passage.start, x.passage.end) for x in deep],
                          q.answer_spans, per_question)
                records.append(_Record(q.answers, s, h, document.text))
            done += len(chunk)
            if progress:
                progress(done, total)
    metrics = board.summary()
    result = EvalResult(metrics)
    if shared is not None:
        result.notes.append(f"reader: {shared.reader.name}; decision: {shared.settings.decision}")
    if tune and records:
        result.records = records
        result.tuned = tune_decision(records)
        decision, f1 = result.tuned
        result.notes.append(f"tuned: F1 {f1:.2f} with null_threshold={decision.null_threshold} "
                            f"retrieval_weight={decision.retrieval_weight} (reader.json holds these)")
    if chats is not None:
        metrics.update(evaluate_chats(chats, index_dir=index_dir, model=model, reader=reader, k=k, notes=result.notes))
    return result


def _f1_with(records: list[_Record], decision: Decision) -> float:
    total = 0.0
    for r in records:
        answer = decide("", r.article_text, r.spans, r.hits, decision)
        total += best_scores(answer.text, r.golds)[1]
    return 100.0 * total / len(records)


def tune_decision(*record_sets: list[_Record]) -> tuple[Decision, float]:
    """Grid-search the no-answer threshold and retrieval weight for the best F1, averaged over the
    given sets: SQuAD 2.0's adversarial unanswerable questions alone pull the threshold so high
    that ordinary questions about a news article go unanswered, so tuning weighs both kinds."""
    best = None
    for weight in (0.0, 1.0, 2.0, 4.0, 8.0):
        for quarter in range(-40, 41):
            decision = Decision(null_threshold=quarter / 4, retrieval_weight=weight)
            f1 = sum(_f1_with(records, decision) for records in record_sets) / len(record_sets)
            if best is None or f1 > best[1]:
                best = (decision, f1)
    return best


def evaluate_chats(path: Path, *, index_dir=None, model=None, reader=None, k: int = 3, notes: list[str]) -> dict:
    """Follow-up conversations over the default article: each turn asked after the previous ones."""
    qa = ArticleQA.open(load_article(None), model=model, reader=reader, index_dir=index_dir).with_settings(k=k)
    conversations: dict[str, object] = {}
    exact = f1 = 0.0
    turns = load_chats(path)
    for turn in turns:
        conversation = conversations.setdefault(turn["conversation"], qa.conversation())
        answer = conversation.ask(turn["question"])
        e, f = best_scores(answer.text, turn["answers"])
        exact += e
        f1 += f
        notes.append(f"chat {turn['id']}: {turn['question']!r} -> {answer.text!r} (F1 {100 * f:.0f})")
    n = max(1, len(turns))
    return {"chat_exact": round(100 * exact / n, 2), "chat_f1": round(100 * f1 / n, 2), "chat_turns": len(turns)}
