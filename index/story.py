"""A web page read as the story it carries: its headline, then the body's paragraphs.

A news page as its server sends it (or as a browser saves it) is mostly not the story: menus,
share buttons, related links, comments, footers. Read whole, all of it was indexed and answered
from like the story. `story_text` keeps the story only, through trafilatura, a maintained main-text
extractor made for news pages (it publishes its benchmarks; on the project's six real pages,
`bench/pages.py`, it scored a word F1 of 0.973-0.998 against the stories' texts; readability-lxml
came next, 0.961-0.988, on pages that are its own project's test fixtures, and goose3, jusText,
boilerpy3 and resiliparse each fell below 0.95 on at least one).

The rules that hold:
- trafilatura runs with `favor_precision`: a page's "related stories" block reads like prose, and
  its default mode kept twenty other stories' teasers under one of the six stories;
- text that stands loose in a container between blocks (`<div><figure/>Text <a>link</a> more</div>`)
  is made a paragraph first, as a browser lays it out (an anonymous block box): trafilatura's
  precision mode otherwise drops it with the block before it;
- the headline is the page's one `<h1>` when it has exactly one (what the reader sees above the
  story), else the title trafilatura finds in the page's metadata; it is the first line;
- blocks are separated by a blank line (a quote of several paragraphs is as many blocks), a list's items (`• item`) and a table's rows (cells joined
  by " | ") by one line break; whitespace inside a block is collapsed to single spaces;
- None when no story is found (nothing, or a headline alone): the caller reads the whole page
  and says so.
"""

from __future__ import annotations

import logging

# HTML's block-level elements: text between them is a paragraph of its own on the rendered page.
_BLOCKS = frozenset(
    "address article aside blockquote center details dialog dd div dl dt fieldset figcaption figure footer "
    "form h1 h2 h3 h4 h5 h6 header hgroup hr li main nav ol p pre section table tbody thead tfoot tr td th ul"
    .split())
_MAX_TITLE = 300  # characters; a "headline" longer than this is page text, not a title


def story_text(tree) -> str | None:
    """The story of the page `tree` (an lxml HTML document, changed in place), or None when
    trafilatura finds none."""
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # its notes are about the page, not for users
    import trafilatura

    headline = _single_h1(tree)
    _wrap_loose_text(tree)
    try:
        document = trafilatura.bare_extraction(tree, favor_precision=True, include_comments=False,
                                               include_images=False, include_tables=True, with_metadata=True)
    except (ValueError, TypeError, RecursionError):  # a page its parser cannot take: read whole
        return None
    if document is None or document.body is None:
        return None
    title = headline or " ".join((document.title or "").split())
    title = title if len(title) <= _MAX_TITLE else ""
    blocks = [b for el in document.body for b in _blocks(el) if b]
    if blocks and title and _plain(blocks[0]) == _plain(title):
        blocks.pop(0)
    if not blocks:  # a headline alone is not a story
        return None
    return "\n\n".join([title] + blocks if title else blocks) + "\n"


def _single_h1(tree) -> str | None:
    """The text of the page's `<h1>` when there is exactly one with text."""
    found = [" ".join(el.text_content().split()) for el in tree.iter("h1")]
    found = [text for text in found if text]
    return found[0] if len(found) == 1 and len(found[0]) <= _MAX_TITLE else None


def _wrap_loose_text(tree) -> None:
    """Make each run of text and inline elements that follows a block inside a container a `<p>`."""
    from lxml.html import Element

    for element in list(tree.iter()):
        if not _is_block(element) or element.getparent() is None or not (element.tail and element.tail.strip()):
            continue
        paragraph = Element("p")
        paragraph.text, element.tail = element.tail, None
        following = element.getnext()
        while following is not None and not _is_block(following):
            after = following.getnext()
            paragraph.append(following)  # moves it, its tail with it
            following = after
        element.addnext(paragraph)


def _is_block(element) -> bool:
    return isinstance(element.tag, str) and element.tag.lower() in _BLOCKS


_OUTPUT_BLOCKS = frozenset({"p", "head", "list", "table", "code", "quote"})


def _blocks(element) -> list[str]:
    """A block of trafilatura's output as text blocks: a quote of several paragraphs (a pull quote
    and its attribution) is one block per paragraph, as on the page."""
    if element.tag == "quote" and any(child.tag in _OUTPUT_BLOCKS for child in element):
        lead = " ".join((element.text or "").split())
        return ([lead] if lead else []) + [b for child in element for b in _blocks(child)]
    return [_block(element)]


def _block(element) -> str:
    """One block of trafilatura's output (`p`, `head`, `quote`, `list`, `table`, `code`) as text."""
    tag = element.tag
    if tag == "list":
        return "\n".join(f"• {text}" for text in (_words(item) for item in element.findall("item")) if text)
    if tag == "table":
        rows = (" | ".join(_words(cell) for cell in row.iter("cell")) for row in element.iter("row"))
        return "\n".join(row for row in rows if row.strip(" |"))
    if tag == "code":
        return "\n".join(line.rstrip() for line in "".join(element.itertext()).strip("\n").split("\n"))
    return _words(element)


def _words(element) -> str:
    return " ".join("".join(element.itertext()).split())


def _plain(text: str) -> str:
    return " ".join(text.split()).casefold()
