"""Tests for index.store: the saved index is reused until something changes, rebuilt with a reason,
kept in memory when it cannot be saved, and never left half-written by a crash or a race.

All tests use a fake embedder (tests/helpers_index.py): no model, no torch.
"""

from __future__ import annotations

import errno
import json
import os
import select
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import article_qa.index.store as store
from helpers_index import FakeEmbedder, fake_vectors
from article_qa.index.article import article_from_text, load_article
from article_qa.index.cache_layout import ENV_INDEX_DIR, SIDECAR, default_root
from article_qa.index.passages import Chunking, split_passages
from article_qa.index.private_files import MARKER
from article_qa.index.store import IndexWarning, index_key, open_index

HELPER = Path(__file__).with_name("helpers_index.py")
A = Chunking(max_tokens=200)
B = Chunking(max_tokens=40)


@pytest.fixture(autouse=True)
def _short_lock_timeout(monkeypatch):
    # A lock that is never released should fail a test in seconds, not hang it for ten minutes.
    monkeypatch.setattr(store, "LOCK_TIMEOUT_S", 20)


@pytest.fixture()
def article_path(tmp_path) -> Path:
    path = tmp_path / "article.txt"
    path.write_bytes(load_article(None).text.encode("utf-8"))
    return path


@pytest.fixture()
def article(article_path):
    return load_article(article_path)


@pytest.fixture()
def index_dir(tmp_path) -> Path:
    return tmp_path / "cache" / "indexes"


def folder_of(index_dir: Path, article, embedder=None) -> Path:
    return index_dir / index_key(article, embedder or FakeEmbedder())


def dense_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("dense-*.faiss"))


def tmp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith(".tmp"))


def sidecar(folder: Path) -> dict:
    return json.loads((folder / SIDECAR).read_text(encoding="utf-8"))


def assert_valid(idx, article, chunking: Chunking, embedder_max_tokens: int = 256) -> None:
    """The index holds exactly the passages a fresh split gives, and exactly their vectors."""
    limit = min(chunking.max_tokens, embedder_max_tokens - 2)
    effective = Chunking(limit, chunking.min_tokens, chunking.overlap_sentences)
    expected = split_passages(article.text, FakeEmbedder().token_spans, effective)
    assert idx.passages == expected
    for p in idx.passages:
        assert article.text[p.start : p.end] == p.text
    assert idx.vectors.ntotal == len(expected)
    stored = idx.vectors.reconstruct_n(0, idx.vectors.ntotal)
    np.testing.assert_allclose(stored, fake_vectors([p.text for p in expected]), atol=1e-6)
    assert idx.lexical.n_docs == len(expected)
    # A passage's own vector finds it first.
    _, found = idx.vectors.search(fake_vectors([expected[-1].text]), 1)
    assert idx.passages[int(found[0, 0])].text == expected[-1].text


def lexical_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("lexical-*.bin"))


def assert_clean(folder: Path) -> None:
    """After a successful save: one vectors file and one lexical file, those the sidecar names, and
    no temp files."""
    assert [f.name for f in dense_files(folder)] == [sidecar(folder)["files"]["dense"]["name"]]
    assert [f.name for f in lexical_files(folder)] == [sidecar(folder)["files"]["lexical"]["name"]]
    assert tmp_files(folder) == []


def open_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", IndexWarning)
        return open_index(*args, **kwargs)


# -- build, reuse, rebuild -------------------------------------------------------------------------


def test_first_open_builds_second_reuses(article, index_dir):
    fake = FakeEmbedder()
    first = open_quietly(article, fake, A, index_dir)
    folder = folder_of(index_dir, article)
    assert first.status.action == "built"
    assert first.status.reason is None
    assert first.status.path == folder
    assert fake.encode_calls == 1 and fake.export_calls == 1
    assert_valid(first, article, A)
    assert_clean(folder)
    meta = sidecar(folder)
    assert meta["version"] == store.VERSION and meta["dim"] == 16
    assert meta["passages"] == [[p.start, p.end] for p in first.passages]

    again = FakeEmbedder()
    second = open_quietly(article, again, A, index_dir)
    assert second.status.action == "reused"
    assert second.status.reason is None and second.status.path == folder
    assert again.encode_calls == 0, "a reused index must not encode anything"
    assert_valid(second, article, A)


