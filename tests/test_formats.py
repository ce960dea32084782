"""Markdown, HTML and PDF articles are read as the text a person sees; offsets count in that text."""

from __future__ import annotations

import io
import pathlib

import pytest

from article_qa.index.article import ArticleError, load_article
from article_qa.index.formats import FormatWarning, detect, html_text, markdown_text
from tests.helpers_pdf import make_pdf, raw_pdf


def test_markdown_is_read_without_its_markup():
    source = (
        "---\ntitle: notes\n---\n"
        "# Lighthouse *notes*\n\n"
        "The lighthouse on **Gull Rock** was built in 1882 by the\n[Harbour Board](https://hb.example/board).\n\n"
        "See [[Robert Stevenson]](https://rs.example) and `the log`.  \nNew line. ![a photo](p.png)\n\n"
        "- First item\n- Second *item*\n\n"
        "3. three\n4. four\n\n"
        "| Year | Event |\n| --- | --- |\n| 1882 | Built |\n\n"
        "```\nkeep   this\n```\n\n"
        "<div>An <b>HTML</b> block</div>\n"
    )
    assert markdown_text(source) == (
        "Lighthouse notes\n\n"
        "The lighthouse on Gull Rock was built in 1882 by the Harbour Board.\n\n"
        "See [Robert Stevenson] and the log.\nNew line. \n\n"
        "• First item\n• Second item\n\n"
        "3. three\n4. four\n\n"
        "Year | Event\n1882 | Built\n\n"
        "keep   this\n\n"
        "An HTML block\n"
    )


def test_html_is_read_as_a_browser_shows_it():
    source = ("<!doctype html><html><head><title>T</title><style>p{color:red}</style>"
              "<script>var answer = 'Brussels';</script></head><body>"
              "<h1>Ferry</h1><p>The ferry to <b>Gull&nbsp;Rock</b> leaves at <span>nine</span>.</p>"
              "<ul><li>Cars &amp; bikes</li><li>Dogs</li></ul></body></html>")
    text = html_text(source)
    assert "Brussels" not in text and "color" not in text and "<" not in text
    assert "The ferry to Gull\u00a0Rock leaves at nine." in text or "The ferry to Gull Rock leaves at nine." in text
    assert "Cars & bikes" in text
    assert text.index("Ferry") < text.index("The ferry") < text.index("Dogs")


def test_detect_by_name_and_by_content():
    assert detect("a.md", b"# x") == "markdown"
    assert detect("A.MARKDOWN", b"x") == "markdown"
    assert detect("page.htm", b"x") == "html"
    assert detect("<stdin>", b"  <!DOCTYPE html><html>") == "html"
    assert detect("<stdin>", b"<!-- saved --><html lang=en>") == "html"
    assert detect("notes.txt", b"<b>not a page</b>") == "text"
    assert detect("paper.txt", b"%PDF-1.4 ...") == "pdf"  # a PDF whatever its name
    assert detect("notes.txt", b"# Title") == "text"


@pytest.mark.parametrize("name, data", [
    ("notes.md", "# Title\n\nThe **treaty** was signed in [Vienna](https://v.example) in 1815.\n".encode()),
    ("notes.html", b"<html><body><h1>Title</h1><p>The <i>treaty</i> was signed in Vienna in 1815.</p></body></html>"),
    ("notes.pdf", make_pdf([["Title", "The treaty was signed in Vienna in 1815."]])),
])
def test_load_article_gives_the_seen_text_and_offsets_slice_it(tmp_path: pathlib.Path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    article = load_article(path)
    assert article.format == {"md": "markdown", "html": "html", "pdf": "pdf"}[name.rsplit(".", 1)[1]]
    assert "The treaty was signed in Vienna in 1815." in article.text
    assert not set("*#<>[]") & set(article.text)
    start = article.text.index("Vienna")
    assert article.text[start : start + 6] == "Vienna"


def test_pdf_lines_join_into_paragraphs_and_pages_stay_apart(tmp_path: pathlib.Path):
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf([
        ["Harbour report", "The lighthouse on Gull Rock was built in 1882 by the Harbour Board, which",
         "paid for it with a loan from the city. Its keepers lived on the rock for a cen-",
         "tury and more.", "Its lamp was electrified in 1931."],
        ["Second page."],
    ]))
    assert load_article(path).text == (
        "Harbour report\n\n"
        "The lighthouse on Gull Rock was built in 1882 by the Harbour Board, which paid for it with a loan "
        "from the city. Its keepers lived on the rock for a cen-tury and more.\n\n"
        "Its lamp was electrified in 1931.\n\n"
        "Second page.\n"
    )


