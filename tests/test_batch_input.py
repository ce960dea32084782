"""Tests for batch/input.py: one record per input line, in order, whatever the bytes."""

from __future__ import annotations

import io
import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from article_qa.qa.question import MAX_QUESTION_CHARS
from article_qa.batch.input import (
    MAX_LINE_BYTES,
    BatchError,
    BatchQuestion,
    clean_question,
    parse_line,
    read_batch,
)


def records(data: bytes) -> list[BatchQuestion | BatchError]:
    return list(read_batch(io.BytesIO(data)))


def non_blank_lines(data: bytes) -> list[int]:
    """The numbers of the lines of `data` that are not blank (blank lines yield no record)."""
    if not data:
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    if lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    return [n for n, line in enumerate(lines, 1) if line.strip()]


def has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


# --- read_batch: mixed streams -------------------------------------------------------------------


def test_json_lines_file_good_and_bad_lines_one_record_each_in_order():
    lines = [
        b'{"question": "Who wrote it?", "id": "q1"}',
        b"What year was it built?",
        b"",
        b"   \t ",
        b'{"question": "Where?" "id": 3}',
        b"[1, 2]",
        b'"just a string"',
        b"42",
        b'{"id": 7}',
        b'{"question": 5, "id": "n"}',
        b'{"question": " \\u001b[31m ", "id": "e"}',
        b'{"question": "ok", "id": {"a": 1}}',
        b'{"question": "ok", "id": "c", "conversation": [1]}',
        b"bad \xff byte",
        b'{"question": "' + b"x" * (MAX_QUESTION_CHARS + 1) + b'", "id": "long"}',
        b'{"question": "Last one?", "id": 12, "conversation": "conv-1"}',
    ]
    got = records(b"\n".join(lines) + b"\n")
    # The first line is a JSON object, so every line is read as one; blank lines 3 and 4 are skipped.
    assert [r.line for r in got] == [1, 2] + list(range(5, len(lines) + 1))
    by_line = {r.line: r for r in got}
    assert by_line[1] == BatchQuestion(1, "Who wrote it?", "q1", None)
    assert by_line[2] == BatchError(2, None, "invalid JSON: Expecting value at column 1")
    assert by_line[5] == BatchError(5, None, "invalid JSON: Expecting ',' delimiter at column 23")
    plain = " (for plain questions: --format text)"
    assert by_line[6] == BatchError(6, None, "expected a JSON object, got array" + plain)
    assert by_line[7] == BatchError(7, None, "expected a JSON object, got string" + plain)
    assert by_line[8] == BatchError(8, None, "expected a JSON object, got number" + plain)
    assert by_line[9] == BatchError(9, "7", 'missing "question"')
    assert by_line[10] == BatchError(10, "n", '"question" must be a string, got number')
    assert by_line[11] == BatchError(11, "e", "empty question")
    assert by_line[12] == BatchError(12, None, '"id" must be a string or a number, got object')
    assert by_line[13] == BatchError(13, "c", '"conversation" must be a string or a number, got array')
    assert by_line[14] == BatchError(14, None, "invalid UTF-8 at byte 5")
    assert by_line[15] == BatchError(
        15, "long", f"question is {MAX_QUESTION_CHARS + 1:,} characters; the limit is {MAX_QUESTION_CHARS:,}"
    )
    # Line 16's id "12" is line 12's implicit id, but line 12 is an error without an id: no clash.
    assert by_line[16] == BatchQuestion(16, "Last one?", "12", "conv-1")


def test_plain_text_file_questions_may_start_with_quotes_brackets_or_braces():
    """A plain question may start with `"` or `[` (it is not broken JSON), and a blank line in a
    plain question file is skipped, not an error record (and exit status 1)."""
    data = (
        b'What year was it built?\n\n"Quoted" titles: who wrote them?\n   \n[draft] Who signed it?\n'
        b'{not json} but a question?\n42\n\n'
    )
    assert records(data) == [
        BatchQuestion(1, "What year was it built?", "1", None),
        BatchQuestion(3, '"Quoted" titles: who wrote them?', "3", None),
        BatchQuestion(5, "[draft] Who signed it?", "5", None),
        BatchQuestion(6, "{not json} but a question?", "6", None),
        BatchQuestion(7, "42", "7", None),
    ]


