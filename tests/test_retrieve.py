"""Tests for qa.retrieve: score fusion and top-k retrieval over a tiny hand-made index."""

from __future__ import annotations

import numpy as np
import pytest

from article_qa.index.article import Article
from article_qa.index.passages import Chunking, Passage
from article_qa.index.store import ArticleIndex, IndexStatus
from article_qa.qa.retrieve import Hit, fused_scores, retrieve

# --- fused_scores ----------------------------------------------------------------------------


def test_bm25_is_divided_by_its_max():
    dense = np.array([0.2, 0.4, 0.6], dtype=np.float32)
    lexical = np.array([2.0, 8.0, 4.0], dtype=np.float32)
    fused = fused_scores(dense, lexical, dense_weight=0.5)
    assert fused == pytest.approx([0.5 * 0.2 + 0.5 * 0.25, 0.5 * 0.4 + 0.5 * 1.0, 0.5 * 0.6 + 0.5 * 0.5])


def test_dense_weight_is_applied():
    dense = np.array([1.0, 0.0], dtype=np.float32)
    lexical = np.array([0.0, 3.0], dtype=np.float32)
    assert fused_scores(dense, lexical, 0.8) == pytest.approx([0.8, 0.2])
    assert fused_scores(dense, lexical, 0.2) == pytest.approx([0.2, 0.8])
    assert fused_scores(dense, lexical, 1.0) == pytest.approx([1.0, 0.0])


def test_zero_bm25_leaves_dense_only():
    dense = np.array([0.3, -0.1, 0.9], dtype=np.float32)
    fused = fused_scores(dense, np.zeros(3, dtype=np.float32), dense_weight=0.5)
    assert fused == pytest.approx(0.5 * dense)
    assert np.all(np.isfinite(fused))
    assert list(np.argsort(-fused)) == [2, 0, 1]


def test_fusion_scale_does_not_depend_on_bm25_scale():
    dense = np.array([0.1, 0.5], dtype=np.float32)
    lexical = np.array([1.0, 3.0], dtype=np.float32)
    assert fused_scores(dense, lexical) == pytest.approx(fused_scores(dense, lexical * 1000))


def test_empty_inputs():
    assert fused_scores(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)).shape == (0,)


# --- retrieve --------------------------------------------------------------------------------

TEXTS = [
    "The peace talks were held in Brussels, Belgium.",
    "Zelensky spoke to journalists in Kyiv.",
    "Ukraine is dropping its NATO bid.",
    "The weather was sunny all week.",
]
ARTICLE_TEXT = "\n\n".join(TEXTS)


def _passages() -> list[Passage]:
    out, start = [], 0
    for i, text in enumerate(TEXTS):
        out.append(Passage(i, start, start + len(text), text))
        start += len(text) + 2
    return out


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def tiny_index() -> ArticleIndex:
    import faiss

    vectors = np.stack([_unit(np.eye(4)[i] + 0.1) for i in range(4)])
    flat = faiss.IndexFlatIP(4)
    flat.add(np.ascontiguousarray(vectors))
    article = Article(ARTICLE_TEXT, "<test>", "0" * 64)
    status = IndexStatus("in-memory", None, None, 0.0)
    index = ArticleIndex(article, _passages(), flat, None, Chunking(), status)
    for p in index.passages:
        assert ARTICLE_TEXT[p.start : p.end] == p.text
    return index


def test_retrieve_returns_k_hits_best_first(tiny_index):
    query = _unit([0.1, 0.2, 1.0, 0.0])  # closest to passage 2
    (hits,) = retrieve(tiny_index, query[None, :], ["completely unrelated words"], k=3, dense_weight=0.5)
    assert len(hits) == 3
    assert all(isinstance(h, Hit) for h in hits)
    assert [h.passage.index for h in hits] == [2, 1, 0]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    vectors = np.stack([_unit(np.eye(4)[i] + 0.1) for i in range(4)])
    for h in hits:
        assert h.lexical_score == 0.0
        assert h.dense_score == pytest.approx(float(vectors[h.passage.index] @ query), abs=1e-5)
        assert h.score == pytest.approx(0.5 * h.dense_score, abs=1e-6)


def test_lexical_match_can_outrank_dense(tiny_index):
    query = _unit([1.0, 0.0, 0.0, 0.0])  # dense prefers passage 0
    texts = ["Where did Zelensky speak to journalists?"]
    (dense_only,) = retrieve(tiny_index, query[None, :], texts, k=2, dense_weight=1.0)
    assert dense_only[0].passage.index == 0
    (fused,) = retrieve(tiny_index, query[None, :], texts, k=2, dense_weight=0.3)
    assert fused[0].passage.index == 1
    assert fused[0].lexical_score > 0
    best_lexical = max(h.lexical_score for h in fused)
    assert fused[0].score == pytest.approx(
        0.3 * fused[0].dense_score + 0.7 * fused[0].lexical_score / best_lexical, abs=1e-5
    )


def test_batch_of_queries_each_get_their_hits(tiny_index):
    queries = np.stack([_unit([0, 0, 0, 1.0]), _unit([0, 1.0, 0, 0])])
    results = retrieve(tiny_index, queries, ["sunny weather", "journalists Kyiv"], k=1)
    assert [[h.passage.index for h in hits] for hits in results] == [[3], [1]]


def test_k_larger_than_passages_returns_all(tiny_index):
    (hits,) = retrieve(tiny_index, _unit([1, 1, 1, 1])[None, :], ["talks"], k=10)
    assert sorted(h.passage.index for h in hits) == [0, 1, 2, 3]
    assert hits[0].passage.index == 0  # "talks" is only in passage 0


def test_empty_index_gives_no_hits():
    import faiss

    index = ArticleIndex(
        Article("", "<empty>", "0" * 64), [], faiss.IndexFlatIP(4), None, Chunking(),
        IndexStatus("in-memory", None, None, 0.0),
    )
    assert retrieve(index, np.zeros((2, 4), dtype=np.float32), ["a", "b"], k=3) == [[], []]