def test_changed_article_gets_its_own_index(article, index_dir):
    open_quietly(article, FakeEmbedder(), A, index_dir)
    changed = article_from_text(article.text + "\nOne more line about the talks.")
    fake = FakeEmbedder()
    idx = open_quietly(changed, fake, A, index_dir)
    assert idx.status.action == "built"
    assert index_key(changed, fake) != index_key(article, fake)
    assert idx.status.path == folder_of(index_dir, changed) != folder_of(index_dir, article)
    assert fake.encode_calls == 1
    assert_valid(idx, changed, A)
    # The first article's index is untouched and still reused.
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "reused"


def test_changed_chunking_rebuilds_and_removes_old_vectors(article, index_dir):
    open_quietly(article, FakeEmbedder(), A, index_dir)
    folder = folder_of(index_dir, article)
    old = dense_files(folder)
    fake = FakeEmbedder()
    idx = open_quietly(article, fake, B, index_dir)
    assert idx.status.action == "rebuilt"
    assert "chunking" in idx.status.reason
    assert fake.encode_calls == 1
    assert_valid(idx, article, B)
    assert_clean(folder)
    assert dense_files(folder) != old and not any(f.exists() for f in old)
    assert open_quietly(article, FakeEmbedder(), B, index_dir).status.action == "reused"
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "rebuilt"


def test_changed_model_weights_rebuild(article, index_dir):
    open_quietly(article, FakeEmbedder(), A, index_dir)
    fake = FakeEmbedder(sha256="0" * 64)
    idx = open_quietly(article, fake, A, index_dir)
    assert idx.status.path == folder_of(index_dir, article)  # same model name: same folder
    assert idx.status.action == "rebuilt"
    assert "model" in idx.status.reason
    assert fake.encode_calls == 1
    assert_clean(folder_of(index_dir, article))


def test_other_model_name_gets_its_own_index(article, index_dir):
    open_quietly(article, FakeEmbedder(), A, index_dir)
    other = FakeEmbedder(name="other-model")
    idx = open_quietly(article, other, A, index_dir)
    assert idx.status.action == "built"
    assert idx.status.path != folder_of(index_dir, article)


def test_rebuild_requested(article, index_dir):
    open_quietly(article, FakeEmbedder(), A, index_dir)
    fake = FakeEmbedder()
    idx = open_quietly(article, fake, A, index_dir, rebuild=True)
    assert idx.status.action == "rebuilt"
    assert "rebuild" in idx.status.reason
    assert fake.encode_calls == 1
    assert_valid(idx, article, A)
    assert_clean(folder_of(index_dir, article))


def test_small_model_window_limits_passages(article, index_dir):
    fake = FakeEmbedder(max_tokens=34)
    idx = open_quietly(article, fake, A, index_dir)
    assert max(len(fake.token_spans(p.text)) for p in idx.passages) <= 32
    assert_valid(idx, article, A, embedder_max_tokens=34)


def test_progress_is_reported(article, index_dir):
    calls = []
    open_quietly(article, FakeEmbedder(), A, index_dir, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]


# -- damaged or foreign saved files ----------------------------------------------------------------


def _built(article, index_dir) -> Path:
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "built"
    return folder_of(index_dir, article)


def _expect_rebuilt(article, index_dir, reason_part: str):
    fake = FakeEmbedder()
    idx = open_quietly(article, fake, A, index_dir)
    assert idx.status.action == "rebuilt", idx.status
    assert reason_part in idx.status.reason
    assert fake.encode_calls == 1
    assert_valid(idx, article, A)
    assert_clean(idx.status.path)
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "reused"
    return idx


@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_flipped_bytes_in_vectors_rebuild(article, index_dir, where):
    folder = _built(article, index_dir)
    (path,) = dense_files(folder)
    data = bytearray(path.read_bytes())
    at = int(len(data) * where) if where != -1 else len(data) - 1
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    _expect_rebuilt(article, index_dir, "damaged")


@pytest.mark.parametrize("keep", [0, 10, 0.5])
def test_truncated_vectors_rebuild(article, index_dir, keep):
    folder = _built(article, index_dir)
    (path,) = dense_files(folder)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    _expect_rebuilt(article, index_dir, "damaged")


