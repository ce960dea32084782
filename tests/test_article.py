"""Tests for index.article: loading the article exactly as stored, and one-line errors for bad input."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import pathlib

import pytest

from article_qa.index import article as article_mod
from article_qa.index.article import (
    DEFAULT_ARTICLE_NAME,
    MAX_ARTICLE_BYTES,
    Article,
    ArticleError,
    article_from_text,
    default_article_path,
    load_article,
)


def _write(tmp_path: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _error(*args, **kwargs) -> str:
    with pytest.raises(ArticleError) as info:
        load_article(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- successful loads -------------------------------------------------------------------------------


def test_default_article_matches_package_data() -> None:
    path = default_article_path()
    assert path.parts[-3:] == ("index", "data", "article.txt")
    raw = path.read_bytes()
    art = load_article()
    assert art.text == raw.decode("utf-8")
    assert art.source == DEFAULT_ARTICLE_NAME == "default article"
    assert art.sha256 == hashlib.sha256(raw).hexdigest()
    assert "Zelensky" in art.text


def test_default_article_is_the_one_the_dev_questions_were_written_on() -> None:
    """The shipped article is the context of the dev questions in tests/data (a sample of the
    project's dev set) and their answer offsets slice it exactly: an edited article would not."""
    squad = json.loads((pathlib.Path(__file__).parent / "data" / "seed_dev.squad.json").read_text(encoding="utf-8"))
    (paragraph,) = squad["data"][0]["paragraphs"]
    text = load_article().text
    assert paragraph["context"] == text
    answers = [a for qa in paragraph["qas"] for a in qa["answers"]]
    assert len(answers) == 12
    for answer in answers:
        start = answer["answer_start"]
        assert text[start : start + len(answer["text"])] == answer["text"]


def test_path_as_str_and_pathlike(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "a.txt", "# Title\n\nCafé *notes*.\n".encode("utf-8"))
    by_str = load_article(str(path))
    by_path = load_article(path)
    assert by_str.text == by_path.text == "# Title\n\nCafé *notes*.\n"  # .txt: no Markdown processing
    assert by_str.source == str(path)
    assert by_path.source == str(path)


def test_stdin_dash_reads_bytes() -> None:
    art = load_article("-", stdin=io.BytesIO("Kyiv said no.\r\nMoscow: ✓\n".encode("utf-8")))
    assert art.text == "Kyiv said no.\r\nMoscow: ✓\n"
    assert art.source == "<stdin>"


def test_dash_pathlike_is_a_file_not_stdin(tmp_path: pathlib.Path) -> None:
    # Only the string "-" means stdin; a Path named "-" is an ordinary (here missing) file.
    message = _error(pathlib.Path("-"), stdin=io.BytesIO(b"x"))
    assert message == "article not found: -"


def test_crlf_is_preserved_and_offsets_slice(tmp_path: pathlib.Path) -> None:
    raw = b"First line.\r\nSecond line here.\r\n\r\nThird.\rLone CR.\n"
    art = load_article(_write(tmp_path, "crlf.txt", raw))
    assert art.text == raw.decode("utf-8")
    assert "\r\n" in art.text and "\rLone" in art.text
    start = art.text.index("Second")
    end = start + len("Second line here.")
    assert art.text[start:end] == "Second line here."
    assert art.text[end : end + 4] == "\r\n\r\n"
    assert art.text.encode("utf-8") == raw


def test_utf8_bom_is_dropped(tmp_path: pathlib.Path) -> None:
    art = load_article(_write(tmp_path, "bom.txt", b"\xef\xbb\xbfHello world\n"))
    assert art.text == "Hello world\n"
    assert art.text[0:5] == "Hello"
    assert art.sha256 == hashlib.sha256(b"Hello world\n").hexdigest()


def test_utf8_sig_encoding_also_drops_bom(tmp_path: pathlib.Path) -> None:
    art = load_article(_write(tmp_path, "bom.txt", b"\xef\xbb\xbfHi\n"), encoding="utf-8-sig")
    assert art.text == "Hi\n"


def test_utf16_with_encoding(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "wide.txt", "Wide text\r\n".encode("utf-16"))
    art = load_article(path, encoding="utf-16")
    assert art.text == "Wide text\r\n"


def test_sha256_is_of_utf8_text(tmp_path: pathlib.Path) -> None:
    raw = "Résumé naïve".encode("latin-1")
    art = load_article(_write(tmp_path, "l1.txt", raw), encoding="latin-1")
    assert art.text == "Résumé naïve"
    assert art.sha256 == hashlib.sha256("Résumé naïve".encode("utf-8")).hexdigest()
    assert art.sha256 != hashlib.sha256(raw).hexdigest()


def test_article_is_frozen() -> None:
    art = article_from_text("Some text.")
    with pytest.raises(AttributeError):
        art.text = "other"  # type: ignore[misc]


# --- errors -----------------------------------------------------------------------------------------


def test_missing_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nope.txt"
    assert _error(path) == f"article not found: {path}"


def test_directory(tmp_path: pathlib.Path) -> None:
    message = _error(tmp_path)
    assert message == f"{tmp_path} is a directory, not an article file"


def test_permission_denied_real(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "secret.txt", b"text\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that ignore file permissions (e.g. root)")
        assert _error(path) == f"cannot read {path}: permission denied"
    finally:
        path.chmod(0o644)


def test_permission_denied_simulated(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "secret.txt", b"text\n")
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    assert _error(path) == f"cannot read {path}: permission denied"


def test_empty_file(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "empty.txt", b"")
    assert _error(path) == f"{path} is empty"


def test_whitespace_only_file(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "blank.md", b" \r\n\t\n  \n")
    assert _error(path) == f"{path} contains only whitespace"


def test_bom_only_file_is_empty(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "bom.txt", b"\xef\xbb\xbf")
    assert _error(path) == f"{path} is empty"


def test_empty_stdin() -> None:
    assert _error("-", stdin=io.BytesIO(b"")) == "<stdin> is empty"


def test_nul_byte_reports_offset(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "bin.dat", b"ABCDEFG\x00\x01\x02")
    message = _error(path)
    assert message == f"{path} looks like a binary file (NUL byte at offset 7), not text"


def test_utf16_without_encoding_suggests_it(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "wide.txt", "Wide text\n".encode("utf-16"))
    assert _error(path) == f"{path} looks like UTF-16 text (it starts with a byte-order mark); pass --encoding utf-16"


def test_damaged_pdf_is_named_whatever_its_name(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "paper.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    assert _error(path).startswith(f"cannot read {path}: it is damaged or goes past the PDF reader's limits (")


def test_bad_utf8_reports_byte_and_offset(tmp_path: pathlib.Path) -> None:
    raw = b"x" * 1234 + b"\xff" + b" more text\n"
    path = _write(tmp_path, "bad.txt", raw)
    message = _error(path)
    assert message == (
        f"{path} is not valid UTF-8 (byte 0xff at offset 1234); pass --encoding latin-1 or convert it"
    )


def test_bad_utf8_offset_counts_the_bom(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "bad.txt", b"\xef\xbb\xbfab\xc3(")
    assert "(byte 0xc3 at offset 5)" in _error(path)


def test_latin1_decodes_the_same_bad_bytes(tmp_path: pathlib.Path) -> None:
    raw = b"x" * 1234 + b"\xff" + b" more text\n"
    path = _write(tmp_path, "bad.txt", raw)
    art = load_article(path, encoding="latin-1")
    assert art.text == "x" * 1234 + "ÿ more text\n"
    assert art.text[1234] == "\u00ff"


def test_ascii_failure_suggests_utf8_when_that_works(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "u.txt", "Café\n".encode("utf-8"))
    message = _error(path, encoding="ascii")
    assert message == f"{path} is not valid ascii (byte 0xc3 at offset 3); pass --encoding utf-8 or convert it"


def test_unknown_encoding(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "a.txt", b"text\n")
    message = _error(path, encoding="no-such-codec")
    assert message.startswith("unknown encoding 'no-such-codec'")


def test_non_text_codec_is_refused(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "a.txt", b"text\n")
    assert _error(path, encoding="rot13").startswith("unknown encoding 'rot13'")


def test_size_limit_constant() -> None:
    assert MAX_ARTICLE_BYTES == 20_000_000  # said as 20 MB: sizes count in powers of 1000 everywhere


def test_file_over_limit_is_refused_before_reading(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(article_mod, "MAX_ARTICLE_BYTES", 100)
    path = _write(tmp_path, "big.txt", b"a" * 101)
    real_open = builtins.open

    def no_open(file, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise AssertionError("file over the limit was opened")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_open)
    assert _error(path) == f"{path} is 101 bytes; article-qa handles articles up to 100 bytes"


def test_file_at_limit_is_accepted(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(article_mod, "MAX_ARTICLE_BYTES", 100)
    assert load_article(_write(tmp_path, "ok.txt", b"a" * 100)).text == "a" * 100


def test_size_message_in_megabytes(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(article_mod, "MAX_ARTICLE_BYTES", 20_000_000)
    path = _write(tmp_path, "huge.txt", b"")
    # A sparse file: stat reports the size without writing 52 MB.
    with open(path, "r+b") as handle:
        handle.truncate(52_300_000)
    assert _error(path) == f"{path} is 52.3 MB; article-qa handles articles up to 20 MB"


def test_just_over_limit_never_reads_as_equal(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "edge.txt", b"")
    with open(path, "r+b") as handle:
        handle.truncate(MAX_ARTICLE_BYTES + 1)
    assert _error(path) == f"{path} is 20.1 MB; article-qa handles articles up to 20 MB"


def test_stdin_over_limit_reads_at_most_limit_plus_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(article_mod, "MAX_ARTICLE_BYTES", 10)
    stream = io.BytesIO(b"b" * 1000)
    assert _error("-", stdin=stream) == "<stdin> is over 10 bytes; article-qa handles articles up to 10 bytes"
    assert stream.tell() == 11


def test_stdin_bad_utf8() -> None:
    message = _error("-", stdin=io.BytesIO(b"ok \xe9t\xe9\n"))
    assert message == "<stdin> is not valid UTF-8 (byte 0xe9 at offset 3); pass --encoding latin-1 or convert it"


def test_control_characters_in_path_stay_on_one_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad\nname.txt"
    message = _error(str(path))
    shown = str(path).replace("\n", "\\x0a")  # escaped like every name the tool echoes
    assert message == f"article not found: {shown}"


def test_empty_path_string() -> None:
    assert _error("") == "no article path given (the path is an empty string)"


# --- article_from_text ------------------------------------------------------------------------------


def test_article_from_text() -> None:
    art = article_from_text("Line one.\r\nLine two.")
    assert art == Article(
        text="Line one.\r\nLine two.",
        source="<text>",
        sha256=hashlib.sha256(b"Line one.\r\nLine two.").hexdigest(),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "notes is empty"),
        ("  \n\t", "notes contains only whitespace"),
        ("abc\x00def", "notes looks like a binary file (NUL character at offset 3), not text"),
    ],
)
def test_article_from_text_validation(text: str, expected: str) -> None:
    with pytest.raises(ArticleError) as info:
        article_from_text(text, source="notes")
    assert str(info.value) == expected


def test_article_error_is_value_error() -> None:
    assert issubclass(ArticleError, ValueError)
