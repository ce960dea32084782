"""What `article-qa serve` answers with: one `ArticleQA`, the conversations of the pages and scripts
using it, and the checks on what a request may ask. No HTTP here (that is `web.app`), so this is
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

import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from article_qa.index.printable import quoted
from article_qa.qa.conversation import Conversations
from article_qa.qa.question import clean_question, json_type
from article_qa.web.blocks import article_blocks

MAX_CONVERSATIONS = 500
MAX_TURNS = 50
MAX_WAITING = 64
_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class RequestError(Exception):
    """A request the service will not answer: an HTTP status and a one-line message for the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Service:
    """Answers questions about one article for many clients, each in its own conversation."""

    def __init__(self, qa, *, max_conversations: int = MAX_CONVERSATIONS, max_turns: int = MAX_TURNS,
                 max_waiting: int = MAX_WAITING):
        self.qa = qa
        self.max_waiting = max_waiting
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
               wanted: Callable[[], bool] | None = None) -> "Future[dict]":
        """Check a question and queue it; the future gives `Answer.to_dict()` plus `"conversation"`.

        Raises RequestError at once for a bad question or conversation id, or when too many wait;
        the future raises RequestError(404) for a conversation that is unknown or was dropped.
        `wanted`, called on the worker just before the reader runs, may say the asker has gone:
        then the question is not answered (the future raises RequestError(499))."""
        question = check_question(question)
        conversation = check_conversation_id(conversation)
        self.start()
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise RequestError(503, f"busy: {self._waiting} questions are waiting; try again in a moment")
            self._waiting += 1
            executor = self._executor
        try:
            future = executor.submit(self._answer_if_wanted, question, conversation, wanted)
        except RuntimeError as err:  # shut down meanwhile
            self._done(None)
            raise RequestError(503, "the server is shutting down") from err
        future.add_done_callback(self._done)
        return future

    def ask(self, question: object, conversation: object = None) -> dict:
        """`submit` and wait: the answer as a dict, for Python callers and tests."""
        return self.submit(question, conversation).result()

    def _done(self, _future) -> None:
        with self._lock:
            self._waiting -= 1

    def _answer_if_wanted(self, question: str, conversation_id: str | None, wanted) -> dict:
        if wanted is not None and not wanted():
            raise RequestError(499, "the client disconnected before its question was answered")
        return self._answer(question, conversation_id)

    def _answer(self, question: str, conversation_id: str | None) -> dict:
        if conversation_id is None:
            conversation_id = self.conversations.new()
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            raise RequestError(
                404, f"unknown conversation {quoted(conversation_id)}: it may have been dropped (the "
                f"{self.conversations.max_conversations} most recent are kept); leave it out to start a new one")
        answer = conversation.ask(question)
        return {**answer.to_dict(), "conversation": conversation_id}

    # -- what the page reads --
    def article(self) -> dict:
        """The article's text, its layout blocks and its indexed passages, all as offsets of `text`."""
        article = self.qa.article
        return {
            "source": article.source,
            "sha256": article.sha256,
            "text": article.text,
            "blocks": [b.to_dict() for b in article_blocks(article.text)],
            "passages": [{"index": p.index, "start": p.start, "end": p.end} for p in self.qa.index.passages],
        }

    def health(self) -> dict:
        return {
            "status": "ok",
            "article": self.qa.article.source,
            "passages": len(self.qa.index.passages),
            "conversations": len(self.conversations),
            "waiting": self._waiting,
        }


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
