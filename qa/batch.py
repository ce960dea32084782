"""Answer a batch: every input record gets exactly one output record, in input order.

Records are answered in chunks so that encoding and reading run batched while results still
stream out chunk by chunk (an interrupted run keeps every finished line). Lines of one
conversation depend on each other, so inside a chunk they are answered in waves: all first
pending turns together, then all second turns, each wave one batched call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from qa.batch_input import BatchError, BatchQuestion
from qa.conversation import Turn
from qa.pipeline import ArticleQA, ask_in_context, turn_after

CHUNK = 64


def error_record(err: BatchError) -> dict:
    return {"id": err.id, "line": err.line, "error": err.error}


def answer_records(
    qa: ArticleQA,
    records: Iterable[BatchQuestion | BatchError],
    skip_ids: frozenset[str] = frozenset(),
    chunk_size: int = CHUNK,
) -> Iterator[dict]:
    """Output records (answer dict + id + line, or error record), one per input, in order.

    Questions whose id is in `skip_ids` (already answered by an earlier run) are left out. A
    skipped turn of a conversation is still answered, without output, when a later turn of that
    conversation needs it as history, so a resumed run reads follow-ups as the first run did.
    """
    histories: dict[str, list[Turn]] = {}
    skipped_turns: dict[str, list[BatchQuestion]] = {}
    chunk: list[BatchQuestion | BatchError | _HistoryOnly] = []
    for record in records:
        if isinstance(record, BatchQuestion) and record.id in skip_ids:
            if record.conversation is not None:
                skipped_turns.setdefault(record.conversation, []).append(record)
            continue
        if isinstance(record, BatchQuestion) and record.conversation in skipped_turns:
            chunk.extend(_HistoryOnly(turn) for turn in skipped_turns.pop(record.conversation))
        chunk.append(record)
        if len(chunk) >= chunk_size:
            yield from _answer_chunk(qa, chunk, histories)
            chunk = []
    if chunk:
        yield from _answer_chunk(qa, chunk, histories)


@dataclass(frozen=True)
class _HistoryOnly:
    """A turn answered by an earlier run: answered again for its conversation's history, not output."""

    record: BatchQuestion


def _answer_chunk(qa: ArticleQA, records, histories: dict[str, list[Turn]]) -> list[dict]:
    silent = [isinstance(r, _HistoryOnly) for r in records]
    chunk = [r.record if isinstance(r, _HistoryOnly) else r for r in records]
    out: list[dict | None] = [None] * len(chunk)
    pending = []
    for i, record in enumerate(chunk):
        if isinstance(record, BatchError):
            out[i] = error_record(record)
        else:
            pending.append(i)
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
        try:
            answers = list(ask_in_context(qa, [chunk[i].question for i in wave],
                                          [histories.get(chunk[i].conversation, []) for i in wave]))
            if len(answers) != len(wave):  # zip would drop lines silently
                raise RuntimeError(f"{len(answers)} answers for {len(wave)} questions")
        except Exception as err:  # noqa: BLE001 - a failure is recorded per line, the rest still run
            answers = [err] * len(wave)
        for i, answer in zip(wave, answers):
            record = chunk[i]
            if isinstance(answer, Exception):
                out[i] = {"id": record.id, "line": record.line, "error": f"could not answer: {answer}"}
                continue
            if record.conversation is not None:
                histories.setdefault(record.conversation, []).append(turn_after(answer))
            out[i] = {"id": record.id, "line": record.line, **answer.to_dict()}
            if record.conversation is not None:
                out[i]["conversation"] = record.conversation
        pending = later
    return [record for record, hidden in zip(out, silent) if not hidden]
