"""Tests for terminal/render.py: answer first, its sentence with the span marked, passages on request (the
answer's first, weak ones dropped), three distinct verdicts, and text shown literally."""

from __future__ import annotations

import io

from article_qa.index.passages import Passage
from article_qa.qa.answer import Answer, Candidate, percent
from article_qa.qa.retrieve import Hit
from article_qa.terminal.locate import clip, locate
from article_qa.terminal.render import (
    MARK_CLOSE,
    MARK_OPEN,
    View,
    answer_lines,
    passage_lines,
    plain_text,
    rich_lines,
    shown_hits,
    visible,
)


def plain(answer: Answer, article: str, view: View = View()) -> str:
    return plain_text(answer_lines(answer, article, view))

ARTICLE = (
    "The talks were held in Brussels. They lasted two days.\n\n"
    "Zelensky said talks in Brussels went well.\n\n"
    "Weather was mild."
)
P0 = Passage(0, 0, 54, ARTICLE[0:54])
P1 = Passage(1, 56, 98, ARTICLE[56:98])
P2 = Passage(2, 100, len(ARTICLE), ARTICLE[100:])
HITS = (Hit(P1, 0.75, 0.6, 2.0), Hit(P0, 0.5, 0.4, 1.0), Hit(P2, 0.1, 0.1, 0.0))
SOURCES = View(sources=True)


def answered(start: int, end: int, hits=HITS, article=ARTICLE, score=0.8123) -> Answer:
    return Answer("Where?", article[start:end], start, end, score, hits)


def first_brussels() -> tuple[int, int]:
    start = ARTICLE.index("Brussels")
    return start, start + len("Brussels")


def test_default_view_is_answer_then_its_sentence_then_where():
    start, end = first_brussels()
    out = plain(answered(start, end), ARTICLE)
    assert out.split("\n") == [
        "Answer: Brussels  (confidence 81%)",
        f"  The talks were held in {MARK_OPEN}Brussels{MARK_CLOSE}.",
        f"  paragraph 1, characters {start}-{end}",
    ]
    assert "Zelensky" not in out and "lasted" not in out  # only the answer's sentence, no passages


def test_the_location_is_the_paragraph_a_person_counts():
    start = ARTICLE.index("Brussels went")
    out = plain(answered(start, start + 8), ARTICLE)
    assert "  paragraph 2, characters 79-87" in out.split("\n")
    assert ARTICLE[79:87] == "Brussels"
    assert locate(ARTICLE, 100, 105).paragraph == 3


def test_sources_put_the_answer_passage_first_and_drop_weak_ones():
    start, end = first_brussels()  # in P0, which retrieval ranked second
    answer = answered(start, end)
    assert [h.passage.index for h in shown_hits(answer)] == [0, 1]  # P2 matches 0.1: dropped
    lines = plain(answer, ARTICLE, SOURCES).split("\n")
    assert lines[3] == "" and lines[4] == "Passages"
    assert lines[5] == "[1] paragraph 1, characters 0-54, match 0.50"
    assert lines[6] == f"    The talks were held in {MARK_OPEN}Brussels{MARK_CLOSE}. They lasted two days."
    assert lines[7] == "[2] paragraph 2, characters 56-98, match 0.75"
    assert lines[8] == "    Zelensky said talks in Brussels went well."  # the other Brussels is not marked
    assert len(lines) == 9


def test_weak_ratio_drops_passages_far_below_the_best():
    hits = (Hit(P1, 0.9, 0.9, 1.0), Hit(P0, 0.5, 0.5, 1.0))
    answer = Answer("q", None, None, None, 0.0, hits)
    assert [h.passage.index for h in shown_hits(answer, weak_ratio=0.6)] == [1]
    assert [h.passage.index for h in shown_hits(answer, weak_ratio=0.5)] == [1, 0]


def test_span_reaching_past_a_passage_is_marked_only_where_whole():
    # Overlapping passages (windows of a long paragraph): "Brussels. They" lies only in the second.
    a = Passage(0, 0, 32, ARTICLE[0:32])
    b = Passage(1, 20, 54, ARTICLE[20:54])
    start = ARTICLE.index("Brussels")
    answer = Answer("q", ARTICLE[start:start + 14], start, start + 14, 0.5, (Hit(a, 0.9, 0.9, 1.0), Hit(b, 0.8, 0.8, 1.0)))
    out = plain(answer, ARTICLE, SOURCES)
    assert out.count(MARK_OPEN) == 2  # the sentence line and passage b, not passage a
    assert "[1] paragraph 1, characters 20-54" in out  # the passage holding the answer comes first
    assert out.endswith("\n    The talks were held in Brussels.")  # passage a, unmarked


