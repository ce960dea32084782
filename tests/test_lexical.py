"""Tests for index.lexical: term folding and BM25 scores."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from article_qa.index.lexical import BM25, terms

DOCS = [
    "The talks continued in Brussels and the talks were long.",
    "Zelensky said the talks with Witkoff made progress in Brussels.",
    "Security guarantees were discussed at the talks in Brussels.",
    "The weather in Brussels was cold during the talks.",
]


def test_terms_lowercase_drop_stopwords_and_fold_plurals():
    assert terms("The Talks WERE with NATO guarantees") == ["talk", "nato", "guarantee"]
    assert terms("class glass bus gas is") == ["class", "glass", "bus", "gas"]  # -ss and short words kept
    assert terms("") == []
    assert terms("the of and , . !") == []
    assert terms("Café naïve Kyiv 2022") == ["café", "naïve", "kyiv", "2022"]


def test_rare_matching_term_ranks_first():
    bm25 = BM25(DOCS)
    scores = bm25.scores("talks with Zelensky in Brussels")
    assert scores.shape == (len(DOCS),)
    assert int(np.argmax(scores)) == 1
    # "security" and "guarantees" appear only in document 2.
    assert int(np.argmax(bm25.scores("What security guarantees?"))) == 2
    # A term in every document still counts, but less than a rare one.
    common = bm25.scores("brussels")
    rare = bm25.scores("witkoff")
    assert (common > 0).all()
    assert rare[1] > common.max()
    assert (rare[[0, 2, 3]] == 0).all()


def test_unknown_terms_give_zeros():
    bm25 = BM25(DOCS)
    for query in ["xylophone quasar", "", "the of and", "???"]:
        scores = bm25.scores(query)
        assert scores.shape == (len(DOCS),)
        assert scores.dtype == np.float32
        assert not scores.any()


def test_plural_folding_matches_singular_and_plural():
    bm25 = BM25(["one peace talk today", "weather report", "many guarantees given"])
    assert int(np.argmax(bm25.scores("talks"))) == 0
    assert bm25.scores("talks")[0] > 0
    assert bm25.scores("guarantee")[2] > 0
    assert bm25.scores("guarantee")[2] == pytest.approx(bm25.scores("guarantees")[2])


def test_term_frequency_and_length_normalisation():
    bm25 = BM25(["kyiv kyiv filler", "kyiv filler filler", "kyiv " + "filler " * 20, "other words here"])
    s = bm25.scores("kyiv")
    assert s[0] > s[1] > s[2] > 0
    assert s[3] == 0


def test_empty_collection_and_stopword_documents():
    assert BM25([]).scores("anything").shape == (0,)
    bm25 = BM25(["the and of", "kyiv"])
    s = bm25.scores("kyiv")
    assert np.isfinite(s).all()
    assert s[0] == 0 and s[1] > 0


def _reference_bm25(documents, query, k1=1.5, b=0.75):
    counts = [Counter(terms(d)) for d in documents]
    n = len(documents)
    lengths = [sum(c.values()) for c in counts]
    average = sum(lengths) / n if n else 1.0
    out = []
    for c, length in zip(counts, lengths):
        score = 0.0
        for t in terms(query):
            df = sum(1 for other in counts if t in other)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = c[t]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / max(average, 1e-9)))
        out.append(score)
    return out


_WORD = st.sampled_from("kyiv nato talk talks brussels peace guarantee guarantees the of witkoff a".split())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(_WORD, max_size=12).map(" ".join), min_size=1, max_size=8),
    st.lists(_WORD, min_size=1, max_size=4).map(" ".join),
)
def test_matches_reference_formula(documents, query):
    got = BM25(documents).scores(query)
    expected = _reference_bm25(documents, query)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_saved_and_reopened_gives_the_same_scores():
    documents = DOCS + ["", "the of and", "Kyiv Kyiv talks talks talks"]
    built = BM25(documents)
    again = BM25.from_buffer(built.to_bytes(), built.shape())
    for query in ["talks with Zelensky in Brussels", "kyiv", "nothing known", "talks talks"]:
        np.testing.assert_array_equal(again.scores(query), built.scores(query))
    empty = BM25([])
    assert BM25.from_buffer(empty.to_bytes(), empty.shape()).scores("x").shape == (0,)


def test_a_damaged_saved_file_is_refused():
    built = BM25(DOCS)
    data, shape = built.to_bytes(), built.shape()
    with pytest.raises(ValueError):
        BM25.from_buffer(data[: len(data) // 2], shape)
    with pytest.raises(ValueError):
        BM25.from_buffer(data, {**shape, "terms": shape["terms"] + 1})
    broken = bytearray(data)
    broken[8 * (shape["terms"] + 1)] = 0x7F  # the first posting's passage number, far out of range
    with pytest.raises(ValueError):
        BM25.from_buffer(bytes(broken), shape)


def test_a_big_article_is_stored_sparse():
    """A 5 MB article (17,794 passages) took 2.06 GB as a dense passages x vocabulary table; the
    postings grow with the text, not with passages x vocabulary."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(20_000)]
    documents = [" ".join(rng.choice(words, size=40)) for _ in range(5_000)]
    bm25 = BM25(documents)
    stored = sum(a.nbytes for a in (bm25.indptr, bm25.docs, bm25.tf, bm25.norm, bm25.idf))
    assert len(bm25.vocabulary) > 19_000
    assert stored < 5_000 * 40 * 8 + 20_001 * 12 + 5_000 * 4  # at most one posting per word
    dense = len(documents) * len(bm25.vocabulary) * 4  # what the dense table took: 400 MB here
    assert stored * 100 < dense
    scores = bm25.scores(documents[123])
    assert int(np.argmax(scores)) == 123