def test_format_can_be_given():
    data = b'{"question": "As text?"}\n"Quoted"\n'
    assert list(read_batch(io.BytesIO(data), "text")) == [
        BatchQuestion(1, '{"question": "As text?"}', "1", None),
        BatchQuestion(2, '"Quoted"', "2", None),
    ]
    assert list(read_batch(io.BytesIO(b'"Quoted"\n{"question": "q"}\n'), "jsonl")) == [
        BatchError(1, None, "expected a JSON object, got string (for plain questions: --format text)"),
        BatchQuestion(2, "q", "2", None),
    ]
    with pytest.raises(ValueError, match="unknown input format"):
        read_batch(io.BytesIO(b""), "csv")


def test_an_id_given_twice_makes_the_later_line_an_error():
    """With --resume keyed on ids, a duplicate id (or an explicit "5" next to the id-less line 5)
    would leave a later line silently never answered: it is an error record instead."""
    data = (
        b'{"question": "first?", "id": "a"}\n'
        b'{"question": "again?", "id": "a"}\n'
        b'{"question": "five?", "id": "5"}\n'
        b'{"question": "no id, line 4?"}\n'
        b'{"question": "no id, line 5?"}\n'
        b'{"id": "b"}\n'
        b'{"question": "reuses an error line\'s id?", "id": "b"}\n'
    )
    assert records(data) == [
        BatchQuestion(1, "first?", "a", None),
        BatchError(2, "a", 'id "a" is already used by line 1'),
        BatchQuestion(3, "five?", "5", None),
        BatchQuestion(4, "no id, line 4?", "4", None),
        BatchError(5, "5", 'id "5" is already used by line 3 (a line without "id" has its line number as id)'),
        BatchError(6, "b", 'missing "question"'),
        BatchError(7, "b", 'id "b" is already used by line 6'),
    ]


def test_read_batch_is_streaming():
    stream = io.BytesIO(b"first?\nsecond?\n")
    it = read_batch(stream)
    assert next(it) == BatchQuestion(1, "first?", "1", None)
    assert stream.tell() == len(b"first?\n")
    assert next(it) == BatchQuestion(2, "second?", "2", None)
    assert list(it) == []


def test_empty_file_yields_nothing():
    assert records(b"") == []


def test_blank_lines_are_skipped_but_counted():
    assert records(b"\n") == []
    assert records(b"\n \t\r\n\nq?\n\n\n") == [BatchQuestion(4, "q?", "4", None)]
    assert records(b'\n{"question": "q?"}\n\n\n') == [BatchQuestion(2, "q?", "2", None)]


def test_no_trailing_newline():
    assert records(b"one?\ntwo?") == [
        BatchQuestion(1, "one?", "1", None),
        BatchQuestion(2, "two?", "2", None),
    ]


def test_crlf_input():
    data = b'first?\r\nsecond?\r\n\r\nlast?\r'
    assert records(data) == [
        BatchQuestion(1, "first?", "1", None),
        BatchQuestion(2, "second?", "2", None),
        BatchQuestion(4, "last?", "4", None),
    ]
    data = b'{"question": "first?"}\r\n{"question": "second?", "id": "b"}\r\n\r\n{"question": "last?"}\r'
    assert records(data) == [
        BatchQuestion(1, "first?", "1", None),
        BatchQuestion(2, "second?", "b", None),
        BatchQuestion(4, "last?", "4", None),
    ]


def test_lone_cr_inside_a_line_is_not_a_line_break():
    assert records(b"a\rb?\n") == [BatchQuestion(1, "a b?", "1", None)]


def test_bom_at_start_is_ignored():
    data = b'\xef\xbb\xbf{"question": "With BOM?", "id": "x"}\n{"question": "second?"}\n'
    assert records(data) == [
        BatchQuestion(1, "With BOM?", "x", None),
        BatchQuestion(2, "second?", "2", None),
    ]
    assert records(b"\xef\xbb\xbfplain?") == [BatchQuestion(1, "plain?", "1", None)]


def test_bom_only_file_has_no_records():
    assert records(b"\xef\xbb\xbf") == []


def test_ten_megabyte_line_among_good_lines():
    huge = b'{"question": "' + b"a" * (10_000_000 - 16) + b'"}'
    assert len(huge) == 10_000_000
    data = b"before?\n" + huge + b"\r\nafter?\n" + huge + b"\nend?"
    got = records(data)
    assert got == [
        BatchQuestion(1, "before?", "1", None),
        BatchError(2, None, "line is 10.0 MB; the limit is 1.0 MB"),
        BatchQuestion(3, "after?", "3", None),
        BatchError(4, None, "line is 10.0 MB; the limit is 1.0 MB"),
        BatchQuestion(5, "end?", "5", None),
    ]


