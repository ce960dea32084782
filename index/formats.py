"""Markdown, HTML and PDF articles read as the text a person sees, not as their markup.

Read as plain text, a Markdown article's `#`, `**` and `[link](https://…)` were part of passages
and answers, and an HTML article's tags hid its answers from the reader. Each format is turned into
the text a reader of the rendered document sees; that text *is* the article from then on: every
offset the tool reports counts characters of it (`article-qa text FILE` prints it).

An HTML page is read as the story it carries by default (`html_story_or_whole`, `index/story.py`:
the headline and the body's paragraphs, no menus, share buttons or related links), or whole, as laid
out (`--html whole`), for pages that are not stories; a page with no story found is read whole,
with a FormatWarning that says so.

Well-kept libraries do the parsing, imported only for their file type: markdown-it-py (CommonMark;
already installed as a dependency of rich), trafilatura (a news page's main text), inscriptis (HTML
to text with the page's layout: blocks, lists, tables), pypdf (pure Python PDF text extraction).
"""

from __future__ import annotations

import html
import io
import logging
import re
import time
import warnings

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd", ".mkdn")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
HTML_MODES = ("story", "whole")  # --html: the page's story (the default), or the whole page as laid out
_HTML_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.I | re.S)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


class FormatError(ValueError):
    """The file is of a known format but its text cannot be had (damaged, encrypted, scanned)."""


class FormatWarning(UserWarning):
    """The file's markup goes past what its parser follows, so it is read another way (said in one line)."""


# Deeper than this, markdown-it stops parsing and silently drops the rest of the block; 100 levels
# is ~30 nested lists (a list and its item and paragraph are three) and parses without recursion limits.
MARKDOWN_MAX_NESTING = 100


# Reading a table costs far more per byte than prose (markdown-it's tokens, inscriptis' column layout):
# an 11.9 MB Markdown table took 69 s and 2.9 GB. Past this many table cells in one article it is
# refused before parsing, in one line. Budget: reading any accepted file under ~10 s and 500 MB; measured
# at 100,000 cells (a 2.5 MB table): 2.5-3.0 s and 160-180 MB; 200,000 cells took 6-7 s and 335 MB.
MAX_TABLE_CELLS = 100_000

_MD_DELIMITER = re.compile(r"^ {0,3}[-:| \t]+$")
_HTML_CELL = re.compile(r"<t[dh](?=[\s>/])", re.I)


def table_cells(source: str, fmt: str) -> int:
    """How many table cells the article holds, counted from its text without parsing it (an upper
    bound, cheap on 20 MB): HTML `<td>`/`<th>` tags (also inside Markdown); Markdown pipe tables, a
    header line and its delimiter row (`| --- | :-: |`) and the rows after it up to a blank line, each
    row counting its columns or its `|`-separated pieces, whichever is more."""
    cells = sum(1 for _ in _HTML_CELL.finditer(source)) if "<" in source else 0
    if fmt != "markdown" or "|" not in source:
        return cells
    lines = source.splitlines()
    n = 1
    while n < len(lines):
        line = lines[n]
        if "-" in line and "|" in line and "|" in lines[n - 1] and _MD_DELIMITER.match(line):
            columns = _pieces(line)
            cells += max(columns, _pieces(lines[n - 1]))
            n += 1
            while n < len(lines) and lines[n].strip():
                cells += max(columns, _pieces(lines[n]))
                n += 1
        n += 1
    return cells


def _pieces(line: str) -> int:
    return line.strip().strip("|").count("|") + 1


def check_table_size(source: str, fmt: str, label: str) -> None:
    """Raises FormatError, one line, for an article whose tables go past MAX_TABLE_CELLS."""
    cells = table_cells(source, fmt)
    if cells > MAX_TABLE_CELLS:
        raise FormatError(f"cannot read {label}: it holds tables of {cells:,} cells; article-qa reads tables up to "
                          f"{MAX_TABLE_CELLS:,} cells (save them as CSV text, or split the article)")


def detect(name: str, data: bytes) -> str:
    """"pdf" (by content, whatever the name), "html" (by name, or content starting like a page),
    "markdown" (by name) or "text"."""
    lower = name.lower()
    if data.startswith(b"%PDF-"):
        return "pdf"
    if lower.endswith(HTML_SUFFIXES) or _HTML_START.match(data[:4096]):
        return "html"
    if lower.endswith(MARKDOWN_SUFFIXES):
        return "markdown"
    return "text"


# --- Markdown -----------------------------------------------------------------------------------------


