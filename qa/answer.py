"""The answer a user sees: a span of the article with its evidence, or an honest "no answer".

Abstaining is a decision, not a fallback: the reader's best span is the answer only when the
probability that it is right (`qa/confidence.py`) reaches the reader's answer threshold; below that
it is shown as a labelled best guess, or not at all. Returning the nearest sentence when nothing
answers would be a made-up answer with a straight face. What a verdict is called and how a
probability is said are decided here, once, for the terminal, the JSON, the CSV and the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from article_qa.qa.confidence import Calibrator, amount_near, answer_type, features, states_number, states_time
from article_qa.qa.reader import Span
from article_qa.qa.retrieve import Hit
from article_qa.qa.spans import extended_end, names_asked_unit, tense_agreement

NO_ANSWER_TEXT = "The article does not say."
NOT_SURE_TEXT = "Not sure."
CLOSEST_TEXT = "The closest the article comes:"  # before a best guess, after NOT_SURE_TEXT
VERDICTS = ("answered", "not sure", "not in the article")


def percent(probability: float) -> str:
    """A probability as a percentage that never claims certainty: '>99%' and '<1%' at the ends."""
    if probability >= 0.995:
        return ">99%"
    if probability < 0.005:
        return "<1%"
    return f"{round(probability * 100)}%"


@dataclass(frozen=True)
class Candidate:
    """A span of the article (`text == article[start:end]`) and the probability that it is right."""

    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Answer:
    """What a question got: an answer span, or none ("the article does not say") possibly with a
    `best_guess` that was not likely enough to be given as the answer ("not sure").

    `text == article[start:end]` when answered; all three are None otherwise. `score` is the
    probability that the answer is right; on abstention, that of the best guess (0 without one).
    """

    question: str
    text: str | None
    start: int | None
    end: int | None
    score: float
    hits: tuple[Hit, ...]
    best_guess: Candidate | None = None  # only when not answered
    read_as: str | None = None  # the question as the reader read it, when a follow-up was rewritten
    article: object = None  # the `ArticleRef` of the answer's (or best guess's) article; its offsets count there

    @property
    def answered(self) -> bool:
        return self.text is not None

    @property
    def remembered_text(self) -> str | None:
        """The text a conversation carries on with: the answer, else the best guess shown."""
        if self.text is not None:
            return self.text
        return self.best_guess.text if self.best_guess is not None else None

    @property
    def verdict(self) -> str:
        """"answered", "not sure" (abstained with a best guess) or "not in the article"."""
        if self.answered:
            return "answered"
        return "not sure" if self.best_guess is not None else "not in the article"

    @property
    def confidence(self) -> str | None:
        """The probability of the answer (or of the best guess) as people are shown it."""
        return percent(self.score) if self.answered or self.best_guess is not None else None

    def to_dict(self) -> dict:
        """The JSON shape of `--json`, batch output and the web API."""
        named = {} if self.article is None else {"article": self.article.to_dict()}
        answer = None
        if self.answered:
            answer = {**Candidate(self.text, self.start, self.end, self.score).to_dict(), **named}
        out = {"question": self.question}
        if self.read_as is not None and self.read_as != self.question:
            out["read_as"] = self.read_as
        out["verdict"] = self.verdict
        out["answer"] = answer
        out["best_guess"] = {**self.best_guess.to_dict(), **named} if self.best_guess else None
        out["confidence"] = self.confidence
        out["passages"] = [
            {"text": h.passage.text, "start": h.passage.start, "end": h.passage.end, "score": round(h.score, 4),
             **_article_of(h.passage, named)}
            for h in self.hits
        ]
        return out


def _article_of(passage, named: dict) -> dict:
    """A passage's `"article"`: its own (in a corpus), else the answer's (one article's index)."""
    ref = getattr(passage, "article", None)
    return named if ref is None else {"article": ref.to_dict()}


@dataclass(frozen=True)
class Decision:
    """How candidate spans become an answer, a best guess, or "the article does not say".

    With a calibrator (the shipped reader has one) the reader's best span gets the probability that
    it is right; it is the answer when that probability reaches `answer_threshold`, else a best
    guess when it reaches `guess_floor`. (Letting the calibrator re-rank the top three spans was
    measured worse: check-set F1 64.6 against 66.4, ECE 0.056 against 0.037; it favoured spans
    cut short of the question's own words.) Without one (another Hugging Face reader) the
    best span must beat "no answer" by `null_threshold` logits, and its "probability" is only the
    sigmoid of that margin.
    """

    null_threshold: float = 0.0  # a span must beat "no answer" by this many logits
    retrieval_weight: float = 0.0  # adds the passage's retrieval score (0-1) times this to the margin
    guess_floor: float = 0.1  # an abstention shows its best candidate as a guess when at least this likely
    calibrator: Calibrator | None = None
    answer_threshold: float = 0.5  # with a calibrator: the probability an answer needs


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def _evidence(span: Span, hits: list[Hit], decision: Decision) -> float:
    retrieval = next((h.score for h in hits if h.passage.index == span.passage.index), 0.0)
    return span.margin + decision.retrieval_weight * retrieval


def ranked_candidates(article_text: str, spans: list[Span], hits: list[Hit], decision: Decision) -> list[Span]:
    """Candidate spans best first, trimmed of white space and dangling commas at the edges; a span
    of nothing else is dropped (it would be an empty answer)."""
    ranked = []
    for span in sorted(spans, key=lambda s: _evidence(s, hits, decision), reverse=True):  # stable
        start, end = _trim(article_text, span.start, span.end)
        if start < end:
            ranked.append(replace(span, start=start, end=end))
    return ranked


AMOUNT_RERANK_LOGITS = 3.0  # how far behind the best a number may be and still be chosen for its context


def ordered_candidates(question: str, article_text: str, spans: list[Span], hits: list[Hit],
                       decision: Decision) -> list[Span]:
    """`ranked_candidates`, except that for a question asking how many or how much, the number whose
    surrounding words match the question best (`amount_near`) comes first among the numbers the
    reader ranks within AMOUNT_RERANK_LOGITS of its best: the price, not the break-up fee beside it."""
    ranked = [replace(s, end=extended_end(article_text, s.start, s.end))
              for s in ranked_candidates(article_text, spans, hits, decision)]
    if len(ranked) < 2:
        return ranked
    if answer_type(question) == "time":
        return _in_tense_first(question, article_text, ranked, hits, decision)
    if answer_type(question) != "number":
        return ranked
    top = _evidence(ranked[0], hits, decision)
    close = [i for i, s in enumerate(ranked[:5])
             if top - _evidence(s, hits, decision) <= AMOUNT_RERANK_LOGITS
             and states_number(article_text[s.start:s.end])]
    if not close:
        return ranked
    chosen = max(close, key=lambda i: (amount_near(question, article_text, ranked[i]), -i))
    return [ranked[chosen]] + ranked[:chosen] + ranked[chosen + 1:]


def _in_tense_first(question: str, article_text: str, ranked: list[Span], hits: list[Hit],
                    decision: Decision) -> list[Span]:
    """For a "when" question, the time whose clause is in the question's tense (`tense_agreement`)
    comes first among the times the reader ranks within AMOUNT_RERANK_LOGITS of its best: "When
    will the talks continue?" is the Monday they "are scheduled to continue on", not the Sunday the
    announcement "was made on". Among those, one of the grain asked for (`names_asked_unit`: "What
    time …?" an hour) comes before the reader's own order."""
    top = _evidence(ranked[0], hits, decision)
    close = [i for i, s in enumerate(ranked[:5])
             if top - _evidence(s, hits, decision) <= AMOUNT_RERANK_LOGITS and states_time(article_text[s.start:s.end])]
    if not close:
        return ranked
    chosen = max(close, key=lambda i: (tense_agreement(question, article_text, ranked[i].start),
                                       names_asked_unit(question, article_text[ranked[i].start:ranked[i].end]), -i))
    return [ranked[chosen]] + ranked[:chosen] + ranked[chosen + 1:]


def decide(question: str, article_text: str, spans: list[Span], hits: list[Hit], decision: Decision,
           reading: str | None = None) -> Answer:
    """The answer, a best guess, or none, from the reader's candidate spans.

    `reading` is the question as the reader read it (a rewritten follow-up); features use it.
    """
    ranked = ordered_candidates(reading or question, article_text, spans, hits, decision)
    if not ranked:
        return Answer(question, None, None, None, 0.0, tuple(hits))
    best = ranked[0]
    if decision.calibrator is not None:
        confidence = decision.calibrator.probability(features(reading or question, article_text, ranked, 0, hits))
        answered = confidence >= decision.answer_threshold
    else:
        evidence = _evidence(best, hits, decision)
        confidence = sigmoid(evidence - decision.null_threshold)
        answered = evidence >= decision.null_threshold
    if not answered:
        guess = Candidate(article_text[best.start:best.end], best.start, best.end, confidence)
        if confidence < decision.guess_floor:
            return Answer(question, None, None, None, 0.0, tuple(hits))
        return Answer(question, None, None, None, confidence, tuple(hits), best_guess=guess)
    return Answer(question, article_text[best.start:best.end], best.start, best.end, confidence, tuple(hits))


_TRAILING = " \t\r\n,;:"
_PAIRS = {"“": "”", "‘": "’", "«": "»", "(": ")", "[": "]", '"': '"'}
_CLOSERS = {close: open_ for open_, close in _PAIRS.items()}


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop white space, dangling commas and unpaired quotes or brackets at the edges (the reader
    often starts a quoted answer at its opening quote: '“irreversible'); the span stays an exact
    slice of the article."""
    while True:
        before = (start, end)
        while start < end and text[start] in _TRAILING:
            start += 1
        while end > start and text[end - 1] in _TRAILING:
            end -= 1
        if start < end and text[start] in _PAIRS and _PAIRS[text[start]] not in text[start + 1:end]:
            start += 1
        if end > start and text[end - 1] in _CLOSERS and _CLOSERS[text[end - 1]] not in text[start:end - 1]:
            end -= 1
        if (start, end) == before:
            return start, end