def test_overlong_last_line_without_newline():
    got = records(b"q?\n" + b"x" * 3_500_000)
    assert got == [
        BatchQuestion(1, "q?", "1", None),
        BatchError(2, None, "line is 3.5 MB; the limit is 1.0 MB"),
    ]


def test_line_length_boundary():
    at_limit = b"x" * MAX_LINE_BYTES
    over = b"x" * (MAX_LINE_BYTES + 1)
    # Exactly MAX_LINE_BYTES is a valid line (then too long as a question); one byte more is not.
    too_many_chars = BatchError(1, None, "question is 1,000,000 characters; the limit is 2,000")
    too_long = BatchError(1, None, "line is 1000001 bytes; the limit is 1000000 bytes")
    after = BatchQuestion(2, "next?", "2", None)
    for end in (b"\n", b"\r\n"):
        assert records(at_limit + end + b"next?") == [too_many_chars, after]
        assert records(b"\xef\xbb\xbf" + at_limit + end + b"next?") == [too_many_chars, after]
        assert records(over + end + b"next?") == [too_long, after]
    assert records(at_limit) == [too_many_chars]
    assert records(at_limit + b"\r") == [too_many_chars]
    assert records(over) == [too_long]


def test_question_length_limit_applies_to_plain_text_too():
    ok = "q" * MAX_QUESTION_CHARS
    assert records(ok.encode()) == [BatchQuestion(1, ok, "1", None)]
    got = records((ok + "q").encode())
    assert got == [BatchError(1, None, f"question is {MAX_QUESTION_CHARS + 1:,} characters; the limit is 2,000")]


# --- parse_line ----------------------------------------------------------------------------------


def test_parse_line_ids_and_conversation():
    assert parse_line(b'{"question": "q", "id": "007"}', 1).id == "007"
    assert parse_line(b'{"question": "q", "id": 7}', 1).id == "7"
    assert parse_line(b'{"question": "q", "id": 1.5}', 1).id == "1.5"
    assert parse_line(b'{"question": "q", "id": true}', 1).id == "true"
    assert parse_line(b'{"question": "q", "id": null}', 4).id == "4"
    assert parse_line(b'{"question": "q", "id": ""}', 4).id == ""
    assert parse_line(b'{"question": "q"}', 9) == BatchQuestion(9, "q", "9", None)
    assert parse_line(b'{"question": "q", "conversation": 3}', 1).conversation == "3"
    assert parse_line(b'{"question": "q", "conversation": null}', 1).conversation is None


def test_parse_line_json_errors():
    assert parse_line(b"{", 2) == BatchError(
        2, None, "invalid JSON: Expecting property name enclosed in double quotes at column 2"
    )
    assert parse_line(b'  {"question": "q"} trailing', 1).error == "invalid JSON: Extra data at column 21"
    assert parse_line(b'"what?" he asked', 1, "jsonl").error.startswith("invalid JSON: Extra data")
    assert parse_line(b'"what?" he asked', 1) == BatchQuestion(1, '"what?" he asked', "1", None)
    assert parse_line(b"[" * 200_000, 1, "jsonl") == BatchError(1, None, "invalid JSON: nested too deeply")
    big = parse_line(b'{"question": "q", "id": ' + b"9" * 5000 + b"}", 1)
    assert isinstance(big, BatchError) and big.error.startswith("invalid JSON: Exceeds the limit")
    assert "\n" not in big.error
    assert parse_line(b'{"question": null, "id": "a"}', 1).error == '"question" must be a string, got null'
    assert parse_line(b'{"question": ["x"]}', 1).error == '"question" must be a string, got array'
    assert parse_line(b'{"question": "q", "id": [1]}', 1) == BatchError(
        1, None, '"id" must be a string or a number, got array'
    )
    lone = parse_line(b'{"question": "q", "id": "\\ud800"}', 1)
    assert isinstance(lone, BatchError) and lone.id is None and "surrogate" in lone.error
    assert parse_line(b"true", 1) == BatchQuestion(1, "true", "1", None)


