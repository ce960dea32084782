"""How likely an answer is to be right: a small logistic model over what is known about it.

The reader's margin over "no answer" alone is a poor probability: it is confident about spans of
passages that merely resemble the question, and timid about plain answers. So the decision looks at
everything known about the best candidate: the reader's logits, the retrieval scores, whether the
question's words and names are in the answer's sentence and in the article at all, whether other
passages propose the same answer, whether the answer is the kind the question asks for, and how
long the article is. A logistic model fitted on questions of articles the reader never trained on
(`training/calibrate.py`) turns these into the probability that the answer is right (F1 ≥ 0.5
against a reference answer).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from article_qa.index.sentences import sentence_spans
from article_qa.qa.spans import line_of, title_case
from article_qa.qa.words import STOP_WORDS, TIME_WORDS_OF_ANSWERS

FEATURES = (
    "margin",  # best span logit minus its window's null logit
    "null",  # the window's null logit: how sure the reader is the passage says nothing
    "span_logit",  # the span's own logit
    "gap",  # margin of the best over the best other candidate (another text)
    "agreement",  # share of the top candidates that overlap the best one's text
    "passage_score",  # fused retrieval score of the answer's passage
    "top_passage",  # 1 when the answer comes from the best retrieved passage
    "top_dense",  # cosine similarity of the best retrieved passage
    "sentence_support",  # share of the question's content words in the answer's sentence (and neighbours)
    "article_support",  # share of them anywhere in the article
    "missing_names",  # names and numbers of the question absent from the answer's passage (0-2)
    "answer_words",  # log(1 + words in the answer)
    "type_match",  # the answer is what the question word asks for (a name for who, a number for how many)
    "type_known",  # the question word says what kind of answer it wants
    "echo",  # share of the answer's words that are the question's own
    "negation_unmatched",  # the question is negative ("not", "n't", "never") and the answer's sentence is not
    "qualifier_unmatched",  # qualifiers of the question ("first", "largest", "before", ...) absent near the answer
    "amount_near",  # for an answer stating a number: the question's words right around it (its noun or owner); else 0
    "article_size",  # log of the answer's article's length in thousands of characters, 0-log(200): see article_size
)
_CLAUSE_END = re.compile(r"[,;:—–()]|\$?\d[\d,.]*|\band\b")
NEAR_WORDS = 6  # words either side of a number that say what it counts ("$1 billion buyout of Instagram")

_WORD = re.compile(r"\w+")
_STOP = STOP_WORDS
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve hundred thousand million billion dozen "
    "half first second third percent".split()
)
_NEGATION = re.compile(r"\b(?:not|never|no|none|neither|nor|without)\b|n't\b", re.IGNORECASE)
# Words that turn a question into its opposite when swapped (SQuAD 2.0's antonym questions, a fifth
# of its unanswerable ones): the sentence that answers "the first X" must say "first" too.
_QUALIFIERS = frozenset(
    "first last largest smallest biggest highest lowest most least earliest latest before after increase "
    "decrease increased decreased won lost win lose north south east west northern southern eastern western "
    "longest shortest oldest youngest maximum minimum major minor inside outside above below "
    "best worst began ended start end started finished open closed opened accepted rejected allowed banned "
    "public private ancient modern upper lower early late strongest weakest richest poorest cheapest "
    "supported opposed entered arrived departed born died".split()
)
_TIME_WORDS = TIME_WORDS_OF_ANSWERS


def _stem(word: str) -> str:
    return word[:5]


def _content(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


@functools.lru_cache(maxsize=8)
def _article_stems(article_text: str) -> frozenset[str]:
    # Each distinct word stemmed once: 0.54 s -> 0.24 s of a cold `ask` on a 5 MB article.
    return frozenset(map(_stem, set(_WORD.findall(article_text.lower()))))


def _named_in_question(position: int, word: str) -> bool:
    """Whether the question's `position`-th word is a word of a name: capitalised past the first
    word, which any question capitalises."""
    return position > 0 and word[:1].isupper()


def _names_and_numbers(question: str) -> list[str]:
    words = _WORD.findall(question)
    return [_stem(w.lower()) for i, w in enumerate(words) if _named_in_question(i, w) or any(c.isdigit() for c in w)]


def answer_type(question: str) -> str | None:
    """What kind of answer the question word asks for: "name", "number", "time", or None."""
    q = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big|tall|often)\b|\bwhat (percentage|number|amount)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month|time|century|decade)\b|\bwhich (year|day|month|century)\b", q):
        return "time"
    if re.search(r"\b(who|whom|whose)\b|\bwhere\b", q):
        return "name"
    return None


def _matches_type(kind: str | None, answer: str, article_text: str | None = None, start: int = 0) -> float:
    """1 when `answer` is the kind asked for. With the article and the answer's offset, a word
    capitalised only by its place (a sentence's first word, a headline in title case: "Veteran
    Wraps Baby in American Flag") is a name only if the article never writes it in lower case."""
    words = _WORD.findall(answer)
    lowered = {w.lower() for w in words}
    if kind == "name" and article_text is not None:
        return float(any(name_word(article_text, start + m.start(), m.group()) for m in _WORD.finditer(answer)))
    if kind == "number":
        return float(any(c.isdigit() for c in answer) or bool(lowered & _NUMBER_WORDS))
    if kind == "time":
        return float(any(c.isdigit() for c in answer) or bool(lowered & _TIME_WORDS))
    if kind == "name":
        return float(any(w[:1].isupper() for w in words))
    return 0.0


_SENTENCE_OPENING = re.compile(r"(?:^|[.!?:]['\"”’)\]]*\s+|\n\s*)[\"“‘(\[]*$")


@functools.lru_cache(maxsize=8)
def _article_words(article_text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(article_text))


def name_word(article_text: str, at: int, word: str) -> bool:
    """Whether `word` (at offset `at` of the article) is capitalised as a name is: capitalised and,
    where its place would capitalise any word (the first of a sentence or a line, a word of a
    headline in title case), also never written in lower case elsewhere in the article."""
    if not word[:1].isupper():
        return False
    by_place = bool(_SENTENCE_OPENING.search(article_text[max(0, at - 8):at])) or \
        title_case(line_of(article_text, at, at + len(word)))
    return not by_place or word.lower() not in _article_words(article_text)


def _support(question_words: list[str], text: str) -> float:
    if not question_words:
        return 1.0
    present = {_stem(w) for w in _WORD.findall(text.lower())}
    return sum(w in present for w in question_words) / len(question_words)


def _sentence_around(passage_text: str, offset: int, neighbours: int = 1) -> str:
    """The sentence of the passage holding `offset` (relative), with `neighbours` sentences either side."""
    spans = sentence_spans(passage_text)
    at = next((i for i, (s, e) in enumerate(spans) if s <= offset < e), None)
    if at is None:
        return passage_text
    return passage_text[spans[max(0, at - neighbours)][0]: spans[min(len(spans) - 1, at + neighbours)][1]]


def _negation_unmatched(question: str, sentence: str) -> float:
    return float(bool(_NEGATION.search(question)) and not _NEGATION.search(sentence))


def asked_qualifiers(question: str) -> set[str]:
    """The question's qualifier words (lower case), except where one is not a qualifier: a word of a
    name, capitalised past the question's first word ("South Korea", "the First Amendment"), and
    "last" as the question's last word, where it is the verb ("How long did the apology last?")."""
    words = _WORD.findall(question)
    return {w.lower() for i, w in enumerate(words)
            if w.lower() in _QUALIFIERS and not _named_in_question(i, w)
            and not (w.lower() == "last" and i == len(words) - 1)}


def _qualifiers_unmatched(question: str, around: str) -> float:
    """How many of the question's qualifier words (0-2) the text around the answer lacks."""
    asked = asked_qualifiers(question)
    present = set(_WORD.findall(around.lower()))
    return float(min(2, len(asked - present)))


def states_number(answer: str) -> bool:
    return any(c.isdigit() for c in answer) or bool({w.lower() for w in _WORD.findall(answer)} & _NUMBER_WORDS)


def states_time(answer: str) -> bool:
    """Whether an answer names a time: a number (a year, a date) or a time word ("Monday", "May")."""
    return _matches_type("time", answer) == 1.0


def amount_near(question: str, article_text: str, span) -> float:
    """For an answer that states a number: the share of the question's words (names count twice)
    among the NEAR_WORDS words either side of it in its sentence, which say whose number it is and
    of what ("How much did the Instagram deal cost?": "$1 billion buyout of Instagram", not "$3
    billion deal to buy Oculus"). 0 for any other answer."""
    answer = article_text[span.start:span.end]
    if not states_number(answer):
        return 0.0
    passage = span.passage
    sentences = sentence_spans(passage.text)
    at = span.start - passage.start
    s0, e0 = next(((passage.start + s, passage.start + e) for s, e in sentences if s <= at < e),
                  (passage.start, passage.end))
    # The number's own clause: up to another number or a comma, semicolon or dash either side.
    before = _WORD.findall(_CLAUSE_END.split(article_text[s0:span.start])[-1])[-NEAR_WORDS:]
    after = _WORD.findall(_CLAUSE_END.split(article_text[span.end:max(e0, span.end)])[0])[:NEAR_WORDS]
    near = {_stem(w.lower()) for w in before + after}
    words = _WORD.findall(question)
    weighted = [(_stem(w.lower()), 2.0 if _named_in_question(i, w) else 1.0)
                for i, w in enumerate(words) if w.lower() not in _STOP]
    if not weighted:
        return 0.0
    return sum(weight for stem, weight in weighted if stem in near) / sum(weight for _, weight in weighted)


ARTICLE_KCHARS_MAX = 200.0  # beyond the longest article the confidence was fitted on (80k characters) it grows no more


def article_size(article_text: str) -> float:
    """log(thousands of characters) of the answer's article, between 0 (1k or less) and
    log(ARTICLE_KCHARS_MAX). A longer article holds more passages that resemble the question, so a
    span that reads as the answer is more often a near miss: answers at 50-90% were right 88% of
    the time in news stories (3k-9k characters) and 56% in SQuAD 2.0's Wikipedia articles (15k-80k)
    before the confidence knew this. In a corpus it is the answer's own article, as fitted."""
    return math.log(min(ARTICLE_KCHARS_MAX, max(1.0, len(article_text) / 1000.0)))


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def features(question: str, article_text: str, ranked: list, best: int, hits: list) -> list[float]:
    """The feature vector (in FEATURES order) of candidate `ranked[best]` among reader spans
    `ranked` (best first) for `question` over retrieved `hits`."""
    span = ranked[best]
    answer = article_text[span.start:span.end]
    others = [s.margin for s in ranked if not _overlaps((s.start, s.end), (span.start, span.end))]
    top = ranked[:5]
    agreement = sum(_overlaps((s.start, s.end), (span.start, span.end)) for s in top) / max(1, len(top))
    scores = {h.passage.index: h for h in hits}
    hit = scores.get(span.passage.index)
    question_words = _content(question)
    passage = span.passage
    around = _sentence_around(passage.text, span.start - passage.start)
    article = _article_stems(article_text)
    names = _names_and_numbers(question)
    passage_stems = {_stem(w) for w in _WORD.findall(passage.text.lower())}
    kind = answer_type(question)
    answer_content = _content(answer)
    echo = (sum(w in set(question_words) for w in answer_content) / len(answer_content)) if answer_content else 1.0
    return [
        _clip(span.margin, 20.0),
        _clip(span.null, 20.0),
        _clip(span.margin + span.null, 20.0),
        _clip(span.margin - max(others), 20.0) if others else 10.0,
        agreement,
        hit.score if hit else 0.0,
        float(bool(hits) and hits[0].passage.index == passage.index),
        hits[0].dense_score if hits else 0.0,
        _support(question_words, around),
        (sum(w in article for w in question_words) / len(question_words)) if question_words else 1.0,
        float(min(2, sum(n not in passage_stems for n in names))),
        math.log1p(len(_WORD.findall(answer))),
        _matches_type(kind, answer, article_text, span.start),
        float(kind is not None),
        echo,
        _negation_unmatched(question, _sentence_around(passage.text, span.start - passage.start, 0)),
        _qualifiers_unmatched(question, around),
        amount_near(question, article_text, span),
        article_size(article_text),
    ]


def _clip(x: float, bound: float) -> float:
    return max(-bound, min(bound, x))


@dataclass(frozen=True)
class Calibrator:
    """Logistic regression on standardised features: p = sigmoid(bias + Σ w·(x - mean)/scale)."""

    names: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, x: list[float]) -> float:
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.means, self.scales))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    @classmethod
    def from_dict(cls, d: dict) -> "Calibrator":
        if tuple(d["names"]) != FEATURES:
            raise ValueError("the calibrator was fitted on other features than this version computes")
        return cls(tuple(d["names"]), tuple(d["means"]), tuple(d["scales"]), tuple(d["weights"]), float(d["bias"]))

    def to_dict(self) -> dict:
        return {"names": list(self.names), "means": list(self.means), "scales": list(self.scales),
                "weights": list(self.weights), "bias": self.bias}