def test_not_sure_shows_the_best_guess_and_its_probability():
    start, end = first_brussels()
    answer = Answer("Where?", None, None, None, 0.28, HITS, best_guess=Candidate("Brussels", start, end, 0.28))
    lines = plain(answer, ARTICLE).split("\n")
    assert lines[0] == "Not sure. The closest the article comes: “Brussels” (28%)."
    assert lines[1] == f"  The talks were held in {MARK_OPEN}Brussels{MARK_CLOSE}."
    assert answer.verdict == "not sure"


def test_not_in_the_article_is_one_line():
    answer = Answer("Who won?", None, None, None, 0.0, HITS)
    assert plain(answer, ARTICLE) == "The article does not say."
    out = plain(answer, ARTICLE, SOURCES)
    assert MARK_OPEN not in out and "Weather" not in out


def test_no_passage_worth_showing_is_said():
    answer = Answer("Who won?", None, None, None, 0.0, (Hit(P2, 0.1, 0.1, 0.0),))
    assert plain(answer, ARTICLE, SOURCES).split("\n")[-1] == "No passage matches the question well."


def test_read_as_comes_first_on_one_line():
    start, end = first_brussels()
    answer = Answer("Where was it?", "Brussels", start, end, 0.9, HITS, read_as="Where was\nthe\tmeeting?")
    lines = answer_lines(answer, ARTICLE)
    assert plain_text(lines[:1]) == "read as: Where was the meeting?"
    assert lines[0].one_line
    assert "read as" not in plain(Answer("q", "Brussels", start, end, 0.9, HITS), ARTICLE)


def test_percent_never_claims_certainty():
    assert [percent(p) for p in (0.0, 0.004, 0.28, 0.5, 0.994, 0.999, 1.0)] == ["<1%", "<1%", "28%", "50%", "99%", ">99%", ">99%"]


def test_long_sentence_is_clipped_around_the_answer_at_word_boundaries():
    article = " ".join(f"word{i}" for i in range(200)) + " Kyiv " + " ".join(f"more{i}" for i in range(200)) + "."
    start = article.index("Kyiv")
    lines = plain(answered(start, start + 4, hits=(), article=article), article).split("\n")
    sentence = lines[1].strip()
    assert sentence.startswith("…word") and sentence.endswith("…")
    assert f"{MARK_OPEN}Kyiv{MARK_CLOSE}" in sentence
    assert len(sentence) <= 260
    for word in sentence.strip("…").replace(MARK_OPEN, " ").replace(MARK_CLOSE, " ").split():
        assert word in article.split()  # no word cut in half


def test_clip_keeps_the_focus_whole_and_inside_the_limit():
    text = "a " * 500 + "focus here " + "b " * 500
    start = text.index("focus")
    for limit in (20, 50, 200):
        left, right = clip(text, 0, len(text), start, start + 10, limit)
        assert left <= start and right >= start + 10
        assert right - left <= limit


def test_a_passage_shown_whole_or_clipped():
    article = "Intro. " + "Long sentence here. " * 40 + "The treaty was signed in Vienna."
    p = Passage(0, 0, len(article), article)
    start = article.index("Vienna")
    answer = answered(start, start + 6, hits=(Hit(p, 0.9, 0.9, 1.0),), article=article)
    whole = plain_text(passage_lines(answer, article, answer.hits[0], 1))
    assert whole.split("\n")[1] == "    " + article.replace("Vienna", f"{MARK_OPEN}Vienna{MARK_CLOSE}")
    clipped = plain_text(passage_lines(answer, article, answer.hits[0], 1, limit=100)).split("\n")[1]
    assert clipped.startswith("    …") and f"{MARK_OPEN}Vienna{MARK_CLOSE}" in clipped and len(clipped) < 120


def test_crlf_article_shows_no_carriage_returns():
    article = "First line here.\r\nThe talks were in Brussels.\r\n\r\nEnd.\r\n"
    start = article.index("Brussels")
    p = Passage(0, 0, 46, article[:46])
    answer = answered(start, start + 8, hits=(Hit(p, 0.9, 0.9, 1.0),), article=article)
    out = plain(answer, article, SOURCES)
    assert "\\x0d" not in out and "\r" not in out
    assert f"    The talks were in {MARK_OPEN}Brussels{MARK_CLOSE}." in out.split("\n")