def test_parse_line_strips_newline_and_cr():
    assert parse_line(b"q?\r\n", 3) == BatchQuestion(3, "q?", "3", None)
    assert parse_line(b"q?\r", 3) == BatchQuestion(3, "q?", "3", None)


def test_parse_line_invalid_utf8_position_is_one_based():
    assert parse_line(b"\xff", 1) == BatchError(1, None, "invalid UTF-8 at byte 1")
    assert parse_line(b"ab\xe2\x82", 1) == BatchError(1, None, "invalid UTF-8 at byte 3")
    assert parse_line(b'{"question": "\xed\xa0\x80"}', 1).error == "invalid UTF-8 at byte 15"


def test_parse_line_unicode_question_kept():
    line = '{"question": "¿Dónde está Zürich? 東京"}'.encode()
    assert parse_line(line, 1) == BatchQuestion(1, "¿Dónde está Zürich? 東京", "1", None)


# --- clean_question ------------------------------------------------------------------------------


def test_clean_question_examples():
    assert clean_question("  What\tis it?  ") == "What is it?"
    assert clean_question("\x1b[31mRed\x1b[0m question?") == "Red question?"
    assert clean_question("\x1b]0;title\x07Who?") == "Who?"
    assert clean_question("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ text") == "link text"
    assert clean_question("a\x00b\x7fc\x85d") == "abc d"
    assert clean_question("8-bit \x9b1mCSI") == "8-bit CSI"
    assert clean_question("line\none") == "line one"
    assert clean_question("\x1b(Bplain\x1bc") == "plain"
    assert clean_question("keep \x1b]0;never terminated") == "keep"
    assert clean_question("x\ud800y") == "x\ufffdy"


def test_clean_question_empty():
    for text in ("", "   ", "\t\n", "\x1b[31m\x1b[0m", "\x00\x01", "\x1b]0;title\x07"):
        try:
            clean_question(text)
        except ValueError as exc:
            assert str(exc) == "empty question"
        else:
            raise AssertionError(f"no error for {text!r}")


# --- properties ----------------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None)

line_text = st.text(
    alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=40
)
json_lines = st.builds(
    lambda q, i: json.dumps({"question": q, "id": i}),
    st.text(max_size=20),
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
)
line_bytes = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    line_text.map(lambda s: s.encode("utf-8")),
    json_lines.map(lambda s: s.encode("utf-8")),
    st.sampled_from([b"", b"\r", b" ", b"{", b"[", b'"', b"\x1b[31m", b"\xef\xbb\xbf", b"\xff"]),
)


def check_records(data: bytes) -> None:
    got = records(data)
    assert [r.line for r in got] == non_blank_lines(data)
    ids = [r.id for r in got if isinstance(r, BatchQuestion)]
    assert len(ids) == len(set(ids))
    for rec in got:
        if isinstance(rec, BatchQuestion):
            assert rec.question and rec.question == rec.question.strip()
            assert not has_control(rec.question) and "\x1b" not in rec.question
            assert len(rec.question) <= MAX_QUESTION_CHARS
            assert isinstance(rec.id, str)
            rec.question.encode("utf-8")
        else:
            assert isinstance(rec, BatchError)
            assert rec.error and "\n" not in rec.error and not has_control(rec.error)


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_one_record_per_line(data):
    check_records(data)


@PROPERTY
@given(st.lists(line_bytes, max_size=12), st.booleans(), st.booleans())
def test_any_lines_one_record_per_line(lines, trailing_newline, crlf):
    data = (b"\r\n" if crlf else b"\n").join(lines) + (b"\n" if trailing_newline else b"")
    check_records(data)


@PROPERTY
@given(st.text(max_size=100))
def test_clean_question_never_leaves_controls(text):
    try:
        cleaned = clean_question(text)
    except ValueError as exc:
        assert str(exc) == "empty question"
        return
    assert cleaned and cleaned == cleaned.strip()
    assert not has_control(cleaned) and "\x1b" not in cleaned


escape_heavy = st.text(
    alphabet=st.sampled_from(["\x1b", "[", "]", "\\", "\x07", "\x9b", "\x9c", "\x9d", "0", ";", "m", "a", " ", "\t"]),
    max_size=60,
)


@PROPERTY
@given(escape_heavy)
def test_clean_question_escape_heavy_text(text):
    try:
        cleaned = clean_question(text)
    except ValueError:
        return
    assert not has_control(cleaned) and "\x1b" not in cleaned