def test_missing_vectors_rebuild(article, index_dir):
    folder = _built(article, index_dir)
    dense_files(folder)[0].unlink()
    _expect_rebuilt(article, index_dir, "incomplete")


def test_sidecar_from_another_version_rebuilds(article, index_dir):
    folder = _built(article, index_dir)
    meta = sidecar(folder)
    meta["version"] = store.VERSION + 1
    (folder / SIDECAR).write_text(json.dumps(meta))
    _expect_rebuilt(article, index_dir, "another version")


def test_sidecar_of_another_format_rebuilds(article, index_dir):
    folder = _built(article, index_dir)
    meta = sidecar(folder)
    meta["format"] = "something-else"
    (folder / SIDECAR).write_text(json.dumps(meta))
    _expect_rebuilt(article, index_dir, "not an article-qa index")


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff\xfe garbage \x80", b"{not json", b"[]", b"42", b'"text"', b"null", b"{}"],
    ids=["empty", "binary", "broken-json", "list", "number", "string", "null", "empty-object"],
)
def test_garbage_sidecar_rebuilds(article, index_dir, content):
    folder = _built(article, index_dir)
    (folder / SIDECAR).write_bytes(content)
    fake = FakeEmbedder()
    idx = open_quietly(article, fake, A, index_dir)
    assert idx.status.action == "rebuilt"
    assert idx.status.reason
    assert fake.encode_calls == 1
    assert_valid(idx, article, A)
    assert_clean(folder)


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda m: m["files"]["dense"].pop("sha256"), "incomplete"),
        (lambda m: m["files"]["dense"].pop("name"), "incomplete"),
        (lambda m: m.pop("files"), "incomplete"),
        (lambda m: m.update(files="nonsense"), "incomplete"),
        (lambda m: m.update(passages=[["a", "b"]]), "incomplete"),
        (lambda m: m.update(passages=7), "incomplete"),
        (lambda m: m.update(passages=m["passages"][:-1]), "do not match"),
        (lambda m: m.update(dim=8), "do not match"),
        (lambda m: m["article"].update(chars=1), "article changed"),
    ],
    ids=["no-sha256", "no-name", "no-files", "files-string", "passages-strings", "passages-int",
         "passage-missing", "wrong-dim", "wrong-chars"],
)
def test_inconsistent_sidecar_rebuilds(article, index_dir, edit, reason):
    folder = _built(article, index_dir)
    meta = sidecar(folder)
    edit(meta)
    (folder / SIDECAR).write_text(json.dumps(meta))
    _expect_rebuilt(article, index_dir, reason)


def test_unreadable_vectors_with_matching_checksum_rebuild(article, index_dir):
    import hashlib

    folder = _built(article, index_dir)
    (path,) = dense_files(folder)
    junk = b"not a faiss index at all"
    path.write_bytes(junk)
    meta = sidecar(folder)
    meta["files"]["dense"]["sha256"] = hashlib.sha256(junk).hexdigest()
    (folder / SIDECAR).write_text(json.dumps(meta))
    _expect_rebuilt(article, index_dir, "damaged")


# -- files, permissions, environment ---------------------------------------------------------------


def test_folders_are_private_and_no_temp_files_remain(article, index_dir):
    open_quietly(article, FakeEmbedder(), A, index_dir)
    open_quietly(article, FakeEmbedder(), B, index_dir)
    folder = folder_of(index_dir, article)
    assert stat.S_IMODE(index_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert tmp_files(index_dir.parent) == []
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".lock")) == sorted(
        [SIDECAR, dense_files(folder)[0].name, lexical_files(folder)[0].name, MARKER]
    )


def test_temp_files_left_by_a_crash_are_harmless_and_cleaned(article, index_dir):
    folder = _built(article, index_dir)
    stale = [folder / ".index.json.999999.tmp", folder / f".{dense_files(folder)[0].name}.999999.tmp"]
    stale[0].write_text("{half a sidecar")
    stale[1].write_bytes(b"half a faiss file")
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "reused"
    idx = open_quietly(article, FakeEmbedder(), B, index_dir)
    assert idx.status.action == "rebuilt"
    assert_clean(folder)


