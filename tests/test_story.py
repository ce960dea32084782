"""An HTML page read as its story (index/story.py): the headline and the body's paragraphs, no
menus, share buttons, related links, comments or footers; `--html whole` reads the page as laid
out; a page without a story says so once and is read whole."""

from __future__ import annotations

import warnings

import pytest
from helpers_site import NAVIGATION_PAGE, STORY_PAGE
from typer.testing import CliRunner

from article_qa.cli import app
from article_qa.index.article import ArticleError, article_ref, load_article
from article_qa.index.formats import FormatWarning, html_story_or_whole, html_text

NOT_THE_STORY = ["Home", "Subscribe", "Share on Facebook", "Related stories", "Lighthouse keeper",
                 "Great news for the island", "Copyright", "Cookie settings"]


def test_a_page_is_read_as_its_story(tmp_path):
    page = tmp_path / "ferry.html"
    page.write_text(STORY_PAGE, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a page with a story says nothing
        article = load_article(page)
    text = article.text
    assert article.format == "html"
    assert text.splitlines()[0] == "Ferry strike ends after nine days"  # the page's one <h1>, first
    assert article.ref().title == "Ferry strike ends after nine days"
    for phrase in ["ended their strike on Tuesday", "carrying 212 passengers", "Maria Okafor said the agreement",
                   "about 40,000 euros a day"]:
        assert phrase in text
    for junk in NOT_THE_STORY:
        assert junk not in text, junk
    # headline and paragraphs are blocks between blank lines, each paragraph's words on one line
    blocks = text.rstrip("\n").split("\n\n")
    assert len(blocks) == 5 and all("\n" not in b for b in blocks)
    assert article_ref(article).to_dict() == {"id": "ferry.html", "title": "Ferry strike ends after nine days",
                                              "source": str(page)}


def test_html_whole_reads_the_page_as_laid_out(tmp_path):
    page = tmp_path / "ferry.html"
    page.write_text(STORY_PAGE, encoding="utf-8")
    whole = load_article(page, html="whole").text
    assert whole == html_text(STORY_PAGE)
    assert "Subscribe today" in whole and "Lighthouse keeper retires at 90" in whole
    assert "carrying 212 passengers" in whole


def test_a_page_without_a_story_says_so_once_and_is_read_whole(tmp_path):
    page = tmp_path / "map.html"
    page.write_text(NAVIGATION_PAGE, encoding="utf-8")
    with pytest.warns(FormatWarning) as caught:
        article = load_article(page)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert messages[0].startswith(f"{page}: no story found in the page; it is read whole")
    assert article.text == html_text(NAVIGATION_PAGE)
    assert "Weather" in article.text


def test_text_standing_loose_after_a_figure_is_a_paragraph_of_the_story():
    # The shape of a real page (yahoo-3): a paragraph that is the tail text of a figure's frame,
    # with a link inside it. trafilatura's precision mode dropped it before it was made a <p>.
    paragraphs = "".join(f"<p>Paragraph {n} of the story about the harbour strike, with enough words to read "
                         f"as prose on a news page, number {n}.</p>" for n in range(1, 5))
    page = (f"<html><body><article><h1>Harbour strike</h1>{paragraphs}<div class='frame'><div class='fig'>"
            "<figure><img src='x.jpg'></figure><p class='legend'>Photo</p></div>The Federal Code sets no "
            "penalty for it. In the past, the <a href='/court'>Supreme Court</a> has protected such acts."
            "</div><p>The last paragraph of the story says the strike is over now.</p></article></body></html>")
    text = html_story_or_whole(page, "page")
    assert "The Federal Code sets no penalty for it. In the past, the Supreme Court has protected such acts." in text
    assert text.index("Paragraph 4") < text.index("The Federal Code") < text.index("The last paragraph")


def test_lists_and_tables_of_a_story_keep_their_lines():
    prose = " ".join(["The council published its budget for the coming year on Monday."] * 4)
    page = (f"<html><body><article><h1>Budget</h1><p>{prose}</p><p>{prose}</p><ul><li>Roads: more</li>"
            "<li>Schools: the same</li></ul><table><tr><th>Item</th><th>Euros</th></tr><tr><td>Roads</td>"
            f"<td>4,000</td></tr></table><p>{prose}</p></article></body></html>")
    text = html_story_or_whole(page, "page")
    assert "• Roads: more\n• Schools: the same" in text
    assert "Item | Euros\nRoads | 4,000" in text


def test_an_unknown_html_mode_is_one_line(tmp_path):
    page = tmp_path / "ferry.html"
    page.write_text(STORY_PAGE, encoding="utf-8")
    with pytest.raises(ArticleError, match=r"^--html must be one of story, whole, not 'all'$"):
        load_article(page, html="all")


def test_text_prints_the_story_and_html_whole_the_page(tmp_path):
    page = tmp_path / "ferry.html"
    page.write_text(STORY_PAGE, encoding="utf-8")
    runner = CliRunner()
    story = runner.invoke(app, ["text", "--article", str(page)])
    assert story.exit_code == 0, story.output
    assert story.stdout == load_article(page).text and "Subscribe" not in story.stdout
    whole = runner.invoke(app, ["text", "--article", str(page), "--html", "whole"])
    assert whole.exit_code == 0 and "Subscribe today" in whole.stdout
    bad = runner.invoke(app, ["text", "--article", str(page), "--html", "all"])
    assert bad.exit_code == 2 and bad.stderr == "article-qa: error: --html must be one of story, whole, not 'all'\n"


def test_the_article_ref_of_a_text_file_and_of_the_shipped_article(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("\n\n  The   lighthouse of Gull Rock \nIt was built in 1882.\n", encoding="utf-8")
    assert article_ref(load_article(notes)).to_dict() == {"id": "notes.txt", "title": "The lighthouse of Gull Rock",
                                                          "source": str(notes)}
    shipped = article_ref(load_article(None))
    assert (shipped.id, shipped.source) == ("default", "default article")