def test_marker_is_not_markdown():
    # `[[x]]` inside a Markdown link read as `[[[x]]](…)`; the marker must be neither brackets nor * _ `.
    assert not set(MARK_OPEN + MARK_CLOSE) & set("[]()*_`<>#~=")


def test_visible_escapes_controls_but_keeps_newlines_and_tabs():
    assert visible("a\x1b[31mred\x1b[0m") == "a\\x1b[31mred\\x1b[0m"
    assert visible("bell\x07 del\x7f c1\x9b") == "bell\\x07 del\\x7f c1\\x9b"
    assert visible("line\nnext\ttab") == "line\nnext\ttab"
    assert visible("crlf\r\nlone\rend") == "crlf\nlone\nend"


def test_plain_shows_escapes_literally():
    article = "Evil \x1b[31mred\x1b[0m text\x07 here [bold red]x[/]."
    p = Passage(0, 0, len(article), article)
    start = article.index("red")
    answer = Answer("Which \x1b[2J colour?", "red", start, start + 3, 0.5, (Hit(p, 1.0, 1.0, 1.0),))
    out = plain(answer, article, SOURCES)
    assert "\x1b" not in out and "\x07" not in out
    assert f"Evil \\x1b[31m{MARK_OPEN}red{MARK_CLOSE}\\x1b[0m text\\x07 here [bold red]x[/]." in out


def _render_rich(answer: Answer, article: str, view: View = SOURCES, color: bool = True, width: int = 200) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, color_system="truecolor" if color else None)
    console.print(rich_lines(answer_lines(answer, article, view), color))
    return buffer.getvalue()


def test_rich_keeps_markup_literal_and_escapes_ansi():
    article = "Evil \x1b[31mred\x1b[0m text here [bold red]x[/] and [link=http://e.vil]y[/link]."
    p = Passage(0, 0, len(article), article)
    start = article.index("red\x1b")
    answer = Answer("q", "red", start, start + 3, 0.5, (Hit(p, 1.0, 1.0, 1.0),))
    out = _render_rich(answer, article)
    assert "[bold red]" in out
    assert "[/]" in out
    assert "[link=http://e.vil]" in out
    assert "\\x1b[31m" in out and "\\x1b[0m" in out
    # The only raw escapes are rich's own styling, never the article's "\x1b[31m".
    assert "\x1b[31mred" not in out
    assert "\x1b]8;" not in out  # no hyperlink was made from the article's markup


def test_rich_answer_text_with_markup_stays_literal():
    article = "Title [bold red]Breaking[/bold red] news."
    p = Passage(0, 0, len(article), article)
    start = article.index("[bold red]")
    end = article.index("[/bold red]") + len("[/bold red]")
    answer = Answer("q", article[start:end], start, end, 0.5, (Hit(p, 1.0, 1.0, 1.0),))
    out = _render_rich(answer, article)
    assert out.count("[bold red]Breaking[/bold red]") == 3  # the answer line, its sentence, the passage
    assert "Answer: " in out


def test_rich_highlights_with_style_and_plain_rich_with_the_marker():
    start, end = first_brussels()
    styled = _render_rich(answered(start, end), ARTICLE, View())
    assert MARK_OPEN not in styled and "\x1b[" in styled
    unstyled = _render_rich(answered(start, end), ARTICLE, View(), color=False)
    assert f"{MARK_OPEN}Brussels{MARK_CLOSE}" in unstyled and "\x1b[" not in unstyled


def test_rich_wraps_at_word_boundaries_and_keeps_the_indent():
    article = ("The negotiators met again on Monday in the Egmont Palace in Brussels, where the "
               "delegations exchanged updated proposals for a ceasefire along the whole front line.")
    start = article.index("Brussels")
    out = _render_rich(answered(start, start + 8, hits=(), article=article), article, View(), color=False, width=40)
    lines = out.rstrip("\n").split("\n")
    sentence_lines = lines[1:-1]
    assert len(sentence_lines) > 2 and all(line.startswith("  ") and len(line) <= 40 for line in sentence_lines)
    words = article.replace("Brussels", f"{MARK_OPEN}Brussels{MARK_CLOSE}").split()
    assert " ".join(" ".join(line.split()) for line in sentence_lines).split() == words  # no word broken


def test_rich_no_answer():
    out = _render_rich(Answer("Who won?", None, None, None, 0.9, HITS), ARTICLE, View())
    assert "The article does not say." in out
