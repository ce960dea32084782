"""Tests for a corpus: its sources (folder, glob, JSON Lines, several files) with stable ids and
bad input said by name, and its store (SQLite + search indexes), updated article by article,
atomically, with offsets that slice each article.

All tests use the fake embedder (tests/helpers_index.py): no model, no torch.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers_index import FakeEmbedder, fake_vectors
from article_qa.index.article import ArticleError
from article_qa.index.corpus_sources import CorpusError, is_corpus, list_corpus, read_entry
from article_qa.index.corpus_store import DATABASE, CORPUS_FILES, open_corpus
from article_qa.index.exact_backends import ExactLexicalIndex, ExactVectorIndex
from article_qa.index.passages import Chunking

CHUNKING = Chunking(max_tokens=60, min_tokens=3)

ALPHA = "Alpha Report\n\nThe alpha lamp was electrified in 1901 by the town council.\n\nIt still burns every night.\n"
BETA = "# Beta News\n\nThe beta bridge opened in March after ten years of work.\n\nShared boilerplate paragraph about subscriptions.\n"
GAMMA = "<html><head><title>Gamma &amp; Co</title></head><body><p>The gamma mill grinds wheat.</p>" \
        "<p>Shared boilerplate paragraph about subscriptions.</p></body></html>"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    (folder / "sub").mkdir(parents=True)
    (folder / "alpha.txt").write_text(ALPHA)
    (folder / "sub" / "beta.md").write_text(BETA)
    (folder / "gamma.html").write_text(GAMMA)
    (folder / "notes.csv").write_text("not an article")
    (folder / ".hidden.txt").write_text("hidden")
    return folder


def _open(listing, tmp_path, embedder=None, **kw):
    return open_corpus(listing, embedder or FakeEmbedder(), CHUNKING, tmp_path / "cache", **kw)


def test_a_folder_lists_its_articles_by_relative_path_and_reads_titles(tmp_path):
    folder = _folder(tmp_path)
    assert is_corpus([str(folder)]) and not is_corpus([str(folder / "alpha.txt")])
    listing = list_corpus([str(folder)])
    assert [e.id for e in listing.entries] == ["alpha.txt", "gamma.html", "sub/beta.md"]
    titles = {e.id: read_entry(e).ref().title for e in listing.entries}
    assert titles == {"alpha.txt": "Alpha Report", "gamma.html": "Gamma & Co", "sub/beta.md": "Beta News"}
    assert read_entry(listing.entries[2]).ref().source == os.path.join(str(folder), "sub", "beta.md")


def test_jsonl_glob_and_several_files(tmp_path):
    folder = _folder(tmp_path)
    lines = tmp_path / "corpus.jsonl"
    lines.write_text(json.dumps({"id": "a1", "title": "Inline", "text": "Inline text about owls."}) + "\n\n"
                     + json.dumps({"id": 7, "path": "news/alpha.txt"}) + "\n")
    listing = list_corpus([str(lines)])
    assert [(e.id, e.title) for e in listing.entries] == [("a1", "Inline"), ("7", None)]
    assert read_entry(listing.entries[1]).text == ALPHA
    assert [e.id for e in list_corpus([str(folder / "**" / "*.md")]).entries] == ["sub/beta.md"]
    several = list_corpus([str(folder / "alpha.txt"), str(folder / "sub" / "beta.md")])
    assert [e.id for e in several.entries] == ["alpha.txt", "beta.md"]


def test_bad_corpus_input_is_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match=r"empty holds no articles"):
        list_corpus([str(empty)])
    lines = tmp_path / "dup.jsonl"
    lines.write_text('{"id": "x", "text": "one"}\n{"id": "y", "text": "two"}\n{"id": "x", "text": "three"}\n')
    with pytest.raises(CorpusError, match="line 3 has the id 'x' of line 1"):
        list_corpus([str(lines)])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("one")
    (tmp_path / "b" / "same.txt").write_text("two")
    with pytest.raises(CorpusError, match="two articles have the id 'same.txt'"):
        list_corpus([str(tmp_path / "a" / "same.txt"), str(tmp_path / "b" / "same.txt")])
    with pytest.raises(CorpusError, match="matches no files"):
        list_corpus([str(tmp_path / "*.nothing")])
    with pytest.raises(ArticleError, match="article not found"):
        list_corpus([str(tmp_path / "missing.txt"), str(tmp_path / "a")])


def test_offsets_slice_each_article_and_passages_name_it(tmp_path):
    folder = _folder(tmp_path)
    index = _open(list_corpus([str(folder)]), tmp_path)
    assert index.status.action == "built"
    assert index.status.changes.counts()["added"] == 3
    assert len(index) == 3
    vectors = fake_vectors(["When was the alpha lamp electrified?"])
    hits = index.search(vectors, ["When was the alpha lamp electrified?"], 3, 0.5, [None])[0]
    assert hits[0].passage.article.id == "alpha.txt"
    for hit in hits:
        text = index.text_of(hit.passage.article.id)
        assert text[hit.passage.start:hit.passage.end] == hit.passage.text
    # The boilerplate paragraph shared by beta and gamma is read once.
    shared = index.search(fake_vectors(["boilerplate subscriptions"]), ["boilerplate subscriptions"], 5, 0.5, [None])[0]
    assert sum("boilerplate" in h.passage.text for h in shared) == 1


def test_within_filters_before_the_search(tmp_path):
    folder = _folder(tmp_path)
    index = _open(list_corpus([str(folder)]), tmp_path)
    question = "When was the alpha lamp electrified?"
    hits = index.search(fake_vectors([question]), [question], 2, 0.5, ["sub/beta.md"])[0]
    assert len(hits) == 2  # never too few: both of beta's passages, though alpha matches better
    assert {h.passage.article.id for h in hits} == {"sub/beta.md"}
    assert index.resolve(os.path.join(str(folder), "sub", "beta.md")) == "sub/beta.md"
    with pytest.raises(KeyError, match="no article 'nope' in the corpus"):
        index.resolve("nope")


def _in_use(index) -> set[str]:
    """The data files the index's committed entry names: its vector rows and its lexical folder."""
    return index.vectors.files() | {_config_files(index)["lexical"]["name"]}


