"""Load the article a user names, with clear errors for bad input.

Every answer the tool gives is a character span into the article, so the text must be exactly what
the file holds (or, for Markdown, HTML and PDF, exactly the text a person sees: `index.formats`): bytes are read and decoded here rather than through text mode, which would turn CRLF
into LF and shift every offset. Most failures a user can cause (a typo in the path, a PDF, a Latin-1
file, a huge dump) are caught here with a one-line message that says what to do, instead of surfacing
later as a traceback from the tokenizer or the index.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import importlib.resources
import os
import pathlib
import re
import stat
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from article_qa.index.formats import (
    HTML_MODES,
    FormatError,
    check_table_size,
    detect,
    html_story_or_whole,
    markdown_text,
    pdf_text,
)
from article_qa.index.printable import os_error, printable, quoted
from article_qa.index.sizes import human_size

if TYPE_CHECKING:
    from article_qa.index.cache_layout import CacheLayout

# Large enough for any article or long report; beyond it indexing time and memory stop being
# reasonable for an interactive tool, and the input is more likely a mistake (a log, a database dump).
MAX_ARTICLE_BYTES = 20_000_000
DEFAULT_ARTICLE_NAME = "default article"
# What the shipped article is about, for the line that says which article answers (its text has no headline).
DEFAULT_ARTICLE_TITLE = "Ukraine peace talks"

_STDIN_NAME = "<stdin>"
_UTF8_BOM = b"\xef\xbb\xbf"


class ArticleError(ValueError):
    """A user-facing problem with the article; str(err) is a one-line message."""


@dataclass(frozen=True)
class Article:
    """An article whose text is the reference for every offset the tool reports.

    A leading byte-order mark in the file is not part of `text`, so offsets count from the first
    character after it; line endings are kept exactly as in the file (CRLF stays CRLF). A Markdown,
    HTML or PDF file's `text` is the text a person sees (`index.formats`): offsets count in that.
    """

    text: str
    source: str
    sha256: str
    format: str = "text"  # "text", "markdown", "html" or "pdf": for the latter three, `text` is what a person sees
    id: str | None = None  # set by a corpus (`index.corpus_sources`); None: `article_ref` derives it
    title: str | None = None  # set by a corpus (JSON Lines "title", an HTML <title>); None: the first line

    def ref(self) -> "ArticleRef":
        """How answers name this article (`ArticleRef`)."""
        return article_ref(self)


@dataclass(frozen=True)
class ArticleRef:
    """How an answer, a best guess or a passage names its article: a stable id (a corpus's JSON
    Lines id or path relative to its folder; a single article's file name, or "default"), a title
    for people and the source as given. Offsets always count in that article's text."""

    id: str
    title: str
    source: str

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "source": self.source}


TITLE_CHARS = 120  # a title longer than this (a first line that is a whole paragraph) is cut at a word


