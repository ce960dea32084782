"""Tests for qa.render: the span highlighted in the right passage, and text shown literally."""

from __future__ import annotations

import io

from index.passages import Passage
from qa.answer import Answer
from qa.render import plain, rich_renderable, visible
from qa.retrieve import Hit

ARTICLE = (
    "The talks were held in Brussels.\n\n"
    "Zelensky said talks in Brussels went well."
)
P0 = Passage(0, 0, 32, ARTICLE[0:32])
P1 = Passage(1, 34, len(ARTICLE), ARTICLE[34:])
HITS = (Hit(P1, 0.75, 0.6, 2.0), Hit(P0, 0.5, 0.4, 1.0))


def answered(start: int, end: int, hits=HITS, article=ARTICLE) -> Answer:
    return Answer("Where?", article[start:end], start, end, 0.8123, hits)


def test_plain_marks_span_inside_the_right_passage_only():
    start = ARTICLE.index("Brussels")  # the first one, in P0 (ranked second)
    out = plain(answered(start, start + len("Brussels")))
    lines = out.split("\n")
    assert lines[0] == "Answer: Brussels"
    assert lines[1] == f"  (characters {start}-{start + 8}, score 0.81)"
    assert out.count("[[") == 1 and out.count("]]") == 1
    assert "[2] characters 0-32, score 0.50" in lines
    assert "The talks were held in [[Brussels]]." in lines
    assert "[1] characters 34-76, score 0.75" in lines
    assert "Zelensky said talks in Brussels went well." in lines  # second Brussels not marked


def test_plain_marks_span_at_passage_edges():
    out = plain(answered(P1.start, P1.start + len("Zelensky")))
    assert "[[Zelensky]] said talks in Brussels went well." in out.split("\n")
    end = P1.end
    out = plain(answered(end - len("well."), end))
    assert "Zelensky said talks in Brussels went [[well.]]" in out.split("\n")


def test_span_reaching_past_a_passage_is_marked_only_where_whole():
    # Overlapping passages (windows of a long paragraph): the span "Brussels" (23-31) lies in both,
    # "Brussels.\n\nZelensky" (23-42) only in the second.
    a = Passage(0, 0, 32, ARTICLE[0:32])
    b = Passage(1, 20, 60, ARTICLE[20:60])
    answer = Answer("q", ARTICLE[23:31], 23, 31, 0.5, (Hit(a, 0.9, 0.9, 1.0), Hit(b, 0.8, 0.8, 1.0)))
    assert plain(answer).count("[[Brussels]]") == 2
    answer = Answer("q", ARTICLE[23:42], 23, 42, 0.5, (Hit(a, 0.9, 0.9, 1.0), Hit(b, 0.8, 0.8, 1.0)))
    out = plain(answer)
    assert out.count("[[") == 1 and out.count("]]") == 1
    assert "\nThe talks were held in Brussels.\n" in out  # the first passage, unmarked
    assert "in [[Brussels.\n\nZelensky]] said talks in" in out


def test_plain_without_passages():
    out = plain(answered(0, 3), show_passages=False)
    assert out == "Answer: The\n  (characters 0-3, score 0.81)"


def test_no_answer_says_so():
    answer = Answer("Who won?", None, None, None, 0.9, HITS)
    out = plain(answer)
    assert out.split("\n")[0] == "The article does not say."
    assert "[[" not in out
    assert plain(answer, show_passages=False) == "The article does not say."


def test_visible_escapes_controls_but_keeps_newlines_and_tabs():
    assert visible("a\x1b[31mred\x1b[0m") == "a\\x1b[31mred\\x1b[0m"
    assert visible("bell\x07 del\x7f c1\x9b cr\r") == "bell\\x07 del\\x7f c1\\x9b cr\\x0d"
    assert visible("line\nnext\ttab") == "line\nnext\ttab"


def test_plain_shows_escapes_literally():
    article = "Evil \x1b[31mred\x1b[0m text\x07 here [bold red]x[/]."
    p = Passage(0, 0, len(article), article)
    start = article.index("red")
    answer = Answer("Which \x1b[2J colour?", "red", start, start + 3, 0.5, (Hit(p, 1.0, 1.0, 1.0),))
    out = plain(answer)
    assert "\x1b" not in out and "\x07" not in out
    assert "Evil \\x1b[31m[[red]]\\x1b[0m text\\x07 here [bold red]x[/]." in out


def _render_rich(answer: Answer, **options) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system="truecolor")
    console.print(rich_renderable(answer, **options))
    return buffer.getvalue()


def test_rich_keeps_markup_literal_and_escapes_ansi():
    article = "Evil \x1b[31mred\x1b[0m text here [bold red]x[/] and [link=http://e.vil]y[/link]."
    p = Passage(0, 0, len(article), article)
    start = article.index("red\x1b")
    answer = Answer("q", "red", start, start + 3, 0.5, (Hit(p, 1.0, 1.0, 1.0),))
    out = _render_rich(answer)
    assert "[bold red]" in out
    assert "[/]" in out
    assert "[link=http://e.vil]" in out
    assert "\\x1b[31m" in out and "\\x1b[0m" in out
    # The only raw escapes are rich's own styling, never the article's "\x1b[31m".
    assert "\x1b[31mred" not in out
    assert "\x1b]8;" not in out  # no hyperlink was made from the article's markup


def test_rich_markup_literal_in_every_part_of_every_passage():
    article = "[i]Before[/i] Kyiv [u]after[/u].\n\nOther [bold red]alert[/bold red] \x1b[5mblink."
    p0 = Passage(0, 0, 31, article[:31])
    p1 = Passage(1, 33, len(article), article[33:])
    start = article.index("Kyiv")
    answer = Answer("q", "Kyiv", start, start + 4, 0.5, (Hit(p0, 1.0, 1.0, 1.0), Hit(p1, 0.5, 0.5, 0.5)))
    out = _render_rich(answer)
    assert "[i]Before[/i]" in out
    assert "[u]after[/u]" in out
    assert "[bold red]alert[/bold red]" in out
    assert "\\x1b[5mblink" in out and "\x1b[5m" not in out


def test_rich_answer_text_with_markup_stays_literal():
    article = "Title [bold red]Breaking[/bold red] news."
    p = Passage(0, 0, len(article), article)
    start = article.index("[bold red]")
    end = article.index("[/bold red]") + len("[/bold red]")
    answer = Answer("q", article[start:end], start, end, 0.5, (Hit(p, 1.0, 1.0, 1.0),))
    out = _render_rich(answer)
    assert out.count("[bold red]Breaking[/bold red]") == 2  # the answer line and the passage
    assert "Answer: " in out


def test_rich_no_answer():
    out = _render_rich(Answer("Who won?", None, None, None, 0.9, HITS), show_passages=False)
    assert "The article does not say." in out
