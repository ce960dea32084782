"""Answer a batch: every input record gets exactly one output record, in input order.

Records are answered in chunks so that encoding and reading run batched, while results still stream
out: a chunk's answers are handed out as soon as the chunk is done, and with it everything before
it. The chunks start small and grow (1, 2, 4, ... up to `MAX_CHUNK` questions) so that the first
answers arrive within a second or two of the models loading, yet a long run is answered in batches
big enough to keep the cores busy; an interrupted run keeps everything it finished. Lines of one
conversation depend on each other, so inside a chunk they are answered in waves: all first pending
turns together, then all second turns, each wave one batched call.

A resumed run (`done`) passes on the records of lines an earlier run answered, keyed by input line
number, and answers only the others: a line is taken as done only when its id and question are
those of the input line of that number, so an edited input is answered afresh. A done turn of a
conversation still gives the later turns its answer as history, as it did in the first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

from article_qa.batch.input import BatchError, BatchQuestion
from article_qa.qa.conversation import Conversations, Turn

MAX_CHUNK = 32  # questions per batched call, once the run has started


@dataclass(frozen=True)
class Done:
    """A line an earlier run answered: written back as it was (`written`), and its answer text
    kept for its conversation's history."""

    line: int
    id: str
    question: str
    answer: str | None  # what its conversation remembers: the answer's text, else the best guess shown
    written: object  # what the output writes back (the JSON line, the CSV row)
    read_as: str | None = None  # how the follow-up was read, when it was rewritten


def error_record(line: int, id_: str | None, error: str) -> dict:
    """The output record of a line that got no answer: a bad input line, or a failed answer."""
    return {"id": id_, "line": line, "error": error}


def kept_answer(record: BatchQuestion, done: Mapping[int, Done]) -> Done | None:
    """The earlier run's record of this line (`--resume`), when it answers this very question: the
    same id and question text; a line edited since is asked again."""
    kept = done.get(record.line)
    if kept is not None and kept.id == record.id and kept.question == record.question:
        return kept
    return None


def chunk_sizes(first: int = 1, largest: int = MAX_CHUNK) -> Iterator[int]:
    """1, 2, 4, ... then `largest` for ever."""
    size = max(1, first)
    while True:
        yield min(size, largest)
        size *= 2


def answer_records(
    qa,
    records: Iterable[BatchQuestion | BatchError],
    done: Mapping[int, Done] | None = None,
    chunk_size: int | None = None,
) -> Iterator[dict | Done]:
    """Output records (answer dict + id + line, an error record, or a `Done` passed on), one per
    input record, in order.

    `chunk_size` fixes the number of questions per batched call (tests); by default it grows.
    """
    done = done or {}
    sizes = chunk_sizes() if chunk_size is None else chunk_sizes(chunk_size, chunk_size)
    size = next(sizes)
    conversations = Conversations(qa)
    chunk: list[BatchQuestion | BatchError | Done] = []
    asking = 0
    for record in records:
        if isinstance(record, BatchQuestion):
            kept = kept_answer(record, done)
            if kept is not None:
                record = _KeptTurn(kept, record.conversation)
            else:
                asking += 1
        chunk.append(record)
        if asking == 0:  # nothing to ask before it: an error or a done line goes out at once
            yield from _answer_chunk(chunk, conversations)
            chunk = []
        elif asking >= size:
            yield from _answer_chunk(chunk, conversations)
            chunk, asking, size = [], 0, next(sizes)
    if chunk:
        yield from _answer_chunk(chunk, conversations)


@dataclass(frozen=True)
class _KeptTurn:
    """A `Done` line in the chunk, with the conversation its input line names."""

    done: Done
    conversation: str | None


def _within(qa, article: str | None) -> str | None:
    """The article id a line's "article" names (None: the run's own --within, or all)."""
    if article is None:
        return None
    resolve = getattr(qa, "resolve_within", None)
    return resolve(article) if resolve is not None else article


def _answer_chunk(chunk, conversations: Conversations) -> list[dict | Done]:
    out: list[dict | Done | None] = [None] * len(chunk)
    pending = []
    for i, record in enumerate(chunk):
        if isinstance(record, BatchError):
            out[i] = error_record(record.line, record.id, record.error)
        else:
            pending.append(i)  # a done turn too: its history must come in its conversation's order
    while pending:
        wave, later, seen = [], [], set()
        for i in pending:
            conversation = chunk[i].conversation
            if conversation is not None and conversation in seen:
                later.append(i)  # waits for the previous turn of its conversation
            else:
                wave.append(i)
                if conversation is not None:
                    seen.add(conversation)
        asked, within = [], []
        for i in wave:
            if isinstance(chunk[i], _KeptTurn):
                continue
            try:  # a line naming an article the index does not hold gets its own error record
                within.append(_within(conversations.qa, chunk[i].article))
            except ValueError as err:
                out[i] = error_record(chunk[i].line, chunk[i].id, str(err))
                continue
            asked.append(i)
        for i in wave:
            if isinstance(chunk[i], _KeptTurn):
                kept = chunk[i]
                out[i] = kept.done
                if kept.conversation is not None:
                    conversations.named(kept.conversation).remember(
                        Turn(kept.done.question, kept.done.answer, kept.done.read_as))
        answers: list = []
        if asked:
            try:
                pairs = [(chunk[i].conversation, chunk[i].question) for i in asked]
                answers = (conversations.ask_many(pairs, within) if any(w is not None for w in within)
                           else conversations.ask_many(pairs))
            except Exception as err:  # noqa: BLE001 - a failure is recorded per line, the rest still run
                answers = [err] * len(asked)
        for i, answer in zip(asked, answers):
            record = chunk[i]
            if isinstance(answer, Exception):
                out[i] = error_record(record.line, record.id, f"could not answer: {answer}")
                continue
            out[i] = {"id": record.id, "line": record.line, **answer.to_dict()}
            if record.conversation is not None:
                out[i]["conversation"] = record.conversation
        pending = later
    return out
