"""`article-qa serve` exactly as the CLI runs it (the real server, app and signal handling), with a
stand-in for the models so that a test starts it in about a second. Each question answered is
logged on stderr as `stub: answered <question>`, after ARTICLE_QA_STUB_ANSWER_S seconds (default 0).

    python tests/serve_stub.py [serve options]     # ARTICLE_QA_STUB_ARTICLE_BYTES: article size
"""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

from article_qa import cli
from article_qa.index.article import Article
from article_qa.terminal import progress
from article_qa.web import service


def stub_qa() -> SimpleNamespace:
    size = int(os.environ.get("ARTICLE_QA_STUB_ARTICLE_BYTES", "2000"))
    text = ("The peace talks were held in Brussels. " * (size // 39 + 1))[:size]
    passages = [SimpleNamespace(index=0, start=0, end=len(text))]
    article = Article(text=text, source="stub.txt", sha256="0" * 64)
    return SimpleNamespace(article=article, index=SimpleNamespace(passages=passages), start_loading=lambda: None,
                           is_corpus=False)


def stub_answer(self, question: str, conversation_id, within=None):
    time.sleep(float(os.environ.get("ARTICLE_QA_STUB_ANSWER_S", "0")))
    print(f"stub: answered {question}", file=sys.stderr, flush=True)
    return {"answer": {"text": "Brussels"}, "question": question, "conversation": conversation_id or "c1"}


if __name__ == "__main__":
    progress.open_article_qa = lambda *args, **kwargs: stub_qa()
    service.Service._answer = stub_answer
    sys.argv = ["article-qa", "serve", *sys.argv[1:]]
    cli.main()
