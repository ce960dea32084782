"""Rules of English that the reader's candidate spans are checked against before one is chosen.

The reader scores the start and the end of a span separately, so its best span is sometimes cut a
word short of the phrase it names, and among candidates of the right kind it cannot tell which one
the question's tense fits. Each rule here is small, stated in its docstring, and looks only at the
article's words around a span and at the question's grammar, never at what a question is about.
"""

from __future__ import annotations

import re

from article_qa.index.sentences import sentence_spans

_WORD = re.compile(r"[\w’'-]+")


# --- tense: "When will the talks continue?" is answered by a time the article puts in the future ---

_FUTURE = frozenset("will shall scheduled expected due set planned plans plan next upcoming tomorrow going "
                    "’ll 'll".split())
_PAST = frozenset(
    "was were did had ago yesterday last made held said met began came took went gave won lost saw told found "
    "left sent got became ran wrote spoke fell rose paid sold bought built brought thought kept led struck "
    "caught taught fought knew drew grew threw broke chose".split()
)
_NOT_PAST = frozenset({"need", "speed", "seed", "feed", "bed", "red", "shed", "breed", "hundred", "indeed"})
TENSE_WORDS = 10  # words before a time that say when its clause happens ("Talks are scheduled to continue on")


def _word_tense(word: str) -> str | None:
    lowered = word.lower()
    if lowered in _FUTURE or lowered.endswith(("’ll", "'ll")):
        return "future"
    if lowered in _PAST or (len(lowered) > 4 and lowered.endswith("ed") and lowered not in _NOT_PAST):
        return "past"
    return None


def question_tense(question: str) -> str | None:
    """"future" ("When will they continue?"), "past" ("When did the talks take place?", "When was
    it founded?") or None (the present, or no auxiliary to tell), from the question's auxiliary:
    the first word after the question word that marks a tense."""
    words = _WORD.findall(question)
    for word in words[1:4]:
        tense = _word_tense(word)
        if tense is not None or word.lower() in {"is", "are", "do", "does", "has", "have", "can"}:
            return tense
    return None


def clause_tense(article_text: str, start: int) -> str | None:
    """The tense of the clause a time at `start` stands in, from the nearest tense-marking word
    before it in its sentence: "Talks are scheduled to continue on [Monday]" is future ("scheduled"
    comes before "continue"), "The announcement was made on [Sunday]" past; None when no word says."""
    sentence_start = max((s for s, _ in sentence_spans(article_text, max(0, start - 400), start + 1) if s <= start),
                         default=max(0, start - 400))
    for word in reversed(_WORD.findall(article_text[sentence_start:start])[-TENSE_WORDS:]):
        tense = _word_tense(word)
        if tense is not None:
            return tense
    return None


def tense_agreement(question: str, article_text: str, start: int) -> int:
    """1 when the clause of a time at `start` is in the question's tense, -1 when in another, 0
    when either is not known."""
    asked = question_tense(question)
    found = clause_tense(article_text, start) if asked else None
    if asked is None or found is None:
        return 0
    return 1 if asked == found else -1