def test_pdf_from_stdin_is_read_too():
    article = load_article("-", stdin=io.BytesIO(make_pdf([["The treaty was signed in Vienna."]])))
    assert article.format == "pdf" and article.text == "The treaty was signed in Vienna.\n"


def test_pdf_without_text_is_refused_with_a_reason(tmp_path: pathlib.Path):
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[]]))
    with pytest.raises(ArticleError, match=r"scan\.pdf is a PDF without text \(scanned pages\?\); run OCR"):
        load_article(path)


def _encrypted(data: bytes, **options) -> bytes:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(**options)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_that_needs_a_password_is_refused_in_one_line(tmp_path: pathlib.Path):
    path = tmp_path / "locked.pdf"
    path.write_bytes(_encrypted(make_pdf([["Secret text."]]), user_password="secret", algorithm="RC4-128"))
    with pytest.raises(ArticleError, match=r"^cannot read .*locked\.pdf: it is protected by a password; "
                                           r"save a copy without the password first$"):
        load_article(path)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_pdf_encrypted_with_an_empty_password_is_simply_read(tmp_path: pathlib.Path, algorithm: str):
    if algorithm.startswith("AES"):
        pytest.importorskip("cryptography")  # a dependency of article-qa: pypdf decrypts AES only through it
    path = tmp_path / "report.pdf"
    path.write_bytes(_encrypted(make_pdf([["The treaty was signed in Vienna."]]),
                                user_password="", owner_password="x", algorithm=algorithm))
    article = load_article(path)
    assert article.format == "pdf" and article.text == "The treaty was signed in Vienna.\n"


def test_pdf_aes_without_a_crypto_backend_is_one_line(tmp_path: pathlib.Path, monkeypatch):
    pypdf = pytest.importorskip("pypdf")
    from pypdf.errors import DependencyError

    def no_backend(self, password):
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    path = tmp_path / "report.pdf"
    path.write_bytes(_encrypted(make_pdf([["Text."]]), user_password="", owner_password="x", algorithm="RC4-128"))
    monkeypatch.setattr(pypdf.PdfReader, "decrypt", no_backend)
    with pytest.raises(ArticleError, match=r"^cannot read .*report\.pdf: it is encrypted with AES, which needs "
                                           r"the 'cryptography' package"):
        load_article(path)


