"""Tests for index.sentences: rule-based sentence boundaries as exact, trimmed character spans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from article_qa.index.sentences import sentence_spans


def sentences(text: str, start: int = 0, end: int | None = None) -> list[str]:
    spans = sentence_spans(text, start, end)
    for s, e in spans:
        assert 0 <= s < e <= len(text)
        assert text[s:e] == text[s:e].strip(), "span not trimmed"
    return [text[s:e] for s, e in spans]


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith went to Washington on Monday.",
        "Mrs. Jones and Dr. Who met Prof. Plum at St. Paul's.",
        "The U.S. economy grew faster than the U.K. economy did.",
        "J. R. R. Tolkien wrote The Hobbit.",
        "Inflation was 3.5 percent, and pi is about 3.14159 here.",
        "Fruit (e.g. apples) and tools, i.e. hammers, etc. were sold.",
        "The meeting starts at 9 a.m. sharp and ends at 5 p.m. today.",
        "He lives at No. 10 Downing St. in London.",
        "Version 2.0.1 of the app fixed v1.9 bugs.",
        "Visit example.com/a.b for details.",
    ],
)
def test_abbreviations_initials_and_decimals_do_not_split(text):
    assert sentences(text) == [text]


def test_period_after_ordinary_word_splits():
    text = "Zelensky spoke in Brussels. Talks continue on Monday."
    assert sentences(text) == ["Zelensky spoke in Brussels.", "Talks continue on Monday."]


def test_abbreviation_followed_by_real_sentence_end():
    text = "Mr. Smith met the U.S. envoy. He left at noon. Then Dr. Who arrived."
    assert sentences(text) == ["Mr. Smith met the U.S. envoy.", "He left at noon.", "Then Dr. Who arrived."]


def test_numbers_ending_a_sentence_split():
    assert sentences("It began in 2022. It goes on.") == ["It began in 2022.", "It goes on."]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Stop! Who goes there? Nobody.", ["Stop!", "Who goes there?", "Nobody."]),
        ("Really?! Yes... Fine.", ["Really?!", "Yes...", "Fine."]),
        ("Wait… what happened?", ["Wait…", "what happened?"]),
        ('He said "Go home." Then he left.', ['He said "Go home."', "Then he left."]),
        ("She asked “Why?” Nobody answered.", ["She asked “Why?”", "Nobody answered."]),
        ("It was ‘irreversible.’ Then came talks.", ["It was ‘irreversible.’", "Then came talks."]),
        ("(This is an aside.) Next sentence.", ["(This is an aside.)", "Next sentence."]),
        ("They won [in 2020.] After that, no.", ["They won [in 2020.]", "After that, no."]),
    ],
)
def test_exclamation_question_and_closing_quotes_split(text, expected):
    assert sentences(text) == expected


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_breaks_end_sentences(newline):
    text = newline.join(["# Heading", "- a bullet without a period", "Body text, one sentence. Two", "", "Last"])
    assert sentences(text) == [
        "# Heading",
        "- a bullet without a period",
        "Body text, one sentence.",
        "Two",
        "Last",
    ]


def test_abbreviation_at_line_end_still_breaks_at_the_newline():
    assert sentences("Ask Mr.\nSmith.") == ["Ask Mr.", "Smith."]


def test_whitespace_and_empty_inputs():
    assert sentence_spans("") == []
    assert sentence_spans("   \n\t \r\n  ") == []
    text = "  \t Padded sentence.   \n\n   Another one!  "
    assert sentences(text) == ["Padded sentence.", "Another one!"]
    s, e = sentence_spans(text)[0]
    assert (s, e) == (text.index("Padded"), text.index("Padded") + len("Padded sentence."))


def test_non_breaking_space_after_period_splits():
    assert sentences("One here.\u00a0Two there.") == ["One here.", "Two there."]


def test_sub_range_offsets_are_into_the_whole_text():
    text = "Ignore this. Take this one. And this! Not this."
    start = text.index("Take")
    end = text.index("Not")
    spans = sentence_spans(text, start, end)
    assert [text[s:e] for s, e in spans] == ["Take this one.", "And this!"]
    assert all(start <= s < e <= end for s, e in spans)


def test_default_article_sentences_are_sane():
    from article_qa.index.article import load_article

    text = load_article(None).text
    found = sentences(text)
    assert len(found) > 20
    assert "U.S. envoy Steve Witkoff, speaking after meetings in Brussels, Belgium, said that “a lot of progress was made” in the negotiations, though he offered no details." in found
    assert "“This already is a compromise on our part,” he added." in found


_PIECES = [
    "word", "Mr.", "U.S.", "3.14", "e.g.", "J.", " ", "  ", "\t", "\n", "\r\n", "\n\n", ".", "!", "?",
    "…", '"', "”", "’", ")", "]", "(", "“", "é", "😀", "\u00a0", "\u200b", "a.m.", "etc.",
]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)), max_size=60).map("".join),
    st.data(),
)
def test_spans_are_trimmed_ordered_slices_covering_all_text(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spans = sentence_spans(text, start, end)
    previous_end = start
    for s, e in spans:
        assert previous_end <= s < e <= end
        piece = text[s:e]
        assert not piece[0].isspace() and not piece[-1].isspace()
        assert "\n" not in piece  # a sentence never crosses a line break
        previous_end = e
    # Nothing but white space lies outside the sentences.
    covered = [False] * len(text)
    for s, e in spans:
        covered[s:e] = [True] * (e - s)
    assert all(text[i].isspace() for i in range(start, end) if not covered[i])
