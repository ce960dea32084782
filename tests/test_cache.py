"""Tests for index.cache and `article-qa cache`: where, how big, and clearing only what is ours."""

from __future__ import annotations

import json
import pathlib

from typer.testing import CliRunner

from article_qa.cli import app
from article_qa.index.cache import cache_usage, clear_cache

runner = CliRunner()


def fill(folder: pathlib.Path) -> None:
    index = folder / "0123456789abcdef-01234567"
    index.mkdir(parents=True)
    (index / "index.json").write_text("{}")
    (index / "vectors.faiss").write_bytes(b"v" * 3000)
    (folder / "onnx" / "encoder-53aa51172d142c89").mkdir(parents=True)
    (folder / "onnx" / "encoder-53aa51172d142c89" / "model.data").write_bytes(b"m" * 50_000)
    (folder / "hashes.json").write_text("{}")
    (folder / "chat_history").write_text("Where were the peace talks held?\n")
    (folder / "my-notes.txt").write_text("not article-qa's")  # a cache folder set to a shared place
    (folder / "photos").mkdir()
    (folder / "photos" / "a.jpg").write_bytes(b"j" * 10)


def test_usage_counts_every_byte_by_kind(tmp_path: pathlib.Path):
    fill(tmp_path)
    usage = cache_usage(tmp_path)
    kinds = usage.by_kind()
    assert kinds["index"] == (1, 3002)
    assert kinds["models"] == (1, 50_000)
    assert kinds["hashes"] == (1, 2)
    assert kinds["history"][0] == 1
    assert kinds["other"] == (2, len("not article-qa's") + 10)
    assert usage.size == sum(size for _, size in kinds.values())


def test_clear_removes_only_what_article_qa_made(tmp_path: pathlib.Path):
    fill(tmp_path)
    freed, left = clear_cache(tmp_path)
    assert freed == 3002 + 50_000 + 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat_history", "my-notes.txt", "photos"]
    assert set(left.by_kind()) == {"history", "other"}


def test_missing_folder_is_empty(tmp_path: pathlib.Path):
    assert cache_usage(tmp_path / "none").size == 0
    assert clear_cache(tmp_path / "none")[0] == 0


def test_cache_command_shows_and_clears(tmp_path: pathlib.Path, monkeypatch):
    monkeypatch.setenv("ARTICLE_QA_INDEX_DIR", str(tmp_path))
    fill(tmp_path)
    shown = runner.invoke(app, ["cache"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"{tmp_path}: ")
    assert "model exports (ONNX)" in shown.stdout and "article indexes (1)" in shown.stdout
    as_json = json.loads(runner.invoke(app, ["cache", "--json"]).stdout)
    assert as_json["path"] == str(tmp_path) and as_json["kinds"]["models"] == {"count": 1, "bytes": 50_000}
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0, cleared.output
    assert cleared.stdout.startswith(f"removed 53.0 kB from {tmp_path}")
    assert "kept" in cleared.stdout and "chat history" in cleared.stdout
    assert not (tmp_path / "onnx").exists() and (tmp_path / "my-notes.txt").exists()


def test_cache_clear_takes_index_dir(tmp_path: pathlib.Path, monkeypatch):
    monkeypatch.delenv("ARTICLE_QA_INDEX_DIR", raising=False)
    fill(tmp_path)
    cleared = runner.invoke(app, ["cache", "clear", "--index-dir", str(tmp_path)])
    assert cleared.exit_code == 0, cleared.output
    assert not (tmp_path / "hashes.json").exists()


def test_clear_refuses_a_folder_others_may_write_to(tmp_path: pathlib.Path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    fill(shared)
    shared.chmod(0o777)
    monkeypatch.delenv("ARTICLE_QA_INDEX_DIR", raising=False)
    cleared = runner.invoke(app, ["cache", "clear", "--index-dir", str(shared)])
    assert cleared.exit_code != 0
    assert cleared.stderr.strip() == f"article-qa: error: cannot clear {shared}: other users may write to it (mode 777)"
    assert (shared / "onnx").exists() and (shared / "0123456789abcdef-01234567").exists()


def test_clear_leaves_folders_not_the_users_own_and_live_processes_temp_files(tmp_path: pathlib.Path):
    import os

    fill(tmp_path)
    planted = tmp_path / "fedcba9876543210-76543210"  # named like an index, writable by anyone
    planted.mkdir()
    (planted / "index.json").write_text("{}")
    planted.chmod(0o777)
    live = tmp_path / f".hashes.json.{os.getpid()}.abcd1234.tmp"  # this process is writing it
    live.write_text("{")
    dead = tmp_path / ".hashes.json.999999999.abcd1234.tmp"  # no such process
    dead.write_text("{")
    clear_cache(tmp_path)
    assert planted.exists() and live.exists() and not dead.exists()
    assert not (tmp_path / "0123456789abcdef-01234567").exists()
