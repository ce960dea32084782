"""Tests for index.cache and `article-qa cache`: where, how big, and clearing only what the tool
recorded making (its marker), never a folder of the user's, never an index being built."""

from __future__ import annotations

import json
import os
import pathlib
import select
import subprocess
import sys

from typer.testing import CliRunner

from article_qa.cli import app
from article_qa.index.cache import cache_usage, clear_cache
from article_qa.index.private_files import MARKER, is_marked, private_folder

runner = CliRunner()
HELPER = pathlib.Path(__file__).with_name("helpers_index.py")
INDEX = "0123456789abcdef-01234567"
EXPORT = "encoder-53aa51172d142c89"
HASHES = json.dumps({"/x/model.safetensors|90868376|1|2|3": "5" * 64})


def fill(folder: pathlib.Path) -> None:
    """A cache as the tool makes it (folders made by `private_folder`, so marked), with a chat
    history and things of the user's beside it."""
    index = private_folder(private_folder(folder, parents=True) / INDEX)
    (index / "index.json").write_text("{}")
    (index / "dense-0123456789abcdef.faiss").write_bytes(b"v" * 3000)
    export = private_folder(folder / "onnx") / EXPORT
    export.mkdir()
    (export / "model.data").write_bytes(b"m" * 50_000)
    (folder / "hashes.json").write_text(HASHES)
    (folder / "chat_history").write_text("Where were the peace talks held?\n")
    (folder / "my-notes.txt").write_text("not article-qa's")  # a cache folder set to a shared place
    (folder / "photos").mkdir()
    (folder / "photos" / "a.jpg").write_bytes(b"j" * 10)


def marker_bytes(folder: pathlib.Path) -> bytes:
    return (folder / MARKER).read_bytes()


