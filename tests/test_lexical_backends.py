"""index/lexical_backends.py: BM25 in tantivy over passage ids, with deletes, on real folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from article_qa.index.lexical import BM25
from article_qa.index.lexical_backends import (
    MARKER,
    LexicalIndexError,
    new_lexical_index,
    open_lexical_index,
)

TEXTS = [
    "The peace talks were held in Brussels, Belgium, on Sunday.",
    "Witkoff is the U.S. envoy who joined the talks.",
    "The German chancellor spoke about NATO membership.",
    "Rain fell on Berlin for most of the week.",
    "Brussels hosts the headquarters of NATO.",
]
IDS = np.array([10, 20, 30, 40, 50], dtype=np.int64)


@pytest.fixture
def index(tmp_path):
    made = new_lexical_index(path=tmp_path / "lex")
    made.add(IDS, TEXTS)
    return made


def test_search_uses_the_projects_terms(index):
    scores, ids = index.search("Where were the peace talks held?", 3)
    assert ids[0] == 10  # "talks" and "talk", "peace", "held": the talks passage first
    assert set(ids) <= set(IDS) and np.all(np.diff(scores) <= 0)
    assert index.search("talk", 5)[1].tolist() in ([10, 20], [20, 10])  # plural -s folded, as in BM25
    assert len(index.search("what is the", 5)[1]) == 0  # only stopwords: nothing to match
    assert len(index.search("zeppelin", 5)[1]) == 0


def test_top_hit_agrees_with_the_single_article_bm25(index):
    bm25 = BM25(TEXTS)
    for question in ["Who is the U.S. envoy?", "Where is NATO's headquarters?", "Did it rain in Berlin?",
                     "What did the German chancellor say?"]:
        assert index.search(question, 1)[1][0] == IDS[int(np.argmax(bm25.scores(question)))], question


def test_filtered_search_returns_k_hits_from_the_allowed_set_only(tmp_path):
    index = new_lexical_index(path=tmp_path / "lex")
    ids = np.arange(100, 160, dtype=np.int64)
    index.add(ids, [f"alpha beta {'gamma ' * (i % 7)}" for i in range(60)])
    allowed = ids[::4]  # 15 of them
    scores, found = index.search("gamma alpha", 10, allowed=allowed)
    assert len(found) == 10 and np.isin(found, allowed).all()
    unfiltered = index.search("gamma alpha", 10)[1]
    assert not np.isin(unfiltered, allowed).all()  # the filter changed what came back
    assert len(index.search("gamma", 10, allowed=np.array([101, 102]))[1]) == 2
    assert len(index.search("alpha", 10, allowed=np.array([], dtype=np.int64))[1]) == 0


def test_remove_really_removes_and_saves(index, tmp_path):
    index.remove(np.array([10, 50, 999]))  # 999 was never added: ignored
    assert len(index) == 3
    assert 10 not in index.search("Brussels talks", 5)[1]
    assert index.search("Brussels", 5)[1].size == 0
    index.save()
    again = open_lexical_index(tmp_path / "lex")
    assert len(again) == 3 and sorted(again.ids().tolist()) == [20, 30, 40]
    again.add(np.array([10]), ["The peace talks moved to Geneva."])  # the edited article's passage
    assert again.search("Geneva talks", 1)[1].tolist() == [10]
    with pytest.raises(LexicalIndexError, match="already in the index"):
        again.add(np.array([20]), ["again"])


def test_search_sees_what_was_added_before_save(index):
    index.add(np.array([60]), ["Zeppelins flew over Brussels."])
    assert index.search("zeppelin", 3)[1].tolist() == [60]
    assert len(index) == 6


def test_one_file_snapshots_round_trip_and_clean_up(tmp_path):
    """What a store that checksums whole files does: new index in a temporary folder, save(file),
    open(file), change, save(file) again."""
    import gc

    made = new_lexical_index()
    folder = made.path
    assert made.temporary and folder.is_dir()
    made.add(IDS, TEXTS)
    snapshot = tmp_path / "lexical.bin"
    made.save(snapshot)
    assert snapshot.is_file() and [p.name for p in tmp_path.iterdir()] == ["lexical.bin"]  # no temp left
    del made
    gc.collect()
    assert not folder.exists()  # the temporary folder goes with the index

    opened = open_lexical_index(snapshot)
    assert len(opened) == 5 and opened.search("Witkoff envoy", 1)[1].tolist() == [20]
    opened.remove(np.array([20]))
    opened.add(np.array([21]), ["Witkoff left the talks early."])
    opened.save(snapshot)  # replaced atomically
    again = open_lexical_index(snapshot)
    assert sorted(again.ids().tolist()) == [10, 21, 30, 40, 50]
    assert again.search("Witkoff", 2)[1].tolist() == [21]
    with pytest.raises(LexicalIndexError, match="is a folder"):
        again.save(tmp_path)


def test_damaged_snapshots_give_one_clear_error(index, tmp_path):
    snapshot = tmp_path / "lexical.bin"
    index.save(snapshot)
    whole = snapshot.read_bytes()
    snapshot.write_bytes(whole[:-10])
    with pytest.raises(LexicalIndexError, match="truncated"):
        open_lexical_index(snapshot)
    snapshot.write_bytes(b"PK\x03\x04 some zip file")
    with pytest.raises(LexicalIndexError, match="is not an article-qa lexical index"):
        open_lexical_index(snapshot)
    snapshot.write_bytes(whole[:16] + b"\xff" * 8 + whole[24:])
    with pytest.raises(LexicalIndexError, match="list of files is unreadable"):
        open_lexical_index(snapshot)
    flipped = bytearray(whole)
    start = whole.index(b"meta.json")  # a name in the list that would climb out of its folder
    flipped[start:start + 9] = b"../x.json"
    snapshot.write_bytes(bytes(flipped))
    with pytest.raises(LexicalIndexError, match="list of files is wrong"):
        open_lexical_index(snapshot)
    assert not (tmp_path / "x.json").exists()


def test_damaged_or_foreign_folders_give_one_clear_error(index, tmp_path):
    folder = tmp_path / "lex"
    index.save()
    with pytest.raises(LexicalIndexError, match="not found"):
        open_lexical_index(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    with pytest.raises(LexicalIndexError, match="not an article-qa lexical index"):
        open_lexical_index(tmp_path / "other")
    marker = json.loads((folder / MARKER).read_text())
    (folder / MARKER).write_text(json.dumps({**marker, "tokenizer": "something else/9"}))
    with pytest.raises(LexicalIndexError, match="was tokenised by 'something else/9'"):
        open_lexical_index(folder)
    (folder / MARKER).write_text("{")
    with pytest.raises(LexicalIndexError, match="unreadable"):
        open_lexical_index(folder)
    (folder / MARKER).write_text(json.dumps(marker))
    (folder / "meta.json").write_text("garbage")
    with pytest.raises(LexicalIndexError, match="damaged"):
        open_lexical_index(folder)
    with pytest.raises(LexicalIndexError, match="not an empty folder"):
        new_lexical_index(path=folder)


def test_bad_input_is_refused(index):
    with pytest.raises(LexicalIndexError, match="2 ids for 1 texts"):
        index.add(np.array([1, 2]), ["one"])
    with pytest.raises(LexicalIndexError, match="repeat"):
        index.add(np.array([7, 7]), ["a", "b"])
    with pytest.raises(LexicalIndexError, match="negative"):
        index.remove(np.array([-1]))
    with pytest.raises(LexicalIndexError, match="unknown lexical index kind"):
        new_lexical_index(kind="whoosh")