def markdown_text(source: str, label: str = "the article") -> str:
    """The text of rendered Markdown: headings, paragraphs, list items (with • or their number),
    table rows (cells joined by " | ") and code as they read; markup, link targets, images and HTML
    tags left out. Blocks are separated by a blank line, list items and table rows by a line break.
    Nothing is dropped: past MARKDOWN_MAX_NESTING the whole source is the text, with a FormatWarning."""
    from markdown_it import MarkdownIt

    source = _FRONT_MATTER.sub("", source, count=1)
    parser = MarkdownIt("commonmark", {"maxNesting": MARKDOWN_MAX_NESTING}).enable(["table", "strikethrough"])
    tokens = parser.parse(source)
    if _hit_nesting_limit(tokens):
        warnings.warn(f"{label} nests its Markdown deeper than {MARKDOWN_MAX_NESTING} levels, more than its parser "
                      "follows; it is read as plain text, markup included, so that nothing is lost", FormatWarning, stacklevel=2)
        return source
    blocks: list[tuple[str, int | None]] = []  # (text, the list or table it belongs to, if any)
    group = 0  # numbers each outermost list and each table: their lines join with one line break
    lists: list[list[int | None]] = []  # one [next number or None for bullets] per open list
    item_prefix = ""
    row: list[str] | None = None
    for token in tokens:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open", "table_open") and not lists:
            group += 1
        if kind == "bullet_list_open":
            lists.append([None])
        elif kind == "ordered_list_open":
            lists.append([int(token.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            number = lists[-1][0] if lists else None
            item_prefix = "  " * (len(lists) - 1) + ("• " if number is None else f"{number}. ")
            if number is not None:
                lists[-1][0] = number + 1
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            blocks.append((" | ".join(row or []), group))
            row = None
        elif kind == "inline":
            text = _inline(token.children or [])
            if row is not None:
                row.append(text)
            elif text.strip():
                blocks.append((item_prefix + text, group if lists else None))
                item_prefix = ""
        elif kind in ("fence", "code_block"):
            blocks.append((token.content.rstrip("\n"), None))
        elif kind == "html_block":
            text = html_text(token.content).strip()
            if text:
                blocks.append((text, None))
    out = []
    for i, (text, belongs) in enumerate(blocks):
        if i:
            out.append("\n" if belongs is not None and belongs == blocks[i - 1][1] else "\n\n")
        out.append(text)
    return "".join(out) + "\n" if out else ""


def _hit_nesting_limit(tokens) -> bool:
    """Whether markdown-it reached MARKDOWN_MAX_NESTING, where it stops reading the block (dropping
    its text): an opening token that takes the level to the limit."""
    return any(t.nesting == 1 and t.level >= MARKDOWN_MAX_NESTING - 1 for t in tokens)


def _inline(children) -> str:
    parts = []
    for child in children:
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")  # a line break inside a paragraph is a space on the rendered page
        elif kind == "hardbreak":
            parts.append("\n")
        # link_open/close, em, strong, s: their text is in the children around them; images and
        # inline HTML are not text a person reads.
    return "".join(parts)


# --- HTML ---------------------------------------------------------------------------------------------


def html_story_or_whole(source: str, label: str = "the article", mode: str = "story") -> str:
    """The text of an HTML page: its story (`index.story.story_text`) with mode "story", else, and
    when no story is found (said in one FormatWarning), the whole page as `html_text` lays it out.
    A page past libxml2's depth limit is read whole at once (`html_text` says so)."""
    if mode == "story" and source.strip():
        tree, too_deep = _html_tree(source)
        if not too_deep:
            from article_qa.index.story import story_text

            try:
                story = story_text(tree)
            except RecursionError:
                story = None
            if story:
                return story
            warnings.warn(f"{label}: no story found in the page; it is read whole, menus and links included "
                          "(--html whole reads it so without this warning)", FormatWarning, stacklevel=2)
    return html_text(source, label)


def html_text(source: str, label: str = "the article") -> str:
    """The text of an HTML page as a browser lays it out (inscriptis): blocks on their own lines,
    list items with bullets, table cells in columns; scripts, styles and tags left out. Nothing is
    dropped: past libxml2's depth limit the text is read with its tags removed, with a FormatWarning."""
    from inscriptis import Inscriptis
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    if not source.strip():
        return ""
    # The strict profile spaces inline elements as a browser does ("at <span>nine</span>." stays
    # "at nine."); the relaxed one pads them, which puts spaces before punctuation.
    config = ParserConfig(css=CSS_PROFILES["strict"], display_links=False, display_images=False)
    tree, too_deep = _html_tree(source)
    text = None
    if tree is not None and not too_deep:
        try:
            text = Inscriptis(tree, config).get_text()
        except RecursionError:
            text = None
    if text is None:
        warnings.warn(f"{label} nests its HTML deeper than its parser follows (2,048 elements); it is read with its "
                      "tags removed, without its layout, so that nothing is lost", FormatWarning, stacklevel=2)
        text = _tags_removed(source)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n") + "\n"


def _html_tree(source: str):
    """The page's lxml tree with libxml2's size limits lifted (`huge_tree`: a text node or script
    over 10 MB, 256+ nested elements), and whether it still went past the depth limit (2,048),
    past which libxml2 drops the rest of the page."""
    from lxml.etree import ParserError
    from lxml.html import HTMLParser, document_fromstring

    source = re.sub(r"\A\s*<\?xml [^>]*>", "", source.strip(), count=1)
    parser = HTMLParser(huge_tree=True)
    try:
        tree = document_fromstring(source, parser=parser)
    except ParserError:
        tree = document_fromstring("<pre>" + source + "</pre>", parser=parser)
    too_deep = any("Excessive depth" in entry.message for entry in parser.error_log)
    return tree, too_deep


_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def _tags_removed(source: str) -> str:
    """The page's text without tags, scripts and styles, entities decoded: every word kept, layout lost."""
    text = _TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", source))
    return "\n".join(" ".join(line.split()) for line in html.unescape(text).splitlines())


# --- PDF ----------------------------------------------------------------------------------------------


# Past this many seconds of text extraction the rest of the pages are left out, with a FormatWarning
# that says how many were read: a PDF whose pages are slow to take apart still opens.
PDF_TIME_BUDGET_S = 60.0


def pdf_text(data: bytes, label: str) -> str:
    """The text of a PDF's pages (pypdf), the lines of a paragraph joined with spaces, pages
    separated by a blank line. A PDF encrypted with an empty user password (permissions only) is
    read like any other. Raises FormatError, one line "cannot read X: ...", for a PDF that needs a
    password, is damaged or goes past pypdf's own limits (a stream inflating too far, a page tree
    too deep, a loop), and a FormatError for a scanned PDF. Past PDF_TIME_BUDGET_S seconds the
    pages not yet read are left out, with a FormatWarning."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are about the file, not for users
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError, PyPdfError

    started = time.monotonic()
    pages: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError:  # AES without the `cryptography` package (a dependency: not expected)
                raise FormatError(f"cannot read {label}: it is encrypted with AES, which needs the "
                                  "'cryptography' package (pip install cryptography)") from None
            if not opened:
                raise FormatError(f"cannot read {label}: it is protected by a password; "
                                  "save a copy without the password first")
        total = len(reader.pages)
        for page in reader.pages:
            if pages and time.monotonic() - started > PDF_TIME_BUDGET_S:
                warnings.warn(f"{label}: reading its text took over {PDF_TIME_BUDGET_S:g} s; only the first "
                              f"{len(pages)} of its {total} pages are read", FormatWarning, stacklevel=2)
                break
            pages.append(page.extract_text() or "")
    except FormatError:
        raise
    except RecursionError:
        raise FormatError(f"cannot read {label}: its structure nests deeper than the PDF reader follows") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
            MemoryError, ZeroDivisionError, AssertionError) as err:
        raise FormatError(f"cannot read {label}: it is damaged or goes past the PDF reader's limits "
                          f"({_one_line(err)})") from None
    text = "\n\n".join(p for p in (_pdf_paragraphs(page) for page in pages) if p)
    if not text.strip():
        raise FormatError(f"{label} is a PDF without text (scanned pages?); run OCR on it first")
    return text + "\n"


def _pdf_paragraphs(page: str) -> str:
    """PDF text comes one printed line at a time; a paragraph's lines are joined back with spaces.
    A paragraph ends at an empty line, after a line that ends a sentence well short of the page's
    line width, or after a short line without final punctuation followed by a capital (a heading).
    A word hyphenated across lines keeps its hyphen, without a space after it."""
    lines = [line.strip() for line in page.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    width = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current = ""
    for n, line in enumerate(lines):
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if not current:
            current = line
        elif current.endswith("-") and current[-2:-1].isalpha() and line[:1].islower():
            current += line
        else:
            current += " " + line
        following = lines[n + 1] if n + 1 < len(lines) else ""
        ends_sentence = line[-1] in ".!?:\"”’)" and len(line) < 0.8 * width
        heading = line[-1] not in ".,;:-" and len(line) < 0.6 * width and following[:1].isupper()
        if ends_sentence or heading:
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:120] or type(err).__name__
