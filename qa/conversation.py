"""Follow-up questions read in the light of the previous turns.

"How did he speak to journalists?" after "Who announced that Ukraine is dropping its NATO bid?"
means Zelensky. The reader only sees one question, so a follow-up is rewritten: a personal pronoun
is replaced by the previous answer's last name when that answer names someone (a short capitalised
span);
otherwise the retrieval query also carries the previous question, whose words point at the same
part of the article. A question with no follow-up cue (pronoun, "and", "what about") is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PERSON_PRONOUNS = {
    "he": "{}", "she": "{}", "him": "{}", "her": "{}", "they": "{}", "them": "{}",
    "his": "{}'s", "their": "{}'s", "hers": "{}'s", "theirs": "{}'s",
}
_PRONOUN = re.compile(r"\b(" + "|".join(_PERSON_PRONOUNS) + r")\b", re.IGNORECASE)
_FOLLOW_UP_START = re.compile(r"^\s*(and|what about|how about|also|then)\b", re.IGNORECASE)
_THING_PRONOUN = re.compile(r"\b(it|its|this|that|there|these|those)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    question: str
    answer_text: str | None


@dataclass(frozen=True)
class Contextual:
    """What the reader is asked and what retrieval searches for."""

    question: str
    query: str


def _names_someone(text: str | None) -> bool:
    if not text:
        return False
    words = text.split()
    return 1 <= len(words) <= 6 and all(w[:1].isupper() or not w[:1].isalpha() for w in words)


_NAME_PARTICLES = {"de", "van", "von", "der", "den", "da", "di", "du", "del", "la", "le", "al", "bin", "ibn"}


def last_name(name: str) -> str:
    """"Volodymyr Zelensky" → "Zelensky", "Alexander De Croo" → "De Croo"."""
    words = [w.strip(".,;:'’\"") for w in name.split()]
    kept = [words[-1]]
    for word in reversed(words[:-1]):
        if word.lower() not in _NAME_PARTICLES:
            break
        kept.insert(0, word)
    return " ".join(kept)


def is_follow_up(question: str) -> bool:
    return bool(
        _PRONOUN.search(question) or _FOLLOW_UP_START.search(question) or _THING_PRONOUN.search(question)
    )


def contextualize(question: str, history: list[Turn]) -> Contextual:
    """Rewrite a follow-up question with what the previous turns established."""
    if not history or not is_follow_up(question):
        return Contextual(question, question)
    previous = history[-1]
    rewritten = question
    if _names_someone(previous.answer_text) and _PRONOUN.search(question):
        # The surname alone: articles say "Zelensky said", and a full "President Volodymyr Zelensky"
        # that the passage does not spell out makes the reader doubt the passage is about him.
        name = last_name(previous.answer_text)

        def substitute(match: re.Match) -> str:
            return _PERSON_PRONOUNS[match.group(1).lower()].format(name)

        rewritten = _PRONOUN.sub(substitute, question, count=1)
    if rewritten != question:
        # The rewrite already names the subject; more words would only dilute the search.
        return Contextual(rewritten, rewritten)
    query = f"{question} {previous.question}"
    if previous.answer_text:
        query += f" {previous.answer_text}"
    return Contextual(question, query)
