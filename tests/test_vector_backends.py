"""index/vector_backends.py: exact and IVF+SQ8 indexes over passage ids, on small real arrays."""

from __future__ import annotations

import math
import numpy as np
import pytest

from article_qa.index.vector_backends import (
    MAGIC,
    VectorIndexError,
    exact_neighbours,
    new_vector_index,
    open_vector_index,
    recall_at_k,
    NPROBE_MARGIN,
    tune_nprobe,
)
from helpers_vectors import clustered

DIM = 16


@pytest.fixture(scope="module")
def data():
    """3,000 vectors in 30 clusters (as embeddings are), with ids that are not positions."""
    vectors, queries = clustered(seed=0, count=3000, clusters=30, dim=DIM, questions=100)
    ids = np.arange(3000, dtype=np.int64) * 7 + 1000
    return vectors, ids, queries


def ivf(data, nlist=32):
    vectors, ids, _ = data
    index = new_vector_index(DIM, len(vectors), training_sample=vectors, exact_max=1000, nlist=nlist)
    index.add(ids, vectors)
    return index


def test_kind_is_chosen_by_size_with_an_override(data):
    vectors = data[0]
    assert new_vector_index(DIM, 1000, exact_max=1000).kind == "exact"
    big = new_vector_index(DIM, 1001, exact_max=1000, training_sample=vectors)
    assert big.kind == "ivf-sq8"
    assert "by size" in big.configuration()["chosen_by"]
    forced = new_vector_index(DIM, 10**7, kind="exact")
    assert forced.kind == "exact" and forced.configuration()["chosen_by"] == "given"
    with pytest.raises(VectorIndexError, match="unknown vector index kind"):
        new_vector_index(DIM, 10, kind="hnsw")


def test_ivf_without_a_sample_trains_and_tunes_on_its_first_vectors(data, tmp_path):
    vectors, ids, queries = data
    index = new_vector_index(DIM, len(vectors), exact_max=1000)  # as a store that builds in one go calls it
    assert index.kind == "ivf-sq8" and len(index) == 0
    assert (index.search(queries[:2], 3)[1] == -1).all()
    with pytest.raises(VectorIndexError, match="add some before saving"):
        index.save(tmp_path / "v.idx")
    index.add(ids, vectors)
    config = index.configuration()
    assert config["trained_on"] == min(3000, 40 * index.nlist) and config["count"] == 3000
    assert config["tuning"]["met"] and config["tuning"]["recall"] >= 0.98
    truth = exact_neighbours(vectors, ids, queries, 10)
    assert recall_at_k(index.search(queries, 10)[1], truth) >= 0.9  # new queries, not the tuning ones
    index.save(tmp_path / "v.idx")
    assert open_vector_index(tmp_path / "v.idx").nprobe == index.nprobe


def test_ivf_uses_fewer_lists_when_the_sample_is_small(data):
    index = new_vector_index(DIM, 10**6, kind="ivf-sq8", training_sample=data[0][:390])
    assert index.nlist == 10  # 39 sample vectors a list at least
    assert "4000 lists wanted" in index.configuration()["nlist_note"]


@pytest.mark.parametrize("kind", ["exact", "ivf-sq8"])
def test_each_vector_finds_itself_and_ids_are_the_callers(data, kind):
    vectors, ids, _ = data
    index = new_vector_index(DIM, len(vectors)) if kind == "exact" else ivf(data)
    if kind == "exact":
        index.add(ids, vectors)
    assert len(index) == 3000 and index.kind == kind
    scores, found = index.search(vectors[:50], 5)
    assert found.shape == (50, 5)
    assert (found[:, 0] == ids[:50]).mean() >= 0.98  # SQ8 can swap a near-duplicate
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    assert sorted(index.ids().tolist()) == ids.tolist()


@pytest.mark.parametrize("kind", ["exact", "ivf-sq8"])
def test_remove_really_removes_and_survives_save(data, kind, tmp_path):
    vectors, ids, _ = data
    index = new_vector_index(DIM, len(vectors)) if kind == "exact" else ivf(data)
    if kind == "exact":
        index.add(ids, vectors)
    gone = ids[100:160]
    index.remove(np.concatenate([gone, [999_999_999]]))  # an id never added is ignored
    assert len(index) == 3000 - 60
    _, found = index.search(vectors[100:160], 10)
    assert not np.isin(found, gone).any()
    index.save(tmp_path / "v.idx")
    again = open_vector_index(tmp_path / "v.idx")
    assert len(again) == 2940 and not np.isin(again.ids(), gone).any()
    _, found = again.search(vectors[100:160], 10)
    assert not np.isin(found, gone).any()
    again.add(gone, vectors[100:160])  # an article re-added after an edit
    assert (again.search(vectors[100:110], 1)[1][:, 0] == gone[:10]).mean() >= 0.9