def _config_files(index) -> dict:
    import json

    with sqlite3.connect(index.status.path / DATABASE) as db:
        return json.loads(db.execute("SELECT value FROM config WHERE key = 'files'").fetchone()[0])


def test_an_update_embeds_only_what_changed_and_counts_it(tmp_path):
    folder = _folder(tmp_path)
    embedder = FakeEmbedder()
    first = _open(list_corpus([str(folder)]), tmp_path, embedder)
    rows_before = first.vectors.entry["rows_file"]
    first.close()
    texts_before = embedder.encoded_texts
    again = _open(list_corpus([str(folder)]), tmp_path, embedder)
    assert again.status.action == "reused" and embedder.encoded_texts == texts_before
    again.close()
    (folder / "alpha.txt").write_text(ALPHA.replace("1901", "1902") + "\nA new closing line here.\n")
    (folder / "gamma.html").unlink()
    (folder / "delta.txt").write_text("Delta Story\n\nThe delta port handles grain ships.\n")
    os.utime(folder / "sub" / "beta.md", ns=(1, 1))  # touched, same content: unchanged
    encoded = []
    embedder.on_encode = encoded.extend
    updated = _open(list_corpus([str(folder)]), tmp_path, embedder)
    counts = updated.status.changes.counts()
    assert (counts["added"], counts["changed"], counts["removed"], counts["unchanged"]) == (1, 1, 1, 1)
    assert updated.status.action == "updated"
    assert all("beta" not in t for t in encoded) and any("1902" in t for t in encoded)
    assert sorted(updated.refs) == ["alpha.txt", "delta.txt", "sub/beta.md"]
    n_passages = updated.passage_count
    assert len(updated.vectors) == n_passages == len(updated.lexical)
    hits = updated.search(fake_vectors(["gamma mill wheat"]), ["gamma mill wheat"], 3, 0.5, [None])[0]
    assert all(h.passage.article.id != "gamma.html" for h in hits)
    files = {p.name for p in (updated.status.path).iterdir() if CORPUS_FILES.fullmatch(p.name)}
    assert files == _in_use(updated)  # the old generation's lexical folder is gone
    # the vectors were appended to the rows file in use (nothing rewritten), the dead rows listed
    assert updated.vectors.entry["rows_file"] == rows_before and updated.vectors.entry["dead"]


