"""Tests for index/vector_store.py: float16 rows appended, never rewritten; exact search and IVF+SQ8
re-ranked from the rows; removals, commits, compaction and damage checks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from article_qa.index.vector_backends import VectorIndexError, exact_neighbours, recall_at_k
from article_qa.index.vector_store import StoredVectors
from helpers_vectors import clustered

DIM = 32


@pytest.fixture(scope="module")
def data():
    """Clustered vectors (as embeddings are: topics) and questions near some of them."""
    return clustered(seed=3, count=6000, clusters=60, dim=DIM, questions=80)


def _built(folder, vectors, kind, ids=None):
    store = StoredVectors.create(folder, DIM, len(vectors), kind)
    ids = np.arange(len(vectors), dtype=np.int64) * 2 + 7 if ids is None else ids
    store.add(ids[: len(ids) // 2], vectors[: len(ids) // 2])
    store.add(ids[len(ids) // 2:], vectors[len(ids) // 2:])
    return store, store.commit(), ids


@pytest.mark.parametrize("kind", ["exact", "ivf-sq8"])
def test_search_finds_each_vector_and_reopens_the_same(data, kind, tmp_path):
    vectors, queries = data
    store, entry, ids = _built(tmp_path, vectors, kind)
    scores, found = store.search(vectors[:20], 1)
    assert np.array_equal(found[:, 0], ids[:20]) and np.allclose(scores[:, 0], 1, atol=2e-3)
    truth = exact_neighbours(vectors, ids, queries, 10)
    recall = recall_at_k(store.search(queries, 10)[1], truth)
    assert recall >= (0.999 if kind == "exact" else 0.95)
    again = StoredVectors.open(tmp_path, entry, verify=True)
    assert len(again) == len(vectors)
    assert np.array_equal(again.search(queries, 10)[1], store.search(queries, 10)[1])
    assert again.configuration()["kind"] == kind


def test_ivf_nprobe_is_tuned_on_the_reranked_result(data, tmp_path):
    vectors, _ = data
    store, entry, _ = _built(tmp_path, vectors, "ivf-sq8")
    tuning = entry["config"]["tuning"]
    assert tuning["met"] and tuning["reranked"] == entry["config"]["candidates"] == 100
    assert 1 <= entry["config"]["nprobe"] < store.nlist  # a few lists, not all of them
    assert entry["snapshot"]["rows"] == len(vectors)


@pytest.mark.parametrize("kind", ["exact", "ivf-sq8"])
def test_an_update_appends_rows_and_rewrites_nothing(data, kind, tmp_path):
    vectors, queries = data
    store, entry, ids = _built(tmp_path, vectors, kind)
    rows_file = tmp_path / (entry["rows_file"] + ".f16")
    size, inode = rows_file.stat().st_size, rows_file.stat().st_ino
    snapshot = entry.get("snapshot")
    store.remove(ids[:50])
    new_ids = np.arange(50, dtype=np.int64) + 100_000
    store.add(new_ids, vectors[:50])
    updated = store.commit()
    assert rows_file.stat().st_ino == inode and rows_file.stat().st_size == size + 50 * DIM * 2
    assert updated["rows_file"] == entry["rows_file"] and len(updated["dead"]) == 50
    if snapshot:  # 50 rows past the snapshot are searched exactly: no new snapshot yet
        assert updated["snapshot"]["file"] == snapshot["file"]
    reopened = StoredVectors.open(tmp_path, updated)
    _, found = reopened.search(vectors[:50], 3)
    assert np.array_equal(found[:, 0], new_ids) and not np.isin(found, ids[:50]).any()
    assert len(reopened) == len(vectors)
    old = StoredVectors.open(tmp_path, entry)  # a reader of the old entry still sees the old index
    assert np.array_equal(old.search(vectors[:5], 1)[1][:, 0], ids[:5])


def test_rows_a_killed_writer_left_are_ignored_then_cut(data, tmp_path):
    vectors, _ = data
    store, entry, _ = _built(tmp_path, vectors[:500], "exact")
    writer = StoredVectors.open(tmp_path, entry)
    writer.add(np.array([10**6, 10**6 + 1]), vectors[600:602])  # never committed
    del writer
    reader = StoredVectors.open(tmp_path, entry)  # the file grew: its committed part is checked
    assert len(reader) == 500 and not np.isin([10**6, 10**6 + 1], reader.ids()).any()
    reader.add(np.array([5 * 10**6]), vectors[700:701])
    after = reader.commit()
    assert after["rows"] == 501
    assert (tmp_path / (after["rows_file"] + ".f16")).stat().st_size == 501 * DIM * 2
    assert StoredVectors.open(tmp_path, after, verify=True).search(vectors[700:701], 1)[1][0, 0] == 5 * 10**6


def test_filtered_search_and_scores_come_from_the_rows(data, tmp_path):
    vectors, queries = data
    for kind in ("exact", "ivf-sq8"):
        folder = tmp_path / kind
        folder.mkdir()
        store, _, ids = _built(folder, vectors, kind)
        allowed = ids[100:130]
        scores, found = store.search(queries[:3], 10, allowed=allowed)
        assert (found >= 0).all() and np.isin(found, allowed).all()  # 10 hits: the filter came first
        best = np.argsort(-(vectors[100:130] @ queries[0]))[:10]
        assert set(found[0]) == set(allowed[best])
        exact = store.scores(queries[0], ids[100:103])
        assert np.allclose(exact, vectors[100:103] @ queries[0], atol=2e-3)
        assert store.scores(queries[0], np.array([1]))[0] == -np.inf  # an id not held


def test_many_removals_compact_the_rows_into_a_new_file(data, tmp_path):
    vectors, queries = data
    store, entry, ids = _built(tmp_path, vectors[:4000], "ivf-sq8")
    store.remove(ids[:1500])
    compacted = store.commit()
    assert compacted["rows_file"] != entry["rows_file"] and compacted["rows"] == 2500 and compacted["dead"] == []
    assert compacted["snapshot"]["file"] != entry["snapshot"]["file"]
    reopened = StoredVectors.open(tmp_path, compacted)
    truth = exact_neighbours(vectors[1500:4000], ids[1500:4000], queries, 10)
    assert recall_at_k(reopened.search(queries, 10)[1], truth) >= 0.95


def test_a_damaged_or_missing_file_is_one_clear_error(data, tmp_path):
    vectors, _ = data
    _, entry, _ = _built(tmp_path, vectors[:3000], "ivf-sq8")
    rows = tmp_path / (entry["rows_file"] + ".f16")
    whole = bytearray(rows.read_bytes())
    whole[1000] ^= 0x40
    rows.write_bytes(bytes(whole))  # same size, new stamp: the checksums are checked
    with pytest.raises(VectorIndexError, match="damaged .*checksum mismatch"):
        StoredVectors.open(tmp_path, entry)
    rows.write_bytes(bytes(whole[:-10]))
    with pytest.raises(VectorIndexError, match="truncated"):
        StoredVectors.open(tmp_path, entry)
    os.unlink(tmp_path / entry["snapshot"]["file"])
    with pytest.raises(VectorIndexError, match="missing"):
        StoredVectors.open(tmp_path, dict(entry, rows=0, blocks=[]))
    with pytest.raises(VectorIndexError, match="format"):
        StoredVectors.open(tmp_path, {"format": 1, "kind": "exact"})


def test_bad_input_is_refused(data, tmp_path):
    vectors, _ = data
    store = StoredVectors.create(tmp_path, DIM, 10, "exact")
    with pytest.raises(VectorIndexError, match="L2-normalized"):
        store.add(np.array([1]), np.ones((1, DIM), np.float32))
    store.add(np.array([1]), vectors[:1])
    with pytest.raises(VectorIndexError, match="already in the index"):
        store.add(np.array([1]), vectors[1:2])
    with pytest.raises(VectorIndexError, match="unknown vector index kind"):
        StoredVectors.create(tmp_path, DIM, 10, "hnsw")


def test_rows_read_one_by_one_or_through_the_map_are_the_same(data, tmp_path, monkeypatch):
    vectors, _ = data
    store, _, ids = _built(tmp_path, vectors, "ivf-sq8")
    picked = ids[[5, 4000, 17, 2999, 3000]]  # out of file order
    by_pread = store.vectors_of(picked)
    monkeypatch.setattr("article_qa.index.vector_store.PREAD_ROWS_MAX", 0)
    assert np.array_equal(by_pread, store.vectors_of(picked))
    assert np.allclose(by_pread, vectors[[5, 4000, 17, 2999, 3000]], atol=2e-3)


def test_a_build_of_unknown_size_settles_its_kind_at_the_first_commit(data, tmp_path):
    vectors, _ = data
    store = StoredVectors.create(tmp_path, DIM, None, exact_max=5000)
    store.add(np.arange(len(vectors), dtype=np.int64), vectors)
    entry = store.commit()
    assert entry["kind"] == "ivf-sq8" and "6,000 passages" in store.configuration()["chosen_by"]
    (tmp_path / "small").mkdir()
    small = StoredVectors.create(tmp_path / "small", DIM, None)
    small.add(np.arange(100, dtype=np.int64), vectors[:100])
    assert small.commit()["kind"] == "exact" and np.array_equal(small.search(vectors[:3], 1)[1][:, 0], [0, 1, 2])