@pytest.mark.parametrize("kind", ["exact", "ivf-sq8"])
def test_filtered_search_returns_k_hits_from_the_allowed_set_only(data, kind):
    vectors, ids, queries = data
    index = new_vector_index(DIM, len(vectors)) if kind == "exact" else ivf(data)
    if kind == "exact":
        index.add(ids, vectors)
    else:
        index.set_nprobe(1)  # one list: few allowed vectors are in it, so this takes the fallback
    allowed = ids[np.random.default_rng(1).choice(3000, 25, replace=False)]
    scores, found = index.search(queries[:20], 10, allowed=allowed)
    assert (found >= 0).all(), "k hits whenever k allowed passages exist"
    assert np.isin(found, allowed).all()
    # the hits are the best of the allowed ones: exact search over those vectors agrees
    mask = np.isin(ids, allowed)
    truth = exact_neighbours(vectors[mask], ids[mask], queries[:20], 10)
    assert recall_at_k(found, truth) >= 0.95
    few = ids[:3]
    scores, found = index.search(queries[:2], 10, allowed=few)
    assert sorted(found[0][:3].tolist()) == sorted(few.tolist())
    assert (found[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert (index.search(queries[:2], 5, allowed=np.array([], dtype=np.int64))[1] == -1).all()


def test_tune_nprobe_takes_the_smallest_that_meets_the_recall(data):
    vectors, ids, queries = data
    index = ivf(data)
    truth = exact_neighbours(vectors, ids, queries, 10)
    nprobe, recall = tune_nprobe(index, queries, target_recall=0.9, k=10, exact_ids=truth, margin=1.0)
    assert recall >= 0.9
    assert index.nprobe == nprobe
    assert recall_at_k(index.search(queries, 10)[1], truth) == pytest.approx(recall)
    if nprobe > 1:
        below = recall_at_k(index.search_nprobe(queries, 10, nprobe - 1)[1], truth)
        assert below < 0.9
    tuning = index.configuration()["tuning"]
    assert tuning["recall"] == pytest.approx(recall, abs=1e-4) and tuning["met"]
    assert tuning["smallest_meeting"] == nprobe
    # by default the index probes a margin over the smallest, for questions outside the sample
    wider, wider_recall = tune_nprobe(index, queries, target_recall=0.9, k=10, exact_ids=truth)
    assert wider == min(index.nlist, math.ceil(nprobe * NPROBE_MARGIN)) and wider_recall >= recall
    assert index.configuration()["tuning"]["smallest_meeting"] == nprobe
    # against the index itself over every list, full recall is always reachable
    nprobe_self, recall_self = tune_nprobe(index, queries, target_recall=0.98)
    assert recall_self >= 0.98 and nprobe_self <= index.nlist
    assert tune_nprobe(new_vector_index(DIM, 10), queries) == (0, 1.0)


def test_exact_neighbours_in_chunks_matches_one_pass(data):
    vectors, ids, queries = data
    whole = exact_neighbours(vectors, ids, queries, 10, chunk=10**6)
    chunked = exact_neighbours(vectors, ids, queries, 10, chunk=257)
    assert (whole == chunked).all()
    brute = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    assert recall_at_k(whole, brute) == 1.0


def test_save_open_round_trip_keeps_configuration_and_results(data, tmp_path):
    vectors, ids, queries = data
    index = ivf(data)
    tune_nprobe(index, queries, target_recall=0.95)
    path = tmp_path / "v.idx"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["v.idx"]  # no temporary file left
    again = open_vector_index(path)
    assert again.kind == "ivf-sq8" and again.nprobe == index.nprobe
    assert again.configuration() == index.configuration()
    a, b = index.search(queries, 10), again.search(queries, 10)
    assert (a[1] == b[1]).all() and np.allclose(a[0], b[0])
    index.remove(ids[:5])
    index.save(path)  # replaced in place
    assert len(open_vector_index(path)) == 2995


def test_damaged_files_give_one_clear_error(data, tmp_path):
    vectors, ids, _ = data
    index = new_vector_index(DIM, 100)
    index.add(ids[:100], vectors[:100])
    path = tmp_path / "v.idx"
    index.save(path)
    whole = path.read_bytes()

    path.write_bytes(whole[:-100])
    with pytest.raises(VectorIndexError, match=r"damaged \(size .*truncated"):
        open_vector_index(path)
    flipped = bytearray(whole)
    flipped[-50] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(VectorIndexError, match="checksum mismatch"):
        open_vector_index(path)
    assert len(open_vector_index(path, verify=False)) == 100  # the flip hit a vector, not the structure
    path.write_bytes(b"not an index at all")
    with pytest.raises(VectorIndexError, match="is not an article-qa vector index"):
        open_vector_index(path)
    path.write_bytes(MAGIC + b"{broken" + whole[len(MAGIC) + 7:])
    with pytest.raises(VectorIndexError, match="header is unreadable"):
        open_vector_index(path)
    with pytest.raises(VectorIndexError, match="not found"):
        open_vector_index(tmp_path / "missing.idx")
    link = tmp_path / "link.idx"
    link.symlink_to(path)
    with pytest.raises(VectorIndexError, match="cannot read"):
        open_vector_index(link)  # never through a symbolic link


def test_bad_input_is_refused_with_a_reason(data):
    vectors, ids, _ = data
    index = new_vector_index(DIM, 100)
    index.add(ids[:10], vectors[:10])
    with pytest.raises(VectorIndexError, match="already in the index"):
        index.add(ids[5:15], vectors[5:15])
    with pytest.raises(VectorIndexError, match="repeat"):
        index.add(np.array([1, 1]), vectors[:2])
    with pytest.raises(VectorIndexError, match="L2-normalized"):
        index.add(np.array([1]), vectors[:1] * 2)
    with pytest.raises(VectorIndexError, match=r"shape \(n, 16\)"):
        index.add(np.array([1]), np.ones((1, 8), np.float32))
    with pytest.raises(VectorIndexError, match="negative"):
        index.add(np.array([-3]), vectors[:1])
    assert len(index) == 10  # nothing half-added