def _passage_rows(index) -> list[tuple]:
    return [(index.text_of(p.article.id)[p.start:p.end], p.article.id, p.start, p.end)
            for p in index.passages(sorted(index.vectors.ids().tolist()))]


def test_a_build_streamed_in_batches_is_the_build_in_one(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    (folder / "delta.txt").write_text("Delta Story\n\nThe delta port handles grain ships.\n")
    whole = open_corpus(list_corpus([str(folder)]), FakeEmbedder(), CHUNKING, tmp_path / "whole")
    monkeypatch.setattr("article_qa.index.corpus_store.BATCH_CHARACTERS", 1)  # an article per batch
    embedder = FakeEmbedder()
    streamed = open_corpus(list_corpus([str(folder)]), embedder, CHUNKING, tmp_path / "streamed")
    assert embedder.encode_calls == 4  # one batch per article, each embedded on its own
    assert _passage_rows(streamed) == _passage_rows(whole)
    question = "When did the beta bridge open?"
    found = [[(h.passage.article.id, h.passage.start) for h in index.search(fake_vectors([question]), [question], 3,
                                                                           0.5, [None])[0]]
             for index in (whole, streamed)]
    assert found[0] == found[1] and found[0][0][0] == "sub/beta.md"
    # an update in batches: two changed, one added, one removed; the unchanged passages keep their vectors
    (folder / "alpha.txt").write_text(ALPHA + "\nA closing line.\n")
    (folder / "delta.txt").write_text("Delta Story\n\nThe delta port handles grain and coal ships.\n")
    (folder / "epsilon.txt").write_text("Epsilon\n\nThe epsilon choir sings on Fridays.\n")
    (folder / "gamma.html").unlink()
    encoded = []
    embedder.on_encode = encoded.extend
    streamed.close()
    updated = open_corpus(list_corpus([str(folder)]), embedder, CHUNKING, tmp_path / "streamed")
    counts = updated.status.changes.counts()
    assert (counts["added"], counts["changed"], counts["removed"], counts["unchanged"]) == (1, 2, 1, 1)
    assert not any("It still burns every night" in t for t in encoded)  # alpha's unchanged paragraph
    assert len(updated.vectors) == updated.passage_count == len(updated.lexical)
    for text, article_id, start, end in _passage_rows(updated):
        assert updated.text_of(article_id)[start:end] == text
    assert "gamma.html" not in updated.refs


def test_an_update_failing_in_a_later_batch_leaves_the_old_index_and_no_files(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    _open(list_corpus([str(folder)]), tmp_path).close()
    (folder / "delta.txt").write_text("Delta Story\n\nThe delta port handles grain ships.\n")
    (folder / "epsilon.txt").write_text("Epsilon\n\nThe epsilon choir sings on Fridays.\n")
    monkeypatch.setattr("article_qa.index.corpus_store.BATCH_CHARACTERS", 1)
    calls = []

    def fail_on_the_second_batch(texts):
        calls.append(texts)
        if len(calls) == 2:
            raise RuntimeError("embedding failed")

    with pytest.raises(RuntimeError, match="embedding failed"):
        _open(list_corpus([str(folder)]), tmp_path, FakeEmbedder(on_encode=fail_on_the_second_batch))
    embedder = FakeEmbedder()
    index = _open(list_corpus([str(folder)]), tmp_path, embedder)
    # The first batch's rows were never committed: both new articles are embedded again now.
    assert index.status.changes.counts()["added"] == 2 and index.status.changes.counts()["unchanged"] == 3
    assert embedder.encoded_texts == len(index.passage_ids("delta.txt")) + len(index.passage_ids("epsilon.txt"))
    files = {p.name for p in index.status.path.iterdir() if CORPUS_FILES.fullmatch(p.name)}
    assert files == _in_use(index)
    assert len(index.vectors) == index.passage_count == len(index.lexical)


def test_an_unreadable_file_is_skipped_by_name_and_the_others_indexed(tmp_path):
    folder = _folder(tmp_path)
    (folder / "broken.txt").write_bytes(b"caf\xe9 au lait")
    index = _open(list_corpus([str(folder)]), tmp_path)
    skipped = index.status.changes.skipped
    assert len(skipped) == 1 and "broken.txt" in skipped[0].reason and "not valid UTF-8" in skipped[0].reason
    assert "broken.txt" not in index.refs and len(index) == 3


def test_a_writer_killed_before_its_commit_leaves_the_old_index(tmp_path):
    folder = _folder(tmp_path)
    _open(list_corpus([str(folder)]), tmp_path).close()
    (folder / "delta.txt").write_text("Delta Story\n\nThe delta port handles grain ships.\n")
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from helpers_index import FakeEmbedder\n"
        "from article_qa.index.corpus_sources import list_corpus\n"
        "from article_qa.index.corpus_store import open_corpus\n"
        "from article_qa.index.passages import Chunking\n"
        "from pathlib import Path\n"
        "open_corpus(list_corpus([%r]), FakeEmbedder(), Chunking(max_tokens=60, min_tokens=3), Path(%r))\n"
    ) % (str(Path(__file__).parent), str(folder), str(tmp_path / "cache"))
    env = dict(os.environ, ARTICLE_QA_TEST_PAUSE="corpus-before-commit")
    process = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "PAUSED corpus-before-commit"
    finally:
        process.kill()
        process.wait()
    embedder = FakeEmbedder()
    index = _open(list_corpus([str(folder)]), tmp_path, embedder)
    # The old index was intact: only delta is embedded now, and the killed writer's files are gone.
    assert index.status.changes.counts()["added"] == 1 and index.status.changes.counts()["unchanged"] == 3
    assert embedder.encoded_texts == len(index.passage_ids("delta.txt"))
    with sqlite3.connect(index.status.path / DATABASE) as db:
        assert db.execute("SELECT count(*) FROM articles").fetchone()[0] == 4
    files = {p.name for p in index.status.path.iterdir() if CORPUS_FILES.fullmatch(p.name)}
    assert files == _in_use(index)


def test_a_damaged_search_file_is_noticed_and_rebuilt(tmp_path):
    folder = _folder(tmp_path)
    first = _open(list_corpus([str(folder)]), tmp_path)
    path = first.status.path
    first.close()
    vectors = next(p for p in path.iterdir() if p.name.startswith("vectors-"))
    vectors.write_bytes(vectors.read_bytes()[:-10] + b"0123456789")
    again = _open(list_corpus([str(folder)]), tmp_path)
    assert again.status.action == "rebuilt" and "damaged" in again.status.reason
    assert len(again) == 3 and len(again.vectors) == again.passage_count


def test_exact_backends_remove_and_search_within():
    vectors = ExactVectorIndex(16)
    texts = ["red apples grow", "green pears fall", "red cars race"]
    vectors.add(np.array([10, 11, 12]), fake_vectors(texts))
    scores, ids = vectors.search(fake_vectors(["red apples"]), 2)
    assert ids[0][0] == 10
    scores, ids = vectors.search(fake_vectors(["red apples"]), 2, allowed=np.array([11]))
    assert ids[0].tolist() == [11, -1]
    vectors.remove(np.array([10]))
    assert len(vectors) == 2 and 10 not in vectors.search(fake_vectors(["red apples"]), 3)[1][0]
    lexical = ExactLexicalIndex()
    lexical.add(np.array([10, 11, 12]), texts)
    assert lexical.search("red", 3)[1][:2].tolist() in ([10, 12], [12, 10])
    assert lexical.search("red", 3, allowed=np.array([12]))[1].tolist() == [12, -1, -1]
    lexical.remove(np.array([12]))
    assert lexical.search("red", 3)[1].tolist() == [10, -1, -1]


def test_a_jsonl_corpus_updates_by_content_and_title(tmp_path):
    lines = tmp_path / "corpus.jsonl"

    def write(*articles):
        lines.write_text("".join(json.dumps(a) + "\n" for a in articles))

    write({"id": "a", "title": "Owls", "text": "Owls hunt at night in the old forest."},
          {"id": "b", "text": "Bees make honey from the nectar of flowers."})
    embedder = FakeEmbedder()
    _open(list_corpus([str(lines)]), tmp_path, embedder).close()
    write({"id": "a", "title": "Night Owls", "text": "Owls hunt at night in the old forest."},
          {"id": "b", "text": "Bees make honey from the nectar of clover."})
    embedder.encoded_texts = 0
    index = _open(list_corpus([str(lines)]), tmp_path, embedder)
    counts = index.status.changes.counts()
    assert (counts["changed"], counts["unchanged"]) == (1, 1)
    assert embedder.encoded_texts == len(index.passage_ids("b"))  # only b is embedded again
    assert index.refs["a"].title == "Night Owls" and index.refs["b"].title.startswith("Bees make honey")
    assert index.text_of("b").endswith("clover.")


def test_cache_clear_removes_a_corpus_index_and_a_shared_cache_keeps_it_in_memory(tmp_path):
    import warnings

    from article_qa.index.cache import clear_cache
    from article_qa.index.store import IndexWarning

    folder = _folder(tmp_path)
    index = _open(list_corpus([str(folder)]), tmp_path)
    path = index.status.path
    index.close()
    assert path.is_dir() and (path / DATABASE).stat().st_mode & 0o077 == 0  # the database is private
    clear_cache(tmp_path / "cache")
    assert not path.exists()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = open_corpus(list_corpus([str(folder)]), FakeEmbedder(), CHUNKING, shared)
    assert kept.status.action == "in-memory" and any(issubclass(w.category, IndexWarning) for w in caught)
    hits = kept.search(fake_vectors(["alpha lamp"]), ["alpha lamp"], 2, 0.5, [None])[0]
    assert hits[0].passage.article.id == "alpha.txt" and not any(shared.iterdir())


def test_two_writers_take_turns_one_builds_the_other_reuses(tmp_path):
    folder = _folder(tmp_path)
    script = (
        "import sys, json; sys.path.insert(0, %r)\n"
        "from helpers_index import FakeEmbedder\n"
        "from article_qa.index.corpus_sources import list_corpus\n"
        "from article_qa.index.corpus_store import open_corpus\n"
        "from article_qa.index.passages import Chunking\n"
        "from pathlib import Path\n"
        "import time\n"
        "embedder = FakeEmbedder(on_encode=lambda texts: time.sleep(1.0))\n"
        "index = open_corpus(list_corpus([%r]), embedder, Chunking(max_tokens=60, min_tokens=3), Path(%r))\n"
        "print(json.dumps([index.status.action, embedder.encoded_texts, len(index)]))\n"
    ) % (str(Path(__file__).parent), str(folder), str(tmp_path / "cache"))
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted(json.loads(p.communicate(timeout=120)[0]) for p in processes)
    assert [r[0] for r in results] == ["built", "reused"]
    assert results[1][1] == 0 and results[0][2] == results[1][2] == 3  # the one that waited embedded nothing


def test_opening_reads_the_articles_list_from_its_covering_index(tmp_path):
    index = _open(list_corpus([str(_folder(tmp_path))]), tmp_path)
    for query in ("SELECT id, sha256, stamp, title FROM articles", "SELECT id, title, source FROM articles "
                  "ORDER BY position, id"):
        plan = " ".join(str(row[-1]) for row in index.db.execute("EXPLAIN QUERY PLAN " + query))
        assert "COVERING INDEX articles_listed" in plan  # never a page of each article's text
