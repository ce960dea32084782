"""Scoring and data loading for `article-qa eval`: SQuAD-style exact match, F1 and retrieval recall.

Answers are normalised exactly as the official SQuAD v2 evaluation script does (lower case, drop
ASCII punctuation, drop the articles a/an/the, collapse whitespace) and unanswerable questions are
scored the same way (a right abstention scores 1), so our exact/F1 numbers compare with published
SQuAD 2.0 results. Everything here is pure Python (stdlib only) so it can be tested without a model.
"""

from __future__ import annotations

import collections
import json
import re
import statistics
import string
from dataclasses import dataclass, field
from pathlib import Path

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)
PARAGRAPH_SEPARATOR = "\n\n"


# --------------------------------------------------------------------------- scoring


def normalize_answer(s: str) -> str:
    """Official SQuAD v2 normalisation: lower, remove punctuation, remove articles, fix whitespace."""
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(s: str | None) -> list[str]:
    if not s:
        return []
    return normalize_answer(s).split()


def exact_score(prediction: str, gold: str) -> float:
    """1.0 when the normalised texts are equal, else 0.0."""
    return float(normalize_answer(prediction or "") == normalize_answer(gold or ""))


def f1_score(prediction: str, gold: str) -> float:
    """Token-level F1 of the normalised texts (bag of tokens, as the official script)."""
    pred_toks = _tokens(prediction)
    gold_toks = _tokens(gold)
    if not pred_toks or not gold_toks:
        # Official: when either is empty (no-answer), F1 is 1 only if both are.
        return float(pred_toks == gold_toks)
    common = collections.Counter(pred_toks) & collections.Counter(gold_toks)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _scorable_golds(golds: list[str]) -> list[str]:
    # Official: gold texts that normalise to "" are dropped; none left means unanswerable.
    return [g for g in golds if normalize_answer(g)]


def best_scores(prediction: str | None, golds: list[str]) -> tuple[float, float]:
    """(exact, f1), each the max over the gold answers.

    `prediction` None means the system abstained. With no gold answers (unanswerable question)
    both scores are 1 exactly when the prediction is None or normalises to "", else 0.
    """
    pred = prediction or ""
    scorable = _scorable_golds(golds) or [""]
    exact = max(exact_score(pred, g) for g in scorable)
    f1 = max(f1_score(pred, g) for g in scorable)
    return exact, f1


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answers: list[str]  # empty = unanswerable
    answer_spans: list[tuple[int, int]]  # (start, end) in the document text, for recall@k


@dataclass(frozen=True)
class EvalDocument:
    title: str
    text: str  # paragraphs' contexts joined by "\n\n"
    questions: list[EvalQuestion]


class _Shape(ValueError):
    pass


