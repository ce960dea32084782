"""Parse batch input (JSON Lines or plain-text questions) into questions and per-line errors.

A batch run answers many questions in one go, and a batch file is often written by hand or by another
tool, so some lines will be bad. The rule enforced here is that every input line that is not blank
yields exactly one record, in input order: a question, or an error that says what is wrong with that
line. A bad line never stops the rest, and the caller can line up answers with input lines by the line
number alone. Blank lines are skipped (a plain question file often has them) and still count in the
line numbers. The input is read as bytes and streamed line by line, so a huge file or a single huge
line (bounded by MAX_LINE_BYTES) neither exhausts memory nor delays the answers to the lines before
it. Question text is cleaned and its length checked as every front end does it
(`qa.question.clean_question`).

The format is decided once per file, not per line: a plain question may start with `"` or `[`
(`"Quoted" titles?`) and must not be read as broken JSON. With `auto`, the first line that is not
blank decides: one that starts with `{` makes the file JSON Lines, anything else plain text.

Ids are unique: a line whose id (given, or its line number when it has none) an earlier line already
has is an error record, so a later line is never mistaken for an earlier one's answer.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from article_qa.index.printable import printable
from article_qa.index.sizes import human_size
from article_qa.qa.question import clean_question, json_type  # shared by every front end

MAX_LINE_BYTES = 1_000_000
FORMATS = ("auto", "jsonl", "text")

_BOM = b"\xef\xbb\xbf"
_DRAIN_CHUNK = 1 << 16

# Lone surrogates (possible through JSON "\ud800" escapes) cannot be written out as UTF-8.
_SURROGATES = re.compile(r"[\ud800-\udfff]")


class InputError(Exception):
    """The question file cannot be read at all; str(err) is one line for the user."""


def open_questions(path: str, *, stdin_closed: bool = False) -> BinaryIO:
    """The question file as a binary stream: `path`, or standard input for "-" (`stdin_closed`:
    the process was started with it closed, `<&-`). Raises InputError."""
    from article_qa.index.printable import os_error

    if path == "-":
        if stdin_closed:
            raise InputError("standard input is closed; give the questions as a file")
        return sys.stdin.buffer
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        return open(path, "rb")
    except OSError as err:
        raise InputError(os_error(err, path, thing="question file")) from None


def input_line_ids(path: str, fmt: str = "auto") -> dict[int, str | None] | None:
    """Line → id of each line of the question file that is not blank, for `--resume` to check that
    the output is this input's; None for stdin, which can be read only once. Raises InputError."""
    from article_qa.index.printable import os_error

    if path == "-":
        return None
    try:
        with open(path, "rb") as f:
            return {record.line: record.id for record in read_batch(f, fmt)}
    except OSError as err:
        raise InputError(os_error(err, path, thing="question file")) from None


def count_questions(path: str) -> int | None:
    """Lines that are not blank, for a progress bar's total (a file only; stdin is read once)."""
    if path == "-":
        return None
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return None


@dataclass(frozen=True)
class BatchQuestion:
    """One usable question from the input."""

    line: int  # 1-based input line number
    question: str  # cleaned question text
    id: str  # the JSON "id", or str(line) when the line has none
    conversation: str | None  # the JSON "conversation", or None
    article: str | None = None  # the JSON "article" (an id or a path in a corpus), or None


@dataclass(frozen=True)
class BatchError:
    """One input line that could not be turned into a question."""

    line: int  # 1-based input line number
    id: str | None  # the line's id when it could be read, else None
    error: str  # one line, human readable


