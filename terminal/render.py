"""Show an answer to a person: the answer first, then the sentence it stands in, then (on request)
the passages it was read from.

The default view is the answer line, the sentence holding the span (highlighted) and where it is
(paragraph, characters): three to five lines, so that in an 80×24 terminal the answer is still on
screen when it can be read. `View(sources=True)` adds the passages, the answer's own first and weak
matches left out; `passage_lines` shows one passage whole.

One content model (`Line`s of styled `Segment`s) has three outputs: rich text for a terminal (colour,
bold, wrapped at word boundaries), the same wrapped text without styles for a terminal with
NO_COLOR, and plain text for pipes, where the span is marked ⟦like this⟧ (brackets that neither
Markdown nor ordinary prose use, so they cannot be mistaken for a link or emphasis). Article and
question text are shown literally: control characters and ANSI escapes are made visible rather than
sent to the terminal, and rich markup such as `[bold]` is never interpreted because text goes in as
`Text`, not markup.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, replace
from typing import Callable

from article_qa.index.printable import BIDI_CONTROLS, SEPARATORS, escape_char
from article_qa.qa.answer import CLOSEST_TEXT, NO_ANSWER_TEXT, NOT_SURE_TEXT, Answer, percent
from article_qa.qa.pipeline import Settings
from article_qa.qa.retrieve import Hit
from article_qa.terminal.locate import clip, locate

MARK_OPEN, MARK_CLOSE = "⟦", "⟧"
SENTENCE_LIMIT = 240  # characters of the answer's sentence shown (three lines of 80 columns)
PASSAGE_LIMIT = 200  # characters of a passage in a clipped (chat) sources view: with three, 24 lines hold the answer
WEAK_MATCH = 0.2  # a passage matching less than this shares no word with the question and means little like it

# Tabs and line breaks are kept; bidi controls (U+202E shows "txt.exe" as "exe.txt") are not.
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}{SEPARATORS}]")
_STYLES = {
    "label": "bold",
    "answer": "bold green",
    "unsure": "bold yellow",
    "guess": "italic yellow",
    "mark": "bold black on yellow",
    "dim": "dim",
    "head": "cyan",
}


@dataclass(frozen=True)
class View:
    """What to show: the passages too (`sources`), each cut to `clip` characters (None: whole),
    leaving out those matching under `weak_ratio` of the best (the ones the reader skips too)."""

    sources: bool = False
    clip: int | None = None
    weak_ratio: float = Settings.read_ratio
    titled: bool = False  # name the article on the answer line and on passages (an index of many)


@dataclass(frozen=True)
class Segment:
    text: str
    style: str = ""  # a key of _STYLES, or "" for plain


@dataclass(frozen=True)
class Line:
    segments: tuple[Segment, ...] = ()
    indent: int = 0
    one_line: bool = False  # cut with "…" at the terminal's edge rather than wrapped


def visible(text: str) -> str:
    """Control characters (escape sequences included) and bidi controls as harmless `\\x1b` /
    `\\u202e` escapes; line ends (LF, CRLF, CR) as line breaks, so a CRLF article shows no `\\x0d`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(lambda m: escape_char(m.group()), text)


def one_line(text: str) -> str:
    return visible(" ".join(text.split()))


def _span(answer: Answer) -> tuple[int, int] | None:
    """The span to show: the answer's, or the best guess's when not sure."""
    if answer.answered:
        return answer.start, answer.end
    if answer.best_guess is not None:
        return answer.best_guess.start, answer.best_guess.end
    return None


def shown_hits(answer: Answer, weak_ratio: float = Settings.read_ratio) -> list[Hit]:
    """The passages worth showing: the one holding the answer (or best guess) first, then the others
    best first, without weak matches."""
    if not answer.hits:
        return []
    best = max(h.score for h in answer.hits)
    span = _span(answer)
    holding = next((h for h in answer.hits if span and _same_article(answer, h.passage)
                    and h.passage.start <= span[0] and span[1] <= h.passage.end), None)
    kept = [h for h in answer.hits if h is holding or (h.score >= WEAK_MATCH and h.score >= weak_ratio * best)]
    return sorted(kept, key=lambda h: h is not holding)  # stable: the rest keep their order


def _same_article(answer: Answer, passage) -> bool:
    """Whether `passage` is of the answer's article (always, in one article's index)."""
    ref = getattr(passage, "article", None)
    return ref is None or ref == answer.article


def _title(ref) -> str:
    return one_line(ref.title or ref.id)


