"""Show an answer to a person: the span highlighted inside its passage, with offsets and scores.

Two forms of the same content: rich text for a terminal (colour, bold) and plain text with the span
marked `[[like this]]` for pipes and NO_COLOR. Article and question text are shown literally:
control characters and ANSI escapes are made visible rather than sent to the terminal, and rich
markup such as `[bold]` is never interpreted because text goes in as `Text`, not markup.
"""

from __future__ import annotations

import re

from index.printable import BIDI_CONTROLS, SEPARATORS, escape_char
from qa.answer import NO_ANSWER_TEXT, Answer

# Tabs and line breaks are kept; bidi controls (U+202E shows "txt.exe" as "exe.txt") are not.
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}{SEPARATORS}]")


def visible(text: str) -> str:
    """Control characters (escape sequences included) and bidi controls as harmless `\\x1b` /
    `\\u202e` escapes."""
    return _CONTROL.sub(lambda m: escape_char(m.group()), text)


def _highlight_range(answer: Answer, start: int, end: int) -> tuple[int, int] | None:
    """The answer's position inside a passage [start, end), relative to the passage, if inside."""
    if not answer.answered or answer.start < start or answer.end > end:
        return None
    return answer.start - start, answer.end - start


def plain(answer: Answer, show_passages: bool = True) -> str:
    lines = []
    if answer.answered:
        lines.append(f"Answer: {visible(answer.text)}")
        lines.append(f"  (characters {answer.start}-{answer.end}, score {answer.score:.2f})")
    else:
        lines.append(NO_ANSWER_TEXT)
    if show_passages:
        for rank, hit in enumerate(answer.hits, 1):
            p = hit.passage
            lines.append("")
            lines.append(f"[{rank}] characters {p.start}-{p.end}, score {hit.score:.2f}")
            inside = _highlight_range(answer, p.start, p.end)
            if inside:
                s, e = inside
                text = f"{visible(p.text[:s])}[[{visible(p.text[s:e])}]]{visible(p.text[e:])}"
            else:
                text = visible(p.text)
            lines.append(text)
    return "\n".join(lines)


def rich_renderable(answer: Answer, show_passages: bool = True):
    """A rich renderable: answer first, then each passage with the span in bold reverse."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts = []
    if answer.answered:
        head = Text()
        head.append("Answer: ", style="bold")
        head.append(visible(answer.text), style="bold green")
        head.append(f"   chars {answer.start}–{answer.end} · score {answer.score:.2f}", style="dim")
        parts.append(head)
    else:
        parts.append(Text(NO_ANSWER_TEXT, style="bold yellow"))
    if show_passages:
        for rank, hit in enumerate(answer.hits, 1):
            p = hit.passage
            parts.append(Text(f"\n[{rank}] chars {p.start}–{p.end} · score {hit.score:.2f}", style="cyan"))
            body = Text()
            inside = _highlight_range(answer, p.start, p.end)
            if inside:
                s, e = inside
                body.append(visible(p.text[:s]))
                body.append(visible(p.text[s:e]), style="bold black on yellow")
                body.append(visible(p.text[e:]))
            else:
                body.append(visible(p.text), style="default")
            parts.append(Padding(body, (0, 0, 0, 4)))
    return Group(*parts)