def _require(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise _Shape(f"{where}: {what}")


def _nearest_occurrence(context: str, answer: str, start: int) -> int | None:
    """Start of the occurrence of `answer` in `context` nearest to `start`, or None."""
    best: int | None = None
    pos = context.find(answer)
    while pos != -1:
        if best is None or abs(pos - start) < abs(best - start):
            best = pos
        pos = context.find(answer, pos + 1)
    return best


def _dedupe(items):
    return list(dict.fromkeys(items))


def load_squad(path) -> list[EvalDocument]:
    """Read a SQuAD 1.1 / 2.0 JSON file; each `data[]` entry (article) becomes one document.

    The article's paragraph contexts are joined with "\\n\\n" and every answer_start is shifted by
    its paragraph's offset in that text. An answer whose text is not at its answer_start is moved to
    the nearest occurrence of the text in its paragraph; if the text does not occur there its span
    is dropped (the text is still kept for scoring). Questions marked is_impossible, or without
    answers, are unanswerable (answers []); "plausible_answers" are ignored. Duplicate answer texts
    and spans (several annotators agreeing) are kept once.
    Raises ValueError (one line) when the file is not SQuAD-shaped (or not JSON, nested too deeply
    included).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise ValueError(f"{path}: not JSON (nested too deeply)") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason})") from None
    try:
        return _parse_squad(raw, str(path))
    except _Shape as e:
        raise ValueError(f"not a SQuAD file: {e}") from None


def _parse_squad(raw, where: str) -> list[EvalDocument]:
    _require(isinstance(raw, dict) and isinstance(raw.get("data"), list), where,
             'expected an object with a "data" list')
    docs: list[EvalDocument] = []
    for di, article in enumerate(raw["data"]):
        aw = f"{where}: data[{di}]"
        _require(isinstance(article, dict) and isinstance(article.get("paragraphs"), list), aw,
                 'expected an object with a "paragraphs" list')
        title = article.get("title")
        title = str(title) if title is not None else f"document {di}"
        contexts: list[str] = []
        questions: list[EvalQuestion] = []
        offset = 0
        for pi, para in enumerate(article["paragraphs"]):
            pw = f"{aw}.paragraphs[{pi}]"
            _require(isinstance(para, dict) and isinstance(para.get("context"), str), pw,
                     'expected an object with a "context" string')
            _require(isinstance(para.get("qas", []), list), pw, '"qas" is not a list')
            context = para["context"]
            if contexts:
                offset += len(PARAGRAPH_SEPARATOR)
            for qi, qa in enumerate(para.get("qas", [])):
                questions.append(_parse_question(qa, context, offset, f"{pw}.qas[{qi}]"))
            contexts.append(context)
            offset += len(context)
        docs.append(EvalDocument(title=title, text=PARAGRAPH_SEPARATOR.join(contexts),
                                 questions=questions))
    return docs


def _parse_question(qa, context: str, offset: int, qw: str) -> EvalQuestion:
    _require(isinstance(qa, dict) and isinstance(qa.get("question"), str), qw,
             'expected an object with a "question" string')
    _require("id" in qa, qw, 'missing "id"')
    answers_raw = qa.get("answers", [])
    _require(isinstance(answers_raw, list), qw, '"answers" is not a list')
    texts: list[str] = []
    spans: list[tuple[int, int]] = []
    if not qa.get("is_impossible", False):
        for ai, ans in enumerate(answers_raw):
            aw = f"{qw}.answers[{ai}]"
            _require(isinstance(ans, dict) and isinstance(ans.get("text"), str), aw,
                     'expected an object with a "text" string')
            start = ans.get("answer_start")
            _require(isinstance(start, int) and not isinstance(start, bool), aw,
                     '"answer_start" is not an integer')
            text = ans["text"]
            texts.append(text)
            if not text:
                continue
            if context[start:start + len(text)] != text:
                start = _nearest_occurrence(context, text, start)
                if start is None:
                    continue
            spans.append((offset + start, offset + start + len(text)))
    return EvalQuestion(id=str(qa["id"]), question=qa["question"], answers=_dedupe(texts),
                        answer_spans=_dedupe(spans))


def load_chats(path) -> list[dict]:
    """Read JSON Lines of follow-up questions: objects with id, conversation, question, answers.

    `answers` is a list of acceptable texts (empty = unanswerable). Blank lines are skipped; lines
    keep their order (a conversation's turns are in order). Raises ValueError (one line) on a bad line
    (one nested too deeply included).
    """
    path = Path(path)
    chats: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not JSON ({e.msg})") from None
            except RecursionError:
                raise ValueError(f"{where}: not JSON (nested too deeply)") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: expected a JSON object")
            missing = [k for k in ("id", "conversation", "question", "answers") if k not in obj]
            if missing:
                raise ValueError(f"{where}: missing {', '.join(missing)}")
            if not isinstance(obj["question"], str):
                raise ValueError(f"{where}: question is not a string")
            for key in ("id", "conversation"):  # a list here was a TypeError (unhashable) later on
                if isinstance(obj[key], bool) or not isinstance(obj[key], (str, int)):
                    raise ValueError(f"{where}: {key} is not a string or a number")
            answers = obj["answers"]
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise ValueError(f"{where}: answers is not a list of strings")
            chats.append(obj)
    return chats


# --------------------------------------------------------------------------- aggregation


RIGHT_F1 = 0.5  # an answer counts as right when its F1 against a reference answer reaches this
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = {
    w: str(n) for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split())
}


def numbers_in(text: str) -> frozenset[str]:
    """The numbers an answer states, digits or small number words ("eight" and "8" are one),
    written without thousands separators ("4,800" and "4800" are one)."""
    found = {m.group().replace(",", "") for m in _NUMBER.finditer(text)}
    found |= {_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS}
    return frozenset(found)


def numbers_fit(prediction: str, gold: str) -> bool:
    """An answer states no number the reference does not, and a number wherever the reference has
    one: "$144 million" is not "$15 million" although they share a word; "March 18" fits
    "March 18, 2015"."""
    said, meant = numbers_in(prediction), numbers_in(gold)
    return said <= meant and (bool(said) or not meant)


def is_right(prediction: str | None, golds: list[str]) -> bool:
    """Whether a candidate answer is right: F1 ≥ RIGHT_F1 against a reference answer whose numbers
    it fits (`numbers_fit`); an unanswerable question has no right candidate (abstaining is right
    there). SQuAD's F1 itself stays the official one."""
    if prediction is None or not _scorable_golds(golds):
        return False
    return any(f1_score(prediction, g) >= RIGHT_F1 and numbers_fit(prediction, g) for g in _scorable_golds(golds))


def calibration_error(probabilities: list[float], outcomes: list[bool], bins: int = 10) -> float | None:
    """Expected calibration error: over equal-width probability bins, the gap between the mean
    probability and the share that was right, weighted by the bin's size."""
    if not probabilities:
        return None
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, p in enumerate(probabilities) if low <= p < high or (b == bins - 1 and p == 1.0)]
        if members:
            mean_p = sum(probabilities[i] for i in members) / len(members)
            accuracy = sum(outcomes[i] for i in members) / len(members)
            total += len(members) * abs(mean_p - accuracy)
    return total / len(probabilities)


def _percent(values: list[float]) -> float | None:
    return round(100.0 * sum(values) / len(values), 2) if values else None


def _covers(passage: tuple[int, int], gold: tuple[int, int]) -> bool:
    return passage[0] <= gold[0] and gold[1] <= passage[1]


@dataclass
class Scoreboard:
    """Accumulates per-question results; summary() returns the metrics dict.

    Recall@k counts answerable questions that have gold spans and were given retrieved spans
    (retrieved_spans None means retrieval was not measured for that question; [] is a miss).
    """

    _exact: list[float] = field(default_factory=list)
    _f1: list[float] = field(default_factory=list)
    _has_answer: list[bool] = field(default_factory=list)
    _first_hit_rank: list[int | None] = field(default_factory=list)  # 1-based; None = miss
    _seconds: list[float] = field(default_factory=list)
    _answered: list[bool] = field(default_factory=list)
    _confidence: list[float] = field(default_factory=list)  # of the best candidate, answered or not
    _candidate_right: list[bool] = field(default_factory=list)
    _right: list[bool] = field(default_factory=list)  # the given answer (is_right; False on abstention)
    _article_rank: list[int | None] = field(default_factory=list)  # over a corpus: the right article's first rank

    def add_article_rank(self, retrieved_articles: list[str], gold_article: str) -> None:
        """Over a corpus: where the question's own article first came among the retrieved
        passages' articles (recall@k of the right article), for answerable questions."""
        self._article_rank.append(next((i for i, a in enumerate(retrieved_articles, 1) if a == gold_article), None))

    def add(self, prediction: str | None, golds: list[str],
            retrieved_spans: list[tuple[int, int]] | None, gold_spans: list[tuple[int, int]],
            seconds: float, candidate: str | None = None, confidence: float | None = None) -> None:
        """One question's result. `candidate` is the best span whether or not it was given as the
        answer (`prediction` is None on abstention), `confidence` its probability of being right."""
        exact, f1 = best_scores(prediction, golds)
        has_answer = bool(_scorable_golds(golds))
        self._answered.append(prediction is not None)
        self._right.append(is_right(prediction, golds))
        if confidence is not None:
            self._confidence.append(float(confidence))
            self._candidate_right.append(is_right(candidate if candidate is not None else prediction, golds))
        self._exact.append(exact)
        self._f1.append(f1)
        self._has_answer.append(has_answer)
        self._seconds.append(float(seconds))
        if has_answer and gold_spans and retrieved_spans is not None:
            rank = next((i for i, p in enumerate(retrieved_spans, 1)
                         if any(_covers(p, g) for g in gold_spans)), None)
            self._first_hit_rank.append(rank)

    def summary(self) -> dict:
        has = [i for i, h in enumerate(self._has_answer) if h]
        no = [i for i, h in enumerate(self._has_answer) if not h]
        def recall(k: int, ranks=self._first_hit_rank) -> float | None:
            if not ranks:
                return None
            return round(sum(1 for r in ranks if r is not None and r <= k) / len(ranks), 3)

        articles = {f"article_recall@{k}": recall(k, self._article_rank) for k in (1, 3, 5)} if self._article_rank else {}
        return {
            "exact": _percent(self._exact),
            "f1": _percent(self._f1),
            "HasAns_exact": _percent([self._exact[i] for i in has]),
            "HasAns_f1": _percent([self._f1[i] for i in has]),
            "NoAns_exact": _percent([self._exact[i] for i in no]),
            "recall@1": recall(1),
            "recall@3": recall(3),
            "recall@5": recall(5),
            **articles,
            "ece": (round(calibration_error(self._confidence, self._candidate_right), 4)
                    if self._confidence else None),
            "answered": sum(self._answered),
            "answered_wrong": sum(1 for a, right in zip(self._answered, self._right) if a and not right),
            "abstained_answerable": sum(1 for i, a in enumerate(self._answered) if not a and self._has_answer[i]),
            "questions": len(self._exact),
            "seconds": round(sum(self._seconds), 2),
            "median_seconds_per_question": (round(statistics.median(self._seconds), 4)
                                            if self._seconds else None),
        }
