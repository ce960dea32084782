"""What `article-qa serve` answers with: one `ArticleQA` (over one article or a corpus), the
articles it shows (`web.catalog`), the conversations of the pages and scripts using it, and the
checks on what a request may ask. No HTTP here (that is `web.app`), so this is
usable and testable as plain Python.

Questions are answered one at a time, in order of arrival, on one worker thread:
- the pipeline's models are shared and its tokenizers are not safe to call from several threads;
- batching concurrent questions into one `ask_many` was measured and bought nothing on this CPU
  (8 questions in one call: 95 ms each, against 99 ms each one by one);
- a conversation's turns stay in order without locks, because only the worker touches them.
Waiting requests are bounded (`max_waiting`), so a flood gets a quick 503 instead of a long queue.

Conversations are kept by id (`qa.conversation.Conversations`): the least recently used is dropped
past `max_conversations`, and each keeps its last `max_turns` turns (a follow-up looks back only a
few). Ids are made there, random and unguessable; a script that sends one back continues that
conversation.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from article_qa.index.printable import quoted
from article_qa.qa.conversation import Conversations
from article_qa.qa.question import clean_question, json_type
from article_qa.web.catalog import MAX_FILTER_CHARS, MAX_PAGE, Catalog, UnknownArticle

MAX_CONVERSATIONS = 500
MAX_TURNS = 50
MAX_WAITING = 64
_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,9}")


class RequestError(Exception):
    """A request the service will not answer: an HTTP status and a one-line message for the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Service:
    """Answers questions about one article or a corpus for many clients, each in its own
    conversation; a question may be limited to one article of the corpus."""

    def __init__(self, qa, *, max_conversations: int = MAX_CONVERSATIONS, max_turns: int = MAX_TURNS,
                 max_waiting: int = MAX_WAITING):
        self.qa = qa
        self.max_waiting = max_waiting
        self.catalog = Catalog(qa)
        # Touched on the worker thread only.
        self.conversations = Conversations(qa, max_conversations=max_conversations, max_turns=max_turns)
        self._executor: ThreadPoolExecutor | None = None
        self._waiting = 0
        self._lock = threading.Lock()

    # -- life cycle --
    def start(self) -> None:
        """Start the worker and load the models in the background (the first question is then quick)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="article-qa-serve")
        self.qa.start_loading()

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- questions --
    def submit(self, question: object, conversation: object = None,
               wanted: Callable[[], bool] | None = None, article: object = None) -> "Future[dict]":
        """Check a question and queue it; the future gives `Answer.to_dict()` plus `"conversation"`.
        `article` (an id of `catalog`) limits the question to that article, searched on its own.

        Raises RequestError at once for a bad question, conversation id or article, or when too many wait;
        the future raises RequestError(404) for a conversation that is unknown or was dropped.
        `wanted`, called on the worker just before the reader runs, may say the asker has gone:
        then the question is not answered (the future raises RequestError(499))."""
        question = check_question(question)
        conversation = check_conversation_id(conversation)
        within = self.check_article(article)
        self.start()
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise RequestError(503, f"busy: {self._waiting} questions are waiting; try again in a moment")
            self._waiting += 1
            executor = self._executor
        try:
            future = executor.submit(self._answer_if_wanted, question, conversation, wanted, within)
        except RuntimeError as err:  # shut down meanwhile
            self._done(None)
            raise RequestError(503, "the server is shutting down") from err
        future.add_done_callback(self._done)
        return future

    def ask(self, question: object, conversation: object = None, article: object = None) -> dict:
        """`submit` and wait: the answer as a dict, for Python callers and tests."""
        return self.submit(question, conversation, article=article).result()

    def _done(self, _future) -> None:
        with self._lock:
            self._waiting -= 1

    def _answer_if_wanted(self, question: str, conversation_id: str | None, wanted, within: str | None) -> dict:
        if wanted is not None and not wanted():
            raise RequestError(499, "the client disconnected before its question was answered")
        return self._answer(question, conversation_id, within)

    def _answer(self, question: str, conversation_id: str | None, within: str | None = None) -> dict:
        if conversation_id is None:
            conversation_id = self.conversations.new()
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            raise RequestError(
                404, f"unknown conversation {quoted(conversation_id)}: it may have been dropped (the "
                f"{self.conversations.max_conversations} most recent are kept); leave it out to start a new one")
        answer = conversation.ask(question, within=within)
        return {**answer.to_dict(), "conversation": conversation_id}

    # -- what the page reads --
    def articles(self, query: object = "", offset: object = "0", limit: object = None) -> dict:
        """GET /api/articles: the served articles whose title or id hold every word of `query`,
        paged (`offset`, `limit` as the query string gives them: digits)."""
        if not isinstance(query, str) or len(query) > MAX_FILTER_CHARS:
            raise RequestError(422, f'"q" must be at most {MAX_FILTER_CHARS} characters')
        first = _count("offset", offset, 0, None)
        size = MAX_PAGE if limit is None else _count("limit", limit, 1, MAX_PAGE)
        return self.catalog.page(query, first, size)

    def article_json(self, article_id: str | None = None) -> bytes:
        """GET /api/article/{id} (and GET /api/article, for a server of one article) as JSON bytes:
        its id, title, source, sha256, text, layout blocks and passages, all as offsets of `text`."""
        if article_id is None:
            if self.catalog.is_corpus:
                raise RequestError(404, f"this server holds {len(self.catalog):,} articles: list them with "
                                        "GET /api/articles and read one with GET /api/article/{id}")
            article_id = self.catalog.entries[0].id
        try:
            return self.catalog.article_json(article_id)
        except UnknownArticle as err:
            raise RequestError(404, err.args[0]) from None

    def article(self, article_id: str | None = None) -> dict:
        """`article_json` as a dict, for Python callers and tests."""
        return json.loads(self.article_json(article_id))

    def check_article(self, article: object) -> str | None:
        """The corpus id a question is limited to (None: all articles, or the only one), or RequestError."""
        if article is None:
            return None
        if not isinstance(article, str):
            raise RequestError(422, f'"article" must be a string (an id from GET /api/articles), not {_json_type(article)}')
        try:
            return self.catalog.resolve(article)
        except UnknownArticle as err:
            raise RequestError(404, err.args[0]) from None

    def health(self) -> dict:
        health = {"status": "ok"}
        if not self.catalog.is_corpus:
            health["article"] = self.qa.article.source
        health.update({
            "articles": len(self.catalog),
            "passages": self.catalog.passage_count,
            "conversations": len(self.conversations),
            "waiting": self._waiting,
        })
        return health


def _count(name: str, value: object, least: int, most: int | None) -> int:
    """A paging parameter of the query string: digits, at least `least`, at most `most`."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value) or int(value) < least \
            or (most is not None and int(value) > most):
        top = "" if most is None else f" and at most {most:,}"
        raise RequestError(422, f'"{name}" must be a whole number of at least {least}{top}')
    return int(value)


def check_question(question: object) -> str:
    """The question as `ask` would use it (escapes and control characters removed), or RequestError."""
    if question is None:
        raise RequestError(422, 'missing "question": send {"question": "..."}')
    if not isinstance(question, str):
        raise RequestError(422, f'"question" must be a string, not {_json_type(question)}')
    try:
        return clean_question(question)
    except ValueError as err:
        raise RequestError(422, str(err)) from err


def check_conversation_id(conversation: object) -> str | None:
    if conversation is None:
        return None
    if not isinstance(conversation, str):
        raise RequestError(422, f'"conversation" must be a string (an id this server gave), not {_json_type(conversation)}')
    if not _CONVERSATION_ID.fullmatch(conversation):
        raise RequestError(422, '"conversation" must be an id this server gave (letters, digits, - and _)')
    return conversation


def _json_type(value: object) -> str:
    name = json_type(value)
    return name if name == "null" else ("an " if name[0] in "aeiou" else "a ") + name