def read_batch(stream: BinaryIO, fmt: str = "auto") -> Iterator[BatchQuestion | BatchError]:
    """Yield one record per line of `stream` that is not blank, in order, as the lines are read.

    Lines are split on b"\\n" only; a trailing b"\\r" is dropped, the last line may lack a newline, and
    a UTF-8 byte order mark at the very start is ignored. A line longer than MAX_LINE_BYTES becomes a
    BatchError; it is consumed in chunks, so no more than about MAX_LINE_BYTES of it is ever held.
    `fmt` is "jsonl", "text" or "auto" (decided by the first line that is not blank).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r}; choose from {', '.join(FORMATS)}")
    return _unique_ids(_records(stream, fmt))


def _records(stream: BinaryIO, fmt: str) -> Iterator[BatchQuestion | BatchError]:
    line = 0
    first = True
    while True:
        # Room for MAX_LINE_BYTES of content plus "\r\n", and for the BOM on the first line.
        limit = MAX_LINE_BYTES + 2 + (len(_BOM) if first else 0)
        raw = stream.readline(limit)
        if not raw:
            return
        complete = raw.endswith(b"\n") or len(raw) < limit  # the whole line, or the end of the stream
        if first and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        first = False
        line += 1
        if not complete:
            yield BatchError(line, None, _too_long(_drain_line(stream, raw)))
            continue
        if not raw.strip():
            continue  # blank: skipped, though it counts in the line numbers
        if fmt == "auto":
            fmt = "jsonl" if raw.lstrip().startswith(b"{") else "text"
        yield parse_line(raw, line, fmt)


def _unique_ids(records: Iterator[BatchQuestion | BatchError]) -> Iterator[BatchQuestion | BatchError]:
    """The records, with a question whose id an earlier line has turned into an error record."""
    first_line: dict[str, int] = {}
    for record in records:
        if record.id is not None:
            earlier = first_line.setdefault(record.id, record.line)
            if earlier != record.line and isinstance(record, BatchQuestion):
                hint = ' (a line without "id" has its line number as id)' if record.id == str(record.line) else ""
                shown = printable(record.id)  # an id may hold control characters; a message may not
                record = BatchError(record.line, record.id, f'id "{shown}" is already used by line {earlier}{hint}')
        yield record


def _drain_line(stream: BinaryIO, head: bytes) -> int:
    """Consume the rest of a line whose first bytes are `head`; return its length without "\\r\\n"."""
    size = len(head)
    last = head[-1:]
    while True:
        chunk = stream.readline(_DRAIN_CHUNK)
        if not chunk:
            break
        if chunk.endswith(b"\n"):
            size += len(chunk) - 1
            last = chunk[-2:-1] or last
            break
        size += len(chunk)
        last = chunk[-1:]
    return size - 1 if last == b"\r" else size


def parse_line(raw: bytes, line: int, fmt: str = "auto") -> BatchQuestion | BatchError:
    """Turn one input line (without its b"\\n"; a trailing b"\\r" is dropped) into a record.

    `fmt` "jsonl" reads the line as a JSON object, "text" as a question; "auto" (one line alone)
    reads it as JSON when it starts with `{`."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) > MAX_LINE_BYTES:
        return BatchError(line, None, _too_long(len(raw)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BatchError(line, None, f"invalid UTF-8 at byte {exc.start + 1}")
    stripped = text.strip()
    if not stripped:
        return BatchError(line, None, "empty line")
    if fmt == "jsonl" or (fmt == "auto" and stripped.startswith("{")):
        return _parse_json(text, line)
    return _question(line, None, text, None)


def _parse_json(text: str, line: int) -> BatchQuestion | BatchError:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return BatchError(line, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return BatchError(line, None, "invalid JSON: nested too deeply")
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        return BatchError(line, None, "invalid JSON: " + _one_line(str(exc)))
    if not isinstance(value, dict):
        return BatchError(
            line, None, f"expected a JSON object, got {json_type(value)} (for plain questions: --format text)"
        )
    id_, error = _scalar(value, "id")
    if error:
        return BatchError(line, None, error)
    conversation, error = _scalar(value, "conversation")
    if error:
        return BatchError(line, id_, error)
    article, error = _scalar(value, "article")
    if error:
        return BatchError(line, id_, error)
    if "question" not in value:
        return BatchError(line, id_, 'missing "question"')
    question = value["question"]
    if not isinstance(question, str):
        return BatchError(line, id_, f'"question" must be a string, got {json_type(question)}')
    return _question(line, id_, question, conversation, article)


def _question(line: int, id_: str | None, text: str, conversation: str | None,
              article: str | None = None) -> BatchQuestion | BatchError:
    try:
        question = clean_question(text)
    except ValueError as exc:
        return BatchError(line, id_, str(exc))
    return BatchQuestion(line, question, str(line) if id_ is None else id_, conversation, article)


def _scalar(obj: dict, key: str) -> tuple[str | None, str | None]:
    """Read an optional scalar field as text: (value, None), or (None, error message).

    Strings are kept as they are, numbers go through str(), booleans are spelt as in JSON, and null
    counts as absent.
    """
    value = obj.get(key)
    if value is None:
        return None, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, (int, float)):
        return str(value), None
    if isinstance(value, str):
        if _SURROGATES.search(value):
            return None, f'"{key}" contains a lone surrogate (an invalid \\u escape)'
        return value, None
    return None, f'"{key}" must be a string or a number, got {json_type(value)}'


def _too_long(size: int) -> str:
    shown, limit = human_size(size), human_size(MAX_LINE_BYTES)
    if shown == limit:  # just over the limit: MB rounding would hide the difference
        shown, limit = f"{size} bytes", f"{MAX_LINE_BYTES} bytes"
    return f"line is {shown}; the limit is {limit}"


def _one_line(message: str) -> str:
    return " ".join(message.split())
