"""Where a span stands in its article: the paragraph a person would count to, and its sentence.

The answer is shown inside its sentence, not its whole passage, so that it fits an 80×24 terminal;
the paragraph number and character offsets say where to find it. Paragraphs are the ones the
passages are cut from (`index.passages.paragraph_spans`: blocks between blank lines, or single lines
when the text is not hard-wrapped), numbered from 1.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache

from article_qa.index.passages import paragraph_spans
from article_qa.index.sentences import sentence_spans


@dataclass(frozen=True)
class Location:
    """A span's paragraph(s) (1-based) and the sentence(s) it stands in, as article offsets."""

    paragraph: int
    last_paragraph: int  # == paragraph unless the span crosses a paragraph break
    sentence_start: int
    sentence_end: int

    @property
    def paragraphs(self) -> str:
        if self.last_paragraph == self.paragraph:
            return f"paragraph {self.paragraph}"
        return f"paragraphs {self.paragraph}-{self.last_paragraph}"


@lru_cache(maxsize=4)
def _paragraphs(text: str) -> tuple[tuple[int, int], ...]:
    # One article is asked many questions; its paragraphs are found once (a str hashes once, too).
    return tuple(paragraph_spans(text))


def locate(text: str, start: int, end: int) -> Location:
    """The paragraph(s) and sentence(s) of `text` holding the span [start, end)."""
    paragraphs = _paragraphs(text)
    starts = [s for s, _ in paragraphs]
    first = max(0, bisect.bisect_right(starts, start) - 1)
    last = max(first, bisect.bisect_left(starts, end) - 1)
    p_start, p_end = paragraphs[first] if paragraphs else (start, end)
    q_end = paragraphs[last][1] if paragraphs else end
    sentences = [(s, e) for s, e in sentence_spans(text, min(p_start, start), max(q_end, end)) if e > start and s < end]
    s_start = min([start] + [s for s, _ in sentences])
    s_end = max([end] + [e for _, e in sentences])
    return Location(first + 1, last + 1, s_start, s_end)


def clip(text: str, start: int, end: int, focus_start: int, focus_end: int, limit: int) -> tuple[int, int]:
    """A window of `text[start:end]` at most about `limit` characters long around the focus span,
    cut at white space so that no word is broken (the focus is always kept whole)."""
    if end - start <= limit:
        return start, end
    room = max(0, limit - (focus_end - focus_start))
    left = max(start, focus_start - room // 2)
    right = min(end, focus_end + (room - (focus_start - left)))
    left = max(start, min(left, focus_start - (room - (right - focus_end))))
    if left > start:
        space = text.find(" ", left, focus_start)
        left = space + 1 if space >= 0 else left
    if right < end:
        space = text.rfind(" ", focus_end, right)
        right = space if space >= 0 else right
    return left, right