def test_env_var_sets_default_index_dir(monkeypatch, tmp_path, article):
    monkeypatch.setenv(ENV_INDEX_DIR, str(tmp_path / "from-env"))
    assert default_root() == tmp_path / "from-env"
    idx = open_quietly(article, FakeEmbedder(), A)
    assert idx.status.path == tmp_path / "from-env" / index_key(article, FakeEmbedder())
    assert (idx.status.path / SIDECAR).is_file()

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(ENV_INDEX_DIR, "~/qa-cache")
    assert default_root() == tmp_path / "home" / "qa-cache"

    monkeypatch.delenv(ENV_INDEX_DIR)
    assert default_root().name == "article-qa"
    monkeypatch.setenv(ENV_INDEX_DIR, "")
    assert default_root().name == "article-qa"


def _assert_in_memory(idx, article, fake):
    assert idx.status.action == "in-memory"
    assert idx.status.path is None and idx.status.reason
    assert fake.encode_calls == 1, "the article must be encoded once, not again for the fallback"
    assert_valid(idx, article, A)


def test_index_dir_under_a_file_falls_back_to_memory(article, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file")
    fake = FakeEmbedder()
    with pytest.warns(IndexWarning, match="from memory"):
        idx = open_index(article, fake, A, blocker / "indexes")
    _assert_in_memory(idx, article, fake)
    assert blocker.read_text() == "a regular file"


def test_read_only_index_dir_falls_back_to_memory(article, index_dir, monkeypatch):
    def refuse(folder):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr(store, "_make_private_dir", refuse)
    fake = FakeEmbedder()
    with pytest.warns(IndexWarning, match="Permission denied"):
        idx = open_index(article, fake, A, index_dir)
    _assert_in_memory(idx, article, fake)
    assert not index_dir.exists()


def test_disk_full_keeps_old_index_and_leaves_no_temp_files(article, index_dir, monkeypatch):
    folder = _built(article, index_dir)
    before = (folder / SIDECAR).read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    fake = FakeEmbedder()
    with pytest.warns(IndexWarning, match="No space left"):
        idx = open_index(article, fake, A, index_dir, rebuild=True)
    _assert_in_memory(idx, article, fake)
    assert tmp_files(index_dir) == []
    monkeypatch.undo()
    assert (folder / SIDECAR).read_bytes() == before
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "reused"


def test_failed_export_only_warns(article, index_dir, monkeypatch):
    import article_qa.index.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "_failure_said", False)  # said once per process: not yet in this test
    fake = FakeEmbedder()

    def broken():
        raise RuntimeError("exporter exploded")

    fake.export = broken
    with pytest.warns(onnx_export.ExportFailedWarning, match=r"could not export the models to ONNX \(exporter exploded\)"):
        idx = open_index(article, fake, A, index_dir)
    assert idx.status.action == "built"
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "reused"


# -- other processes: races and crashes ------------------------------------------------------------