def run_cli(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ARTICLE_QA_INDEX_DIR"}
    return subprocess.run([sys.executable, "-c", "from article_qa import cli; cli.main()", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def test_usage_counts_every_byte_by_kind(tmp_path: pathlib.Path):
    fill(tmp_path)
    usage = cache_usage(tmp_path)
    kinds = usage.by_kind()
    assert kinds["index"] == (1, 3002 + len(marker_bytes(tmp_path / INDEX)))
    assert kinds["models"][0] == 1 and kinds["models"][1] > 50_000
    assert kinds["hashes"] == (1, len(HASHES))
    assert kinds["history"][0] == 1
    assert kinds["other"] == (2, len("not article-qa's") + 10)
    assert usage.size == sum(size for _, size in kinds.values())


def test_clear_removes_only_what_article_qa_made(tmp_path: pathlib.Path):
    fill(tmp_path)
    cleared = clear_cache(tmp_path)
    assert cleared.freed > 3002 + 50_000 + len(HASHES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER, "chat_history", "my-notes.txt", "photos"]
    assert [reason for reason, _, _ in cleared.by_reason()] == ["history", "other"]
    assert is_marked(tmp_path)  # still an article-qa cache: clearing it again works


def test_missing_folder_is_empty(tmp_path: pathlib.Path):
    assert cache_usage(tmp_path / "none").size == 0
    assert clear_cache(tmp_path / "none").freed == 0


def test_cache_command_shows_and_clears(tmp_path: pathlib.Path, monkeypatch):
    monkeypatch.setenv("ARTICLE_QA_INDEX_DIR", str(tmp_path))
    fill(tmp_path)
    shown = runner.invoke(app, ["cache"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"{tmp_path}: ")
    assert "model exports (ONNX)" in shown.stdout and "article indexes (1)" in shown.stdout
    as_json = json.loads(runner.invoke(app, ["cache", "--json"]).stdout)
    assert as_json["path"] == str(tmp_path) and as_json["kinds"]["models"]["count"] == 1
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0, cleared.output
    assert cleared.stdout.startswith("removed 53.") and f" kB from {tmp_path}" in cleared.stdout
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
    fill(shared)
    shared.chmod(0o777)
    monkeypatch.delenv("ARTICLE_QA_INDEX_DIR", raising=False)
    cleared = runner.invoke(app, ["cache", "clear", "--index-dir", str(shared)])
    assert cleared.exit_code != 0
    assert cleared.stderr.strip() == (f"article-qa: error: cannot clear {shared}: other users may write to it "
                                      "(mode 777); nothing was removed")
    assert (shared / "onnx").exists() and (shared / INDEX).exists()


def test_clear_leaves_folders_not_the_users_own_and_live_processes_temp_files(tmp_path: pathlib.Path):
    fill(tmp_path)
    planted = tmp_path / "fedcba9876543210-76543210"  # named like an index, writable by anyone
    planted.mkdir()
    (planted / "index.json").write_text("{}")
    (planted / MARKER).write_bytes(marker_bytes(tmp_path))
    planted.chmod(0o777)
    live = tmp_path / f".hashes.json.{os.getpid()}.abcd1234.tmp"  # this process is writing it
    live.write_text("{")
    dead = tmp_path / ".hashes.json.999999999.abcd1234.tmp"  # no such process
    dead.write_text("{")
    clear_cache(tmp_path)
    assert planted.exists() and live.exists() and not dead.exists()
    assert not (tmp_path / INDEX).exists()


# -- issue #22, item 1: nothing of the user's is deleted -----------------------------------------------


def test_clear_refuses_a_folder_that_is_not_an_article_qa_cache(tmp_path: pathlib.Path):
    """The issue's own case: a folder the user made, with files named like the tool's."""
    p = tmp_path / "p"
    p.mkdir(mode=0o700)
    for name, text in (("onnx/m.onnx", "x"), ("site/index.json", "{}"), (f"{INDEX}/notes.txt", "mine"),
                       ("hashes.json", "{}")):
        (p / name).parent.mkdir(exist_ok=True)
        (p / name).write_text(text)
    before = sorted(str(f.relative_to(p)) for f in p.rglob("*"))
    done = run_cli("cache", "clear", "--index-dir", str(p))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"article-qa: error: cannot clear {p}: it has no {MARKER} marker, so nothing in it is known to be "
        "article-qa's (a cache made by an older article-qa has none: remove what you do not need by hand); "
        "nothing was removed"]
    assert done.stdout == ""
    assert sorted(str(f.relative_to(p)) for f in p.rglob("*")) == before


def test_clear_refuses_a_plain_folder_in_one_line(tmp_path: pathlib.Path):
    (tmp_path / "thesis.tex").write_text("mine")
    done = run_cli("cache", "clear", "--index-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"article-qa: error: cannot clear {tmp_path}: it is not an article-qa cache (it has no {MARKER} "
        "marker); nothing was removed"]
    assert (tmp_path / "thesis.tex").exists()


def test_an_empty_index_dir_is_an_error_not_the_current_folder(tmp_path: pathlib.Path):
    fill(tmp_path)  # even the current folder being a cache must not make "" mean it
    for command in (["cache", "clear"], ["cache"], ["ask", "Who?"]):
        done = run_cli(*command, "--index-dir", "", cwd=tmp_path)
        assert done.returncode == 2, command
        assert done.stderr.splitlines() == [
            "article-qa: error: --index-dir is empty; give the cache folder's path (or leave the option out)"]
    assert (tmp_path / "onnx" / EXPORT).exists() and (tmp_path / INDEX).exists()


def test_inside_a_marked_cache_only_the_tools_layout_with_its_marker_goes(tmp_path: pathlib.Path):
    fill(tmp_path)
    (tmp_path / "onnx" / "m.onnx").write_text("the user's own model")  # beside the tool's exports
    unmarked = tmp_path / "fedcba9876543210-76543210"  # an index of a version without markers
    unmarked.mkdir()
    (unmarked / "index.json").write_text("{}")
    mixed = private_folder(tmp_path / "aaaaaaaaaaaaaaaa-bbbbbbbb")
    (mixed / "index.json").write_text("{}")
    (mixed / "report.docx").write_text("the user saved this here")
    (tmp_path / "hashes.json").write_text('{"my": "settings"}')  # not the tool's checksum cache
    cleared = clear_cache(tmp_path)
    assert not (tmp_path / "onnx" / EXPORT).exists() and not (tmp_path / INDEX).exists()
    assert (tmp_path / "onnx" / "m.onnx").read_text() == "the user's own model"
    assert is_marked(tmp_path / "onnx")
    assert (unmarked / "index.json").exists() and (mixed / "report.docx").exists() and (mixed / "index.json").exists()
    assert (tmp_path / "hashes.json").read_text() == '{"my": "settings"}'
    reasons = {reason: count for reason, count, _ in cleared.by_reason()}
    assert reasons == {"unmarked": 1, "foreign": 1, "history": 1, "other": 4}


def test_clear_says_what_it_kept_and_why(tmp_path: pathlib.Path, monkeypatch):
    monkeypatch.delenv("ARTICLE_QA_INDEX_DIR", raising=False)
    fill(tmp_path)
    (tmp_path / "fedcba9876543210-76543210").mkdir()
    cleared = runner.invoke(app, ["cache", "clear", "--index-dir", str(tmp_path)])
    assert cleared.exit_code == 0, cleared.output
    assert cleared.stdout.splitlines()[1:] == [
        "  kept 0 bytes: article-qa's layout without its marker (made by an older version; remove by hand if unneeded)",
        "  kept 33 bytes: chat history",
        "  kept 26 bytes: not article-qa's (2)",
    ]


def _start_build(tmp_path: pathlib.Path, cache: pathlib.Path, log: pathlib.Path) -> subprocess.Popen:
    from article_qa.index.article import load_article

    article = tmp_path / "article.txt"
    article.write_bytes(load_article(None).text.encode("utf-8"))
    env = {k: v for k, v in os.environ.items() if k != "ARTICLE_QA_INDEX_DIR"}
    return subprocess.Popen([sys.executable, str(HELPER), "--article", str(article), "--index-dir", str(cache),
                             "--encode-delay", "6", "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_clear_leaves_an_index_being_built_and_the_build_ends_saved(tmp_path: pathlib.Path):
    import time

    cache, log = tmp_path / "cache", tmp_path / "encode.log"
    fill(cache)
    build = _start_build(tmp_path, cache, log)
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the builder holds the index's lock while it encodes
        assert log.exists(), build.stderr.read() if build.poll() is not None else "the build never started"
        building = [p for p in cache.iterdir() if (p / ".lock").exists()]  # fill()'s index has no lock
        assert len(building) == 1
        done = run_cli("cache", "clear", "--index-dir", str(cache))
        assert done.returncode == 0, done.stderr
        assert "  kept" in done.stdout and "in use by a running article-qa" in done.stdout
        ready, _, _ = select.select([build.stdout], [], [], 60)
        assert ready, "the build printed nothing"
        status = json.loads(build.stdout.readline())
    finally:
        build.kill()
        build.wait(10)
    assert status["action"] == "built", status  # not "in-memory": its folder was not pulled away
    assert (building[0] / "index.json").is_file()
    assert not (cache / INDEX).exists()  # the idle index beside it was removed


def test_what_the_tool_writes_is_marked_and_cleared(tmp_path: pathlib.Path):
    """Marked by the real write path (open_index), not by hand: a fresh cache clears to its marker."""
    from helpers_index import FakeEmbedder
    from article_qa.index.article import load_article
    from article_qa.index.passages import Chunking
    from article_qa.index.store import open_index

    cache = tmp_path / "cache"
    built = open_index(load_article(None), FakeEmbedder(), Chunking(max_tokens=200), cache)
    assert built.status.action == "built"
    assert is_marked(cache) and is_marked(built.status.path)
    cleared = clear_cache(cache)
    assert cleared.freed > 0 and cleared.kept == {}
    assert sorted(p.name for p in cache.iterdir()) == [MARKER]
