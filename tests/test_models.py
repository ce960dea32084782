"""Tests for index.embedding_model: a model the user names is found, or refused in one line (issue
#10: `--model ./no-such-folder`, an unknown hub name and an empty folder gave 78-212-line tracebacks)."""

from __future__ import annotations

import pytest

from article_qa.index.embedding_model import ModelError, load_error, resolve_model


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
