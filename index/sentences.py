"""Offline sentence boundaries as character spans.

NLTK's and spaCy's splitters need data downloads at run time (Haystack's and txtai's splitters failed
offline here for that reason), so this is a small rule-based splitter. It only has to be good enough to
cut long paragraphs into windows: a missed boundary makes a window slightly longer, never wrong,
because every span is an exact slice of the input.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or …), optionally followed by closing quotes/brackets, then white space.
_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s)""")
# Words that end with a period without ending the sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft gen col lt sgt capt gov sen rep rev hon pres
    no nos vs etc e.g i.e cf al approx dept est fig inc ltd co corp jan feb mar apr jun jul aug
    sep sept oct nov dec u.s u.k u.n e.u a.m p.m""".split()
)


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at `dot` belongs to an abbreviation or an initial rather than a sentence end."""
    start = dot
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "([\"“'‘":
        start -= 1
    word = text[start:dot].lower()
    if word in _ABBREVIATIONS:
        return True
    # Initials such as "J." or "U.S." (single letters between periods).
    return bool(re.fullmatch(r"(?:[a-z]\.)*[a-z]", word))


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentences of `text[start:end]` as `(start, end)` offsets into `text`, whitespace trimmed.

    Line breaks always end a sentence: headings, list items and bullet lines are units of their own.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        line_start = start + line.start()
        line_end = start + line.end()
        cut = line_start
        for match in _END.finditer(text, line_start, line_end):
            if match.group()[0] == "." and len(match.group().rstrip("\"'”’)]")) == 1:
                if _is_abbreviation(text, match.start()):
                    continue
            _append_trimmed(text, cut, match.end(), spans)
            cut = match.end()
        _append_trimmed(text, cut, line_end, spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))