def _helper(*args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop(ENV_INDEX_DIR, None)
    return subprocess.Popen(
        [sys.executable, str(HELPER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise AssertionError(f"helper printed nothing in {timeout}s")
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise AssertionError(f"helper exited {proc.returncode} without output: {proc.stderr.read()}")
    return line.strip()


def test_two_processes_building_at_once_make_one_index(article, article_path, index_dir, tmp_path):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    log = tmp_path / "encode.log"
    common = ["--article", str(article_path), "--index-dir", str(index_dir), "--max-tokens", "200",
              "--encode-delay", "0.5", "--log", str(log), "--barrier", str(barrier), "--parties", "2"]
    procs = [_helper(*common) for _ in range(2)]
    try:
        results = [json.loads(_read_line(p)) for p in procs]
        for p in procs:
            assert p.wait(30) == 0, p.stderr.read()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert sorted(r["action"] for r in results) == ["built", "reused"], results
    assert len(log.read_text().splitlines()) == 1, "the second process must wait and reuse, not encode"
    fake = FakeEmbedder()
    third = open_quietly(article, fake, A, index_dir)
    assert third.status.action == "reused" and fake.encode_calls == 0
    assert_valid(third, article, A)
    assert_clean(folder_of(index_dir, article))


# Where the build is killed, and what the next open of the OLD chunking must do: the old index is
# still whole until the new sidecar is renamed into place.
CRASH_POINTS = {
    "encode": "reused",
    "before-replace:1": "reused",  # the new .faiss is only a temp file
    "before-replace:2": "reused",  # the new .faiss is in place, the new lexical file is a temp file
    "before-replace:3": "reused",  # both data files are in place, the new sidecar is a temp file
    "after-replace:3": "rebuilt",  # the new sidecar is in place; the old data files not yet removed
}


def _kill_during_build(article_path: Path, index_dir: Path, chunking: Chunking, point: str) -> str:
    proc = _helper("--article", str(article_path), "--index-dir", str(index_dir),
                   "--max-tokens", str(chunking.max_tokens), "--pause", point)
    try:
        line = _read_line(proc)
        assert line.startswith(f"PAUSED {point}"), line
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == -9
    return line


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_killed_rebuild_leaves_a_usable_index(article, article_path, index_dir, point):
    folder = _built(article, index_dir)
    old_dense = dense_files(folder)
    line = _kill_during_build(article_path, index_dir, B, point)
    # The kill happened where intended.
    if point == "before-replace:1":
        assert line.endswith(".faiss") and tmp_files(folder)
        assert dense_files(folder) == old_dense
    elif point == "before-replace:2":
        assert line.endswith(".bin") and tmp_files(folder)
        assert len(dense_files(folder)) == 2 and len(lexical_files(folder)) == 1
    elif point == "before-replace:3":
        assert line.endswith(SIDECAR) and tmp_files(folder)
        assert len(dense_files(folder)) == 2 and len(lexical_files(folder)) == 2
    elif point == "after-replace:3":
        assert sidecar(folder)["chunking"] == B.to_dict() and len(dense_files(folder)) == 2

    fake = FakeEmbedder()
    idx = open_quietly(article, fake, A, index_dir)
    assert idx.status.action == CRASH_POINTS[point], idx.status
    assert_valid(idx, article, A)
    # The interrupted chunking is rebuilt properly, after which no debris is left.
    idx_b = open_quietly(article, FakeEmbedder(), B, index_dir)
    assert idx_b.status.action == "rebuilt"
    assert_valid(idx_b, article, B)
    assert_clean(folder)
    assert open_quietly(article, FakeEmbedder(), B, index_dir).status.action == "reused"


@pytest.mark.parametrize("point", ["encode", "before-replace:1", "before-replace:2", "before-replace:3"])
def test_killed_first_build_is_built_again(article, article_path, index_dir, point):
    _kill_during_build(article_path, index_dir, A, point)
    folder = folder_of(index_dir, article)
    assert not (folder / SIDECAR).exists()
    fake = FakeEmbedder()
    started = time.monotonic()
    idx = open_quietly(article, fake, A, index_dir)
    assert time.monotonic() - started < 10, "the dead process's lock must not be waited for"
    assert idx.status.action == "built"
    assert fake.encode_calls == 1
    assert_valid(idx, article, A)
    assert_clean(folder)


# -- the cache must not be a way in ----------------------------------------------------------------


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious, not the tool's")
    victim.chmod(0o600)
    return victim


def test_planted_links_at_temp_names_are_never_written_through(article, index_dir, tmp_path):
    """A link planted where the old code put its temp files (`.NAME.<pid>.tmp`, a predictable name,
    opened following links) made the next run overwrite the link's target."""
    folder = _built(article, index_dir)
    names = [SIDECAR, dense_files(folder)[0].name, lexical_files(folder)[0].name]
    victim = _victim(tmp_path)
    for name in names:
        (folder / f".{name}.{os.getpid()}.tmp").symlink_to(victim)
    assert open_quietly(article, FakeEmbedder(), A, index_dir, rebuild=True).status.action == "rebuilt"
    assert victim.read_text() == "precious, not the tool's"
    assert open_quietly(article, FakeEmbedder(), A, index_dir).status.action == "reused"


def test_planted_link_at_the_hash_cache_temp_name_is_not_written_through(tmp_path):
    from article_qa.index.cache_layout import HASH_CACHE_FILE
    from article_qa.index.embedding_model import cached_sha256

    victim = _victim(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / f".{HASH_CACHE_FILE}.{os.getpid()}.tmp").symlink_to(victim)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"some weights")
    cached_sha256(weights, cache / HASH_CACHE_FILE)
    assert victim.read_text() == "precious, not the tool's"
    assert any(weights.name in key for key in json.loads((cache / HASH_CACHE_FILE).read_text()))


@pytest.mark.parametrize("name", ["/dev/zero", "../outside.faiss", "dense-0000000000000000.faiss/../../x"])
def test_sidecar_may_only_name_the_tools_own_files_in_its_folder(article, index_dir, tmp_path, name):
    """A sidecar naming /dev/zero read without end; one naming a file elsewhere loaded it."""
    folder = _built(article, index_dir)
    (dense,) = dense_files(folder)
    outside = index_dir / "outside.faiss"
    outside.write_bytes(dense.read_bytes())  # a valid index, with the checksum the sidecar has
    meta = sidecar(folder)
    meta["files"]["dense"]["name"] = str(outside) if name == "../outside.faiss" else name
    (folder / SIDECAR).write_text(json.dumps(meta))
    _expect_rebuilt(article, index_dir, "incomplete")


def test_a_data_file_that_is_a_link_is_not_followed(article, index_dir):
    folder = _built(article, index_dir)
    (dense,) = dense_files(folder)
    elsewhere = index_dir / "elsewhere.faiss"
    dense.rename(elsewhere)
    dense.symlink_to(elsewhere)  # same bytes, same checksum: only the link is wrong
    _expect_rebuilt(article, index_dir, "incomplete")


def test_a_symlinked_key_folder_is_never_followed(article, index_dir, tmp_path):
    folder = _built(article, index_dir)
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)
    before = sorted(p.name for p in elsewhere.iterdir())
    fake = FakeEmbedder()
    with pytest.warns(IndexWarning, match="symbolic link"):
        idx = open_index(article, fake, A, index_dir)
    _assert_in_memory(idx, article, fake)
    assert sorted(p.name for p in elsewhere.iterdir()) == before  # nothing written or removed there


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_cache_folder_of_another_user_is_not_used(article, index_dir):
    _built(article, index_dir)
    os.chown(index_dir, 4242, -1)
    fake = FakeEmbedder()
    with pytest.warns(IndexWarning, match="belongs to another user"):
        idx = open_index(article, fake, A, index_dir)
    _assert_in_memory(idx, article, fake)


def test_a_cache_folder_others_may_write_is_not_used(article, index_dir):
    folder = _built(article, index_dir)
    index_dir.chmod(0o777)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    fake = FakeEmbedder()
    with pytest.warns(IndexWarning, match="other users may write to it"):
        idx = open_index(article, fake, A, index_dir, rebuild=True)
    _assert_in_memory(idx, article, fake)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_only_dead_writers_temp_files_are_removed_and_only_the_tools_own_names(article, index_dir):
    folder = _built(article, index_dir)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    leftovers = {
        f".index.json.{dead_pid}.tmp": False,  # names of the old scheme, of a dead writer: removed
        f".{dense_files(folder)[0].name}.{dead_pid}.k2j4h1ab.tmp": False,
        f".index.json.{os.getppid()}.abcdefgh.tmp": True,  # a live process's: kept
        "notes.txt": True,  # not a name of the tool's: kept
        "precious.tmp": True,
    }
    for name in leftovers:
        (folder / name).write_text("x")
    in_root = {f".hashes.json.{dead_pid}.abcdefgh.tmp": False, "my-notes.txt": True}
    for name in in_root:
        (index_dir / name).write_text("x")
    assert open_quietly(article, FakeEmbedder(), B, index_dir).status.action == "rebuilt"
    assert {name: (folder / name).exists() for name in leftovers} == leftovers
    assert {name: (index_dir / name).exists() for name in in_root} == in_root


def test_lexical_statistics_are_saved_checked_and_memory_mapped(article, index_dir):
    import mmap

    folder = _built(article, index_dir)
    idx = open_quietly(article, FakeEmbedder(), A, index_dir)
    assert idx.status.action == "reused"
    base = idx.lexical.docs.base
    assert isinstance(getattr(base, "obj", base), mmap.mmap)  # mapped, not read into a copy
    fresh = store.BM25([p.text for p in idx.passages])
    for query in ["Where were the peace talks held?", "Zelensky NATO bid", "nothing matches qqq"]:
        np.testing.assert_array_equal(idx.lexical.scores(query), fresh.scores(query))
    (path,) = lexical_files(folder)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _expect_rebuilt(article, index_dir, "damaged")
