"""Shared fixtures: one index folder and one loaded pipeline for the whole session.

Loading the real models costs seconds, so tests that need them share a session-scoped
pipeline and cache folder (the ONNX exports are made once, then reused like a user's cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("index-cache")


@pytest.fixture(scope="session")
def default_qa(index_dir):
    from article_qa.qa.pipeline import ArticleQA

    return ArticleQA.open(None, index_dir=index_dir)


@pytest.fixture()
def cli_env(index_dir, monkeypatch):
    """Environment for CLI runs: the shared cache, no colour."""
    monkeypatch.setenv("ARTICLE_QA_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("NO_COLOR", "1")
    return index_dir


@pytest.fixture(scope="session")
def news(tmp_path_factory):
    """A corpus folder of three articles (tests/helpers_web.py) and {id: text} of them."""
    from helpers_web import write_news

    folder = tmp_path_factory.mktemp("corpus") / "news"
    return folder, write_news(folder)


@pytest.fixture(scope="session")
def news_qa(news, index_dir):
    from article_qa.qa.pipeline import ArticleQA

    return ArticleQA.open_corpus([news[0]], index_dir=index_dir)
