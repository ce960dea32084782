"""The article's layout for the page: headings and paragraphs as in the file, as character ranges.

The page must mark an answer *inside* the article, so it renders the article from ranges of the
exact text that every offset counts in, never from a re-formatted copy: a block is `text[start:end]`
shown as a heading or a paragraph, and an answer span maps onto the blocks it overlaps. What is not
in any block is white space between them (and a heading's `#` marks), which carries no answer.

Paragraphs follow the same rule as the index (`index.passages.hard_wrapped`): blank lines separate
paragraphs, and inside a run of lines each line is a paragraph unless every line is short, which
means hard-wrapped text (one paragraph over several lines). Markdown `#` headings get their own block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from article_qa.index.passages import hard_wrapped

_HEADING = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t]*(?:[ \t]#+)?[ \t]*$")
_LIST_ITEM = re.compile(r"([-*+>]|\d{1,9}[.)])\s")


@dataclass(frozen=True)
class Block:
    """`text[start:end]` shown as `kind`: "h1".."h6", "p" (a paragraph that flows) or "lines" (a list
    or other run of short lines whose line breaks matter)."""

    kind: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": self.start, "end": self.end}


def article_blocks(text: str) -> list[Block]:
    """The article's blocks in order; they never overlap and never start or end with white space."""
    blocks: list[Block] = []
    run: list[tuple[int, int]] = []  # trimmed (start, end) of consecutive non-blank lines

    def flush() -> None:
        if hard_wrapped([end - start for start, end in run]):
            is_list = all(_LIST_ITEM.match(text, start) for start, _ in run)
            blocks.append(Block("lines" if is_list else "p", run[0][0], run[-1][1]))
        else:
            blocks.extend(Block("p", start, end) for start, end in run)
        run.clear()

    position = 0
    for line in text.split("\n"):
        line_start, position = position, position + len(line) + 1
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        start = line_start + (len(line) - len(line.lstrip()))
        end = line_start + len(line.rstrip())
        heading = _HEADING.match(line.rstrip())  # CRLF: the \r is white space, not title
        if heading and heading.group(2).strip():
            flush()
            title = heading.group(2)  # may still hold other white space at its edges ("# \r1")
            title_start = line_start + heading.start(2) + (len(title) - len(title.lstrip()))
            title_end = line_start + heading.start(2) + len(title.rstrip())
            blocks.append(Block(f"h{len(heading.group(1))}", title_start, title_end))
            continue
        run.append((start, end))
    flush()
    return blocks