def first_line_title(text: str) -> str:
    """The first line that is not blank, cut at a word after TITLE_CHARS characters: a Markdown
    heading or a plain article's headline, as the reader sees it."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            if len(line) > TITLE_CHARS:
                cut = line.rfind(" ", 0, TITLE_CHARS)
                line = line[: cut if cut > TITLE_CHARS // 2 else TITLE_CHARS] + "…"
            return line
    return ""


def article_ref(article: Article) -> ArticleRef:
    """The article's `ArticleRef`: its own id and title when a corpus gave them; otherwise id = the
    file name ("default" for the shipped article, "stdin" for standard input, the link itself for a
    web page), title = its first line (an HTML story's headline), source = the path or link as given."""
    if article.id is not None:
        article_id = article.id
    elif article.source == DEFAULT_ARTICLE_NAME:
        article_id = "default"
    elif article.source == _STDIN_NAME:
        article_id = "stdin"
    elif is_url(article.source):
        article_id = article.source
    else:
        article_id = pathlib.PurePath(article.source).name or article.source
    title = article.title if article.title is not None else first_line_title(article.text)
    return ArticleRef(article_id, title, article.source)


_URL = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(name: object) -> bool:
    """Whether an article name is a link (`scheme://…`, fetched by `index.fetch`) rather than a path."""
    return isinstance(name, str) and bool(_URL.match(name))


def default_article_path() -> pathlib.Path:
    """Where the bundled article lives, so the tool works with no arguments (a demo and a smoke test)."""
    return pathlib.Path(str(importlib.resources.files("article_qa.index") / "data" / "article.txt"))


def load_article(
    path: str | os.PathLike[str] | None = None,
    *,
    encoding: str = "utf-8",
    stdin: BinaryIO | None = None,
    html: str = "story",
    cache: "CacheLayout | None" = None,
    refresh: bool = False,
) -> Article:
    """Read the article named on the command line: a path, a link (`http(s)://…`, fetched by
    `index.fetch`, its page kept in `cache`'s pages folder; None: the default cache folder when it
    may be used), "-" for standard input, or None for the default. An HTML page is read as its
    story (`html="story"`, `index.story`) or whole, as laid out (`html="whole"`).

    Raises ArticleError for anything the user can fix, so the CLI can print it without a traceback.
    """
    codec = _lookup_codec(encoding)
    if html not in HTML_MODES:
        raise ArticleError(f"--html must be one of {', '.join(HTML_MODES)}, not {quoted(html)}")
    charset = None
    if isinstance(path, str) and is_url(path):
        source = path
        label = printable(source)
        data, charset = _fetch(path, cache, refresh)
    elif path is None:
        file_path = default_article_path()
        source = DEFAULT_ARTICLE_NAME
        label = f"the {DEFAULT_ARTICLE_NAME} ({file_path})"
        data = _read_file(file_path, label)
    elif isinstance(path, str) and path == "-":
        source = label = _STDIN_NAME
        data = _read_stream(sys.stdin.buffer if stdin is None else stdin, label)
    else:
        source = os.fsdecode(path)
        if not source:
            raise ArticleError("no article path given (the path is an empty string)")
        label = printable(source)
        data = _read_file(pathlib.Path(source), label)
    fmt = detect(source, data) if charset is None else ("pdf" if data.startswith(b"%PDF-") else "html")
    try:
        if fmt == "pdf":
            text = pdf_text(data, label)
        else:
            text = _decode(data, encoding, codec, label) if charset is None else _decode_page(data, charset)
            if not text.strip():  # said as for any text file: empty, or only whitespace
                fmt = "text"
            elif fmt == "markdown":
                check_table_size(text, fmt, label)
                text = markdown_text(text, label)
            elif fmt == "html":
                check_table_size(text, fmt, label)
                text = html_story_or_whole(text, label, html)
    except FormatError as err:
        raise ArticleError(str(err)) from None
    if fmt != "text" and not text.strip():
        raise ArticleError(f"{label} has no text a person would read (only markup)")
    return _make_article(text, source, label, fmt)


def _fetch(url: str, cache: "CacheLayout | None", refresh: bool) -> tuple[bytes, str]:
    """The page's bytes and the charset to decode them with ("" when the page does not say)."""
    from article_qa.index.cache_layout import CacheLayout
    from article_qa.index.fetch import FetchError, fetch

    layout = cache if cache is not None else CacheLayout.at(None)
    folder = layout.pages if layout.problem() is None else None  # an unsafe cache folder is not written
    try:
        page = fetch(url, folder, refresh=refresh)
    except FetchError as err:
        raise ArticleError(str(err)) from None
    return page.data, page.charset or ""


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def _decode_page(data: bytes, charset: str) -> str:
    """A web page's text: in the charset its server named, else the one its `<meta>` names, else
    UTF-8 (a byte that does not decode becomes U+FFFD, visible, rather than refusing the page)."""
    names = [charset] if charset else []
    found = _META_CHARSET.search(data[:8192])
    if found:
        names.append(found.group(1).decode("ascii"))
    for name in names + ["utf-8"]:
        try:
            codec = codecs.lookup(name)
        except LookupError:
            continue
        if getattr(codec, "_is_text_encoding", True):
            text = data.decode(codec.name, errors="replace")
            return text[1:] if text.startswith("\ufeff") else text
    return data.decode("utf-8", errors="replace")


def article_from_text(text: str, source: str = "<text>") -> Article:
    """Wrap text a Python caller already has, with the same checks as a file.

    The text is kept as given (a leading U+FEFF is not removed) so the caller's own offsets stay valid.
    """
    if not isinstance(text, str):
        raise TypeError(f"article text must be str, not {type(text).__name__}")
    return _make_article(text, source, printable(source))


def _make_article(text: str, source: str, label: str, fmt: str = "text") -> Article:
    """Shared validation, so files, stdin and in-memory text are refused for the same reasons."""
    if not text:
        raise ArticleError(f"{label} is empty")
    if not text.strip():
        raise ArticleError(f"{label} contains only whitespace")
    nul = text.find("\x00")
    if nul >= 0:
        raise ArticleError(f"{label} looks like a binary file (NUL character at offset {nul}), not text")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as err:
        # Only reachable from article_from_text: decoding never yields lone surrogates.
        raise ArticleError(
            f"{label} contains a lone surrogate at offset {err.start}, which is not valid Unicode text"
        ) from None
    return Article(text=text, source=source, sha256=hashlib.sha256(encoded).hexdigest(), format=fmt)


def _lookup_codec(encoding: str) -> codecs.CodecInfo:
    """Check --encoding before touching the file, so a typo is reported as such."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        codec = None
    # Codecs such as "hex" or "rot13" exist but do not turn bytes into text.
    if codec is None or not getattr(codec, "_is_text_encoding", True):
        raise ArticleError(
            f"unknown encoding {quoted(encoding)}; pass a text encoding Python knows, such as utf-8, latin-1 or cp1252"
        )
    return codec


def _read_file(path: pathlib.Path, label: str) -> bytes:
    """Read the raw bytes, checking the size first so a huge file is refused without loading it."""
    limit = MAX_ARTICLE_BYTES
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        # st_size is only meaningful for regular files; pipes and devices are bounded by the read below.
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise ArticleError(_too_large(label, info.st_size, limit))
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise ArticleError(os_error(err, label, thing="article")) from None
    if len(data) > limit:  # the file grew after stat, or is not a regular file
        raise ArticleError(_too_large(label, None, limit))
    return data


def _read_stream(stream: BinaryIO, label: str) -> bytes:
    """Read standard input, never more than one byte past the limit, so an endless pipe cannot exhaust memory."""
    limit = MAX_ARTICLE_BYTES
    try:
        data = stream.read(limit + 1)
    except OSError as err:
        raise ArticleError(os_error(err, label, thing="article")) from None
    if not isinstance(data, bytes):
        # A text stream here means the caller passed sys.stdin instead of sys.stdin.buffer.
        raise TypeError("stdin must be a binary stream (e.g. sys.stdin.buffer)")
    if len(data) > limit:
        raise ArticleError(_too_large(label, None, limit))
    return data


def _decode(data: bytes, encoding: str, codec: codecs.CodecInfo, label: str) -> str:
    """Turn bytes into text, explaining binary or mis-encoded input in terms the user can act on."""
    if not data:
        raise ArticleError(f"{label} is empty")
    # In UTF-16/32 NUL bytes are normal, so for those only a decoded NUL character counts (checked later).
    wide = codec.name.startswith(("utf-16", "utf-32"))
    if not wide:
        nul = data.find(b"\x00")
        if nul >= 0:
            hint = _wide_bom_hint(data)
            if hint:
                raise ArticleError(f"{label} looks like {hint} text (it starts with a byte-order mark); "
                                   f"pass --encoding {hint.lower()}")
            raise ArticleError(f"{label} looks like a binary file (NUL byte at offset {nul}), not text")
    # Decode UTF-8 with the plain codec so error offsets count from the start of the file, BOM included.
    decode_as = "utf-8" if codec.name == "utf-8-sig" else encoding
    try:
        text = data.decode(decode_as)
    except UnicodeDecodeError as err:
        bad = err.object[err.start]
        name = codec.name.upper() if codec.name.startswith("utf") else encoding
        alternative = "utf-8" if codec.name != "utf-8" and _decodes(data, "utf-8") else "latin-1"
        raise ArticleError(
            f"{label} is not valid {name} (byte 0x{bad:02x} at offset {err.start}); "
            f"pass --encoding {alternative} or convert it"
        ) from None
    except (UnicodeError, LookupError) as err:
        raise ArticleError(f"{label} could not be decoded as {encoding}: {err}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _decodes(data: bytes, encoding: str) -> bool:
    """Whether another encoding would work, to suggest it instead of a blind guess."""
    try:
        data.decode(encoding)
    except UnicodeError:
        return False
    return True


def _wide_bom_hint(data: bytes) -> str | None:
    """Name UTF-16/32 when the file announces it, since that is the common cause of NULs in a text file."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    return None


def _too_large(label: str, size: int | None, limit: int) -> str:
    """One message for both cases: a known size (from stat) or only "more than the limit" (a stream)."""
    limit_text = human_size(limit, whole=True)
    size_text = f"over {limit_text}" if size is None else human_size(size, round_up=True)
    return f"{label} is {size_text}; article-qa handles articles up to {limit_text}"