def answer_lines(answer: Answer, article: str, view: View = View(),
                 text_of: Callable[[object], str] | None = None) -> list[Line]:
    """The lines that show `answer` (over the article text `article`, its own article's); in a
    corpus `text_of(ref)` gives the text of a passage's other article."""
    lines = []
    named = (Segment(f"  · {_title(answer.article)}", "head"),) if view.titled and answer.article else ()
    if answer.read_as and answer.read_as != answer.question:
        lines.append(Line((Segment(f"read as: {one_line(answer.read_as)}", "dim"),), one_line=True))
    if answer.answered:
        lines.append(Line((Segment("Answer: ", "label"), Segment(one_line(answer.text), "answer"),
                           Segment(f"  (confidence {percent(answer.score)})", "dim")) + named))
    elif answer.best_guess is not None:
        guess = answer.best_guess
        lines.append(Line((Segment(NOT_SURE_TEXT, "unsure"), Segment(f" {CLOSEST_TEXT} "),
                           Segment(f"“{one_line(guess.text)}”", "guess"), Segment(f" ({percent(guess.score)}).")) + named))
    else:
        lines.append(Line((Segment(NO_ANSWER_TEXT, "unsure"),)))
    span = _span(answer)
    if span:
        start, end = span
        where = locate(article, start, end)
        left, right = clip(article, where.sentence_start, where.sentence_end, start, end, SENTENCE_LIMIT)
        before = ("…" if left > where.sentence_start else "") + visible(article[left:start])
        after = visible(article[end:right]) + ("…" if right < where.sentence_end else "")
        lines.append(Line((Segment(before), Segment(visible(article[start:end]), "mark"), Segment(after)), indent=2))
        lines.append(Line((Segment(f"{where.paragraphs}, characters {start}-{end}", "dim"),), indent=2))
    if view.sources:
        lines.append(Line())
        hits = shown_hits(answer, view.weak_ratio)
        if not hits:
            lines.append(Line((Segment("No passage matches the question well.", "dim"),)))
        elif view.clip:
            lines.append(Line((Segment("Passages", "head"), Segment("  (:show N shows one whole)", "dim"))))
        else:
            lines.append(Line((Segment("Passages", "head"),)))
        for number, hit in enumerate(hits, 1):
            own = _same_article(answer, hit.passage) or text_of is None
            lines.extend(passage_lines(answer, article if own else text_of(hit.passage.article), hit, number,
                                       view.clip, titled=view.titled))
    return lines


def passage_lines(answer: Answer, article: str, hit: Hit, number: int, limit: int | None = None,
                  titled: bool = False) -> list[Line]:
    """Passage `number`: where it is (in a corpus, `titled`: in which article) and how well it
    matches the question, then its text (cut to about `limit` characters around the answer, or from
    its start), the answer marked when inside. `article` is the passage's own article's text."""
    p = hit.passage
    where = locate(article, p.start, p.end)
    ref = getattr(p, "article", None)
    title = (Segment(f"{_title(ref)} · ", "head"),) if titled and ref is not None else ()
    head = Line((Segment(f"[{number}] ", "head"),) + title +
                (Segment(f"{where.paragraphs}, characters {p.start}-{p.end}, match {hit.score:.2f}", "dim"),))
    span = _span(answer) if _same_article(answer, p) else None
    inside = span if span and p.start <= span[0] and span[1] <= p.end else None
    focus = inside or (p.start, p.start)
    left, right = clip(article, p.start, p.end, focus[0], focus[1], limit) if limit else (p.start, p.end)
    before, after = ("…" if left > p.start else ""), ("…" if right < p.end else "")
    if inside:
        s, e = inside
        body = (Segment(before + visible(article[left:s])), Segment(visible(article[s:e]), "mark"),
                Segment(visible(article[e:right]) + after))
    else:
        body = (Segment(before + visible(article[left:right]) + after),)
    return [head, Line(body, indent=4)]


# --- outputs ---------------------------------------------------------------------------------------


def plain_text(lines: list[Line]) -> str:
    """Plain text for pipes and files: no styles, the span marked ⟦like this⟧, no wrapping."""
    out = []
    for line in lines:
        text = "".join(f"{MARK_OPEN}{s.text}{MARK_CLOSE}" if s.style == "mark" else s.text for s in line.segments)
        out.extend(" " * line.indent + part if part else "" for part in text.split("\n"))
    return "\n".join(out)


def rich_lines(lines: list[Line], color: bool = True):
    """A rich renderable: wrapped at word boundaries to the terminal's width, indents kept on every
    wrapped line; styled when `color`, else plain with the span marked as in `plain_text`."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts = []
    for line in lines:
        text = Text(no_wrap=line.one_line, overflow="ellipsis" if line.one_line else None)
        for segment in line.segments:
            if color:
                text.append(segment.text, style=_STYLES.get(segment.style, "default"))
            elif segment.style == "mark":
                text.append(f"{MARK_OPEN}{segment.text}{MARK_CLOSE}")
            else:
                text.append(segment.text)
        parts.append(Padding(text, (0, 0, 0, line.indent), expand=False) if line.indent else text)
    return Group(*parts)


def use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def print_lines(lines: list[Line]) -> None:
    """On stdout: on a terminal through rich, wrapped at word boundaries (styled unless NO_COLOR or
    TERM=dumb); elsewhere as plain text with the span marked ⟦like this⟧."""
    if sys.stdout.isatty():
        from rich.console import Console

        color = use_color()
        Console(highlight=False, no_color=not color, emoji=False, markup=False).print(rich_lines(lines, color))
    else:
        import typer

        typer.echo(plain_text(lines))


def show(answer: Answer, article: str, view: View = View(), text_of: Callable[[object], str] | None = None) -> None:
    print_lines(answer_lines(answer, article, view, text_of))


def show_answer(qa, answer: Answer, view: View = View()) -> None:
    """Show an answer of the pipeline `qa`, over its own article's text; over a corpus of more
    than one article, the answer line and the passages name their article."""
    if not getattr(qa, "is_corpus", False):
        return show(answer, qa.article.text, view)
    text = qa.text_of(answer) if answer.article is not None else ""
    show(answer, text, replace(view, titled=qa.article_count > 1), qa.text_of)
