"""The page's article layout: blocks are exact ranges of the article text, headings and paragraphs
as in the file, so an answer's offsets land on the words the page shows."""

from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from article_qa.index.article import load_article
from article_qa.web.blocks import article_blocks


def check_invariants(text: str) -> None:
    blocks = article_blocks(text)
    previous_end = 0
    covered = set()
    for block in blocks:
        assert previous_end <= block.start < block.end <= len(text)
        piece = text[block.start : block.end]
        assert piece == piece.strip(), block  # never starts or ends with white space
        covered.update(range(block.start, block.end))
        previous_end = block.end
    # Everything not shown is white space or a heading's # marks.
    for i, char in enumerate(text):
        if i not in covered:
            assert char.isspace() or char == "#", (i, char, text)


def test_shipped_article_one_paragraph_per_line():
    text = load_article(None).text
    blocks = article_blocks(text)
    lines = [line for line in text.split("\n") if line.strip()]
    assert [text[b.start : b.end] for b in blocks] == [line.strip() for line in lines]
    assert {b.kind for b in blocks} == {"p"}
    check_invariants(text)


def test_markdown_headings_paragraphs_lists_and_crlf():
    text = (
        "# Lighthouse notes #\r\n\r\n"
        "The lighthouse on Gull Rock was built in 1882\r\nby the Harbour Board.\r\n\r\n"
        "## Lamp\r\n"
        "- electrified in 1931\r\n- automated in 1986\r\n\r\n"
        "#hashtag is not a heading, and C# stays\r\n"
    )
    blocks = article_blocks(text)
    shown = [(b.kind, text[b.start : b.end]) for b in blocks]
    assert shown == [
        ("h1", "Lighthouse notes"),
        ("p", "The lighthouse on Gull Rock was built in 1882\r\nby the Harbour Board."),
        ("h2", "Lamp"),
        ("lines", "- electrified in 1931\r\n- automated in 1986"),
        ("p", "#hashtag is not a heading, and C# stays"),
    ]
    check_invariants(text)


def test_heading_text_never_starts_or_ends_with_white_space():
    text = "# \r1\n##\t Title \x0b\n"  # found by hypothesis: a \r inside a heading line
    assert [(b.kind, text[b.start : b.end]) for b in article_blocks(text)] == [("h1", "1"), ("h2", "Title")]
    check_invariants(text)


def test_long_lines_are_paragraphs_even_without_blank_lines():
    long_a, long_b = "A" * 150 + " end.", "B" * 120 + " end."
    text = f"{long_a}\n{long_b}\n"
    assert [text[b.start : b.end] for b in article_blocks(text)] == [long_a, long_b]


def test_empty_and_blank_text_have_no_blocks():
    assert article_blocks("") == []
    assert article_blocks(" \n\t\r\n ") == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab #-1.\n\r\t ") + ["é", "📍"]), max_size=200))
def test_blocks_cover_every_visible_character(text):
    check_invariants(text)
    # An answer span anywhere in the text overlaps the blocks that show its visible characters.
    for match in re.finditer(r"\S+", text):
        if "#" not in match.group():
            assert any(b.start <= match.start() and match.end() <= b.end for b in article_blocks(text))
