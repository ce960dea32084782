"""article_qa: question answering over an article; answers are spans of the article with their evidence.

    from article_qa import ArticleQA

    qa = ArticleQA.open("notes.md")  # or None for the shipped article
    print(qa.ask("When was the lamp electrified?").text)

The names below are imported on first use, so `import article_qa` (and `article-qa --help`) stays
quick: the answering path pulls in numpy, FAISS and ONNX Runtime only when it is asked for. The
rooms of the package: `qa` (answering), `index` (articles, passages, the saved index and the
cache), `batch` (batch files), `terminal` (what the command line shows), `web` (`article-qa
serve`), `evaluation` (`article-qa eval`), and `cli` (the commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Answer", "ArticleQA", "Conversation", "Settings"]

_EXPORTS = {
    "ArticleQA": "article_qa.qa.pipeline",
    "Settings": "article_qa.qa.pipeline",
    "Answer": "article_qa.qa.answer",
    "Conversation": "article_qa.qa.conversation",
}

if TYPE_CHECKING:
    from article_qa.qa.answer import Answer
    from article_qa.qa.conversation import Conversation
    from article_qa.qa.pipeline import ArticleQA, Settings


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'article_qa' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
