"""A batch cut into blocks for a distributed engine's workers, and its records put back in order.

The rules that make a distributed run write exactly what the local engine writes:

- Every input record has its one output record, and they go out in input order (`InOrder`): a
  block's records wait until every line before them is written, whichever worker finished first.
- The records that need no answering are decided here, as `batch.run.answer_records` decides
  them: a bad line is its error record, and a line an earlier run answered (`--resume`) is passed
  on as it was, unless it belongs to a conversation.
- A conversation goes whole to one block, its turns in input order (a turn is read in the light
  of the turns before it, its done turns too), so no block waits on another's answers and the
  blocks can run anywhere in any order.
- Lines that name their article are grouped by it: the units (a line, or a conversation) of a
  window of about `WINDOW_BLOCKS` blocks are sorted by the article of their first line (stably,
  so input order holds within an article) before being cut into blocks of about
  `BLOCK_QUESTIONS` questions. A block's questions then mostly search one article, and the
  window keeps the first records from waiting on the end of a long input. The first blocks are
  smaller (`FIRST_BLOCK`, doubling), as the local engine's first chunks are, so the first records
  are written seconds after the workers are ready, not after a whole block.

Answers do not depend on which questions share a batched call (checked: the same 60 questions
asked together, one by one and seven at a time give the same records), so blocks cut differently
from the local engine's chunks still answer each line the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from article_qa.batch.input import BatchError, BatchQuestion
from article_qa.batch.run import Done, chunk_sizes, error_record, kept_answer

BLOCK_QUESTIONS = 64  # questions per block: two of the reader's batched calls (run.MAX_CHUNK)
FIRST_BLOCK = 8  # the first blocks are smaller (8, 16, 32, then BLOCK_QUESTIONS): the output starts sooner
WINDOW_BLOCKS = 16  # blocks' worth of lines sorted by article together


@dataclass(frozen=True)
class Block:
    """Lines one worker answers in one go: `records` in the order they are asked, and the done
    turns of their conversations (`--resume`) by line."""

    number: int
    records: tuple[BatchQuestion, ...]
    done: Mapping[int, Done] = field(default_factory=dict)

    @property
    def questions(self) -> int:
        return sum(1 for r in self.records if r.line not in self.done)


@dataclass
class Plan:
    """A batch as a distributed run sees it: every input line in order, the records decided
    without a worker, and the blocks for the workers."""

    order: list[int]  # the input lines that get a record, in input order
    ready: dict[int, dict | Done]  # line → its record: error records and done lines outside conversations
    blocks: list[Block]


@dataclass
class _Unit:
    records: list[BatchQuestion]
    done: dict[int, Done]

    @property
    def article(self) -> str:
        return self.records[0].article or ""

    @property
    def questions(self) -> int:
        return sum(1 for r in self.records if r.line not in self.done)


def plan_blocks(records: Iterable[BatchQuestion | BatchError], done: Mapping[int, Done] | None = None,
                block_questions: int = BLOCK_QUESTIONS, window_blocks: int = WINDOW_BLOCKS,
                first_block: int = FIRST_BLOCK) -> Plan:
    """Read the whole input (a conversation's turns may be far apart) and cut it into blocks."""
    done = done or {}
    order: list[int] = []
    ready: dict[int, dict | Done] = {}
    units: list[_Unit] = []
    conversations: dict[str, _Unit] = {}
    for record in records:
        order.append(record.line)
        if isinstance(record, BatchError):
            ready[record.line] = error_record(record.line, record.id, record.error)
            continue
        kept = kept_answer(record, done)
        if record.conversation is None:
            if kept is not None:
                ready[record.line] = kept
            else:
                units.append(_Unit([record], {}))
            continue
        unit = conversations.get(record.conversation)
        if unit is None:
            unit = conversations[record.conversation] = _Unit([], {})
            units.append(unit)
        unit.records.append(record)
        if kept is not None:
            unit.done[record.line] = kept
    return Plan(order, ready, list(_cut(units, max(1, block_questions), max(1, window_blocks), max(1, first_block))))


def _cut(units: list[_Unit], block_questions: int, window_blocks: int, first_block: int) -> Iterator[Block]:
    number = 0
    sizes = chunk_sizes(first_block, block_questions)  # first_block, doubling, then block_questions
    size = next(sizes)
    window: list[_Unit] = []
    asked = 0

    def blocks_of(window: list[_Unit]) -> Iterator[Block]:
        nonlocal number, size
        records: list[BatchQuestion] = []
        kept: dict[int, Done] = {}
        count = 0
        for unit in sorted(window, key=lambda u: u.article):  # stable: input order within an article
            records += unit.records
            kept.update(unit.done)
            count += unit.questions
            if count >= size:
                yield Block(number, tuple(records), kept)
                number, size = number + 1, next(sizes)
                records, kept, count = [], {}, 0
        if records:
            yield Block(number, tuple(records), kept)
            number, size = number + 1, next(sizes)

    for unit in units:
        window.append(unit)
        asked += unit.questions
        if asked >= block_questions * window_blocks:
            yield from blocks_of(window)
            window, asked = [], 0
    if window:
        yield from blocks_of(window)


class InOrder:
    """Records that arrive in any order, handed out in input order as soon as every line before
    them has arrived."""

    def __init__(self, order: list[int], ready: Mapping[int, dict | Done] | None = None):
        self._order = order
        self._next = 0
        self._waiting: dict[int, dict | Done] = dict(ready or {})

    def add(self, records: Iterable[dict | Done]) -> None:
        for record in records:
            self._waiting[record.line if isinstance(record, Done) else record["line"]] = record

    def ready(self) -> Iterator[dict | Done]:
        while self._next < len(self._order) and self._order[self._next] in self._waiting:
            yield self._waiting.pop(self._order[self._next])
            self._next += 1

    @property
    def finished(self) -> bool:
        return self._next == len(self._order)

    @property
    def missing(self) -> int:
        return len(self._order) - self._next