def deep_page_tree(levels: int) -> bytes:
    """A PDF whose one page sits under `levels` nested /Pages nodes (pypdf stops at 100: LimitReachedError)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    objects += [f"<< /Type /Pages /Kids [{i + 3} 0 R] /Count 1 >>".encode() for i in range(levels)]
    objects.append(b"<< /Type /Page /MediaBox [0 0 10 10] >>")
    return raw_pdf(objects)


def test_pdf_past_pypdfs_limits_is_one_line(tmp_path: pathlib.Path):
    path = tmp_path / "report.pdf"
    path.write_bytes(deep_page_tree(300))
    with pytest.raises(ArticleError) as info:
        load_article(path)
    message = str(info.value)
    assert message.startswith(f"cannot read {path}: it is damaged or goes past the PDF reader's limits (")
    assert "\n" not in message and "depth" in message


def test_pdf_with_a_page_tree_loop_is_one_line(tmp_path: pathlib.Path):
    path = tmp_path / "report.pdf"
    path.write_bytes(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]))
    with pytest.raises(ArticleError, match=r"^cannot read .*report\.pdf: it is damaged"):
        load_article(path)


def test_pdf_recursion_error_is_one_line(tmp_path: pathlib.Path, monkeypatch):
    pypdf = pytest.importorskip("pypdf")

    def too_deep(self, *args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(pypdf.PageObject, "extract_text", too_deep)
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf([["Text."]]))
    with pytest.raises(ArticleError, match=r"^cannot read .*report\.pdf: its structure nests deeper than"):
        load_article(path)


@pytest.mark.parametrize("command", ["text", "index", "ask"])
def test_unreadable_pdf_is_one_line_and_exit_2_in_the_cli(tmp_path: pathlib.Path, command: str):
    import subprocess
    import sys

    path = tmp_path / "report.pdf"
    path.write_bytes(deep_page_tree(300))
    args = {"text": ["text"], "index": ["index"], "ask": ["ask", "Who signed?"]}[command]
    done = subprocess.run([sys.executable, "-m", "article_qa", *args, "--article", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot read" in lines[0] and "report.pdf" in lines[0], done.stderr


def test_pdf_time_budget_reads_the_first_pages_with_a_warning(tmp_path: pathlib.Path, monkeypatch):
    from article_qa.index import formats

    monkeypatch.setattr(formats, "PDF_TIME_BUDGET_S", 0.0)
    path = tmp_path / "long.pdf"
    path.write_bytes(make_pdf([["Page one text."], ["Page two text."], ["Page three text."]]))
    with pytest.warns(FormatWarning, match=r"long\.pdf: reading its text took over 0 s; only the first 1 of its 3 pages"):
        article = load_article(path)
    assert article.text == "Page one text.\n"


def test_markdown_with_only_markup_is_refused(tmp_path: pathlib.Path):
    path = tmp_path / "empty.md"
    path.write_text("![only a picture](p.png)\n\n---\n", encoding="utf-8")
    with pytest.raises(ArticleError, match="has no text a person would read"):
        load_article(path)


def test_formats_are_imported_only_for_their_files(tmp_path: pathlib.Path):
    import subprocess
    import sys

    plain = tmp_path / "a.txt"
    plain.write_text("Plain text.\n", encoding="utf-8")
    code = ("import sys; from article_qa.index.article import load_article; load_article(sys.argv[1]); "
            "print(sorted(m for m in ('markdown_it', 'inscriptis', 'pypdf', 'lxml') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(plain)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def nested_list(levels: int) -> str:
    return "".join("  " * i + f"- level {i}\n" for i in range(levels)) + "\nAfter the list: the talks were in Brussels.\n"


def test_markdown_nested_ten_levels_keeps_everything(recwarn):
    text = markdown_text(nested_list(10))
    assert "level 9" in text and text.endswith("After the list: the talks were in Brussels.\n")
    assert not [w for w in recwarn if issubclass(w.category, FormatWarning)]


def test_markdown_past_the_nesting_limit_is_read_whole_with_one_warning():
    with pytest.warns(FormatWarning, match="nests its Markdown deeper than 100 levels"):
        text = markdown_text(nested_list(60), "deep.md")
    assert "level 59" in text and "After the list: the talks were in Brussels." in text


@pytest.mark.parametrize("page", [
    "<html><body>" + "<div>" * 300 + "deep" + "</div>" * 300 + "<p>After: Brussels.</p></body></html>",
    "<html><body>" + "<b>" * 300 + "unclosed" + "<p>After: Brussels.</p></body></html>",
    "<html><body><script>" + "x=1;" * 2_700_000 + "</script><p>" + "word " * 2_100_000 + "</p><p>After: Brussels.</p></body></html>",
], ids=["300-nested", "300-unclosed", "11-MB-script-and-text"])
def test_html_past_the_parsers_default_limits_keeps_everything(page, recwarn):
    text = html_text(page)
    assert text.endswith("After: Brussels.\n")
    assert not [w for w in recwarn if issubclass(w.category, FormatWarning)]


def test_html_past_the_depth_limit_is_read_without_tags_and_one_warning(tmp_path: pathlib.Path):
    page = tmp_path / "deep.html"
    page.write_text("<html><body>" + "<div>" * 3000 + "deep" + "</div>" * 3000 + "<p>After: Brussels &amp; Kyiv.</p></body></html>")
    with pytest.warns(FormatWarning, match="deep.html nests its HTML deeper than its parser follows"):
        article = load_article(page)
    assert article.text.endswith("deep After: Brussels & Kyiv.\n")


# --- Tables past the cell limit (issue #22 item 8) ------------------------------------------------------


def _markdown_table(rows: int, columns: int) -> str:
    head = "| " + " | ".join(f"h{c}" for c in range(columns)) + " |\n" + "|" + "---|" * columns + "\n"
    return "# Sales\n\nThe table below.\n\n" + head + "".join(
        "| " + " | ".join(f"r{r}c{c}" for c in range(columns)) + " |\n" for r in range(rows))


def _html_table(rows: int, columns: int) -> str:
    body = "".join("<tr>" + "".join(f"<td>r{r}c{c}</td>" for c in range(columns)) + "</tr>" for r in range(rows))
    return f"<html><body><p>The table below.</p><table>{body}</table></body></html>"


@pytest.mark.parametrize("name, source, cells", [
    ("notes.md", _markdown_table(9, 4), 40),  # header row + 9 rows, 4 columns
    ("notes.md", _markdown_table(3, 12) + "\n\nprose\n\n" + _markdown_table(1, 2), 48 + 4),
    ("page.html", _html_table(8, 5), 40),
    ("page.html", "<table><tr><th>a<th>b<TD class=x>c</table><p>tdx <tdata></p>", 3),
])
def test_table_cells_are_counted_without_parsing(name: str, source: str, cells: int):
    from article_qa.index.formats import table_cells

    assert table_cells(source, detect(name, source.encode())) == cells


@pytest.mark.parametrize("name, make", [("notes.md", _markdown_table), ("page.html", _html_table)])
def test_tables_past_the_cell_limit_are_refused_in_one_line(tmp_path: pathlib.Path, monkeypatch, name: str, make):
    from article_qa.index import formats

    monkeypatch.setattr(formats, "MAX_TABLE_CELLS", 40)
    under = tmp_path / ("under-" + name)
    under.write_text(make(7, 5))  # 35 (HTML) or 40 (Markdown, with its header row) cells: read
    assert "r6c4" in load_article(under).text
    over = tmp_path / name
    over.write_text(make(9, 5))  # 45 or 50 cells: refused before parsing
    with pytest.raises(ArticleError) as caught:
        load_article(over)
    message = str(caught.value)
    cells = 45 if name.endswith(".html") else 50
    assert message == (f"cannot read {over}: it holds tables of {cells} cells; article-qa reads tables up to 40 cells "
                       "(save them as CSV text, or split the article)")
    assert "\n" not in message


def test_markdown_prose_with_pipes_is_not_a_table(monkeypatch):
    from article_qa.index.formats import table_cells

    prose = "a | b\n\n---\n\n" + "just | a line\n" * 50 + "\nx|y\n- item\n- item\n"
    assert table_cells(prose, "markdown") == 0


def test_big_table_is_one_line_and_exit_2_in_the_cli(tmp_path: pathlib.Path):
    import subprocess
    import sys

    from article_qa.index.formats import MAX_TABLE_CELLS

    path = tmp_path / "big.md"
    rows = MAX_TABLE_CELLS // 10 + 1  # 10 columns: one row past the real limit
    path.write_text(_markdown_table(rows, 10))
    done = subprocess.run([sys.executable, "-m", "article_qa", "text", "--article", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot read" in lines[0] and "big.md" in lines[0], done.stderr
    assert f"{(rows + 1) * 10:,} cells" in lines[0] and f"up to {MAX_TABLE_CELLS:,} cells" in lines[0]
