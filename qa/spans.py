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


_ASKED_UNIT = re.compile(r"\b(?:what|which)\s+(time|hour|year|month|day|date)\b", re.IGNORECASE)
_UNIT_FORMS = {
    "time": re.compile(r"\b\d{1,2}(?::\d\d)?\s*(?:[ap]\.?m\b\.?|o['’]clock)|\b(?:noon|midnight)\b", re.IGNORECASE),
    "year": re.compile(r"\b\d{4}\b"),
}
_UNIT_FORMS["hour"] = _UNIT_FORMS["time"]


def names_asked_unit(question: str, answer: str) -> int:
    """1 when the question asks for a time of one grain ("What time …?": an hour, "What year
    …?": a year) and the answer states it ("around 10:30 p.m. Tuesday", not "Tuesday"); 0
    otherwise, and for grains a weekday or a month word already says."""
    asked = _ASKED_UNIT.search(question)
    form = _UNIT_FORMS.get(asked.group(1).lower()) if asked else None
    return int(bool(form and form.search(answer)))


# --- span edges: a phrase cut a word short ---------------------------------------------------------

_NAME_WORD = re.compile(r" ([A-Z][\w’'-]*)")
_TIME_NAMES = frozenset("monday tuesday wednesday thursday friday saturday sunday january february march april may "
                        "june july august september october november december".split())
_POSSESSIVE = re.compile(r"['’]s$")
NAME_WORDS = 4  # the most capitalised words a name is extended by ("Han" → "Han Dong-hoon")
_OPENING_QUOTES = {"“": "”", '"': '"', "‘": "’"}
QUOTED_WORDS = 3  # the fewest words of a quotation that is something said, not a term in quotes


def title_case(line: str) -> bool:
    """A headline in title case ("Veteran Wraps Baby in American Flag"), where every word is capitalised."""
    words = [w for w in _WORD.findall(line) if w[:1].isalpha()]
    return len(words) >= 3 and sum(w[:1].isupper() for w in words) >= 0.7 * len(words)


def line_of(text: str, start: int, end: int) -> str:
    return text[text.rfind("\n", 0, start) + 1: (text.find("\n", end) + 1 or len(text) + 1) - 1]


def name_end(article_text: str, start: int, end: int) -> int:
    """A span that ends on a capitalised word goes on through the capitalised words right after it
    (a single space apart, at most NAME_WORDS): "Han" → "Han Dong-hoon", "Columbia" → "Columbia
    University". A possessive ends the name without its "'s"; a weekday or month is not a name's
    part ("Sunday Zelensky said"); a headline in title case has no names to tell apart."""
    words = _WORD.findall(article_text[start:end])
    if not words or not article_text[end - 1].isalnum() or not words[-1][:1].isupper() or words[-1].lower() in _TIME_NAMES \
            or _POSSESSIVE.search(words[-1]) or title_case(line_of(article_text, start, end)):
        return end
    for _ in range(NAME_WORDS):
        match = _NAME_WORD.match(article_text, end)
        if match is None or match.group(1).lower() in _TIME_NAMES:
            break
        word = match.group(1)
        if _POSSESSIVE.search(word):
            return match.end() - 2
        end = match.end()
    return end


def quote_end(article_text: str, start: int, end: int) -> int:
    """A span that starts just inside a quotation ends where the quotation does: '“a lot of
    progress was made” in the negotiations, though …' → 'a lot of progress was made'. The
    words quoted are what was said; the rest is the reporter's."""
    opening = article_text[start - 1] if start > 0 else ""
    closing = _OPENING_QUOTES.get(opening)
    if closing is None:
        return end
    at = article_text.find(closing, start, end)
    # A word or two in quotes is a term the reporter uses ('"misappropriating" trade secrets'),
    # part of a longer phrase; only an utterance ends the answer.
    if at <= start or len(_WORD.findall(article_text[start:at])) < QUOTED_WORDS:
        return end
    return at


def extended_end(article_text: str, start: int, end: int) -> int:
    """Where a candidate span should end: cut at its quotation's end, else run on over a name cut
    short. (Running on over the noun the question asks for, "What kind of guarantees?" → "real
    security" + "guarantees", was measured and dropped: SQuAD's references leave that noun out,
    "rounded" for "What kind of arches?", and SQuAD 2.0 lost 0.7 F1.)"""
    quoted = quote_end(article_text, start, end)
    if quoted != end:
        return quoted
    return name_end(article_text, start, end)
