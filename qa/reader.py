"""Read retrieved passages and pick the answer span, or the reader's "no answer" option.

An extractive reader scores every word piece as the start and the end of the answer; the [CLS]
position stands for "this passage does not say". Each candidate span keeps its margin over that
null score and the null score itself: the confidence (`qa/confidence.py`) weighs both. All passages of a question (and all questions of a batch)
go through the network in one padded forward pass. Spans are mapped back through the tokenizer's
character offsets, so an answer is always an exact slice of the article.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from article_qa.index.parallel import map_in_threads
from article_qa.index.passages import Passage

MAX_ANSWER_TOKENS = 30
MAX_QUESTION_TOKENS = 64  # longer questions are cut before pairing with a passage
TOP_CANDIDATES = 20


@dataclass(frozen=True)
class Span:
    """A candidate answer in article coordinates, with its margin over the passage's null score."""

    start: int
    end: int
    margin: float  # span logit sum minus null logit sum; > 0 means "more likely than no answer"
    passage: Passage
    null: float = 0.0  # the window's null ([CLS]) logit sum: how sure the reader is there is nothing


@dataclass(frozen=True)
class Window:
    """One tokenized (question, passage piece) pair and how its pieces map to article offsets."""

    ids: list[int]
    type_ids: list[int]
    context_offsets: list[tuple[int, int] | None]  # article offsets of context pieces, None elsewhere
    passage: Passage


def truncate_question(tokenizer, question: str, max_pieces: int = MAX_QUESTION_TOKENS) -> tuple[str, bool]:
    """The question cut after its first `max_pieces` word pieces, and whether it was cut.

    The cut falls at the end of a word piece, so the kept text tokenizes to the same pieces.
    """
    max_pieces = max(1, max_pieces)
    saved_truncation, saved_padding = tokenizer.truncation, tokenizer.padding
    tokenizer.no_truncation()
    tokenizer.no_padding()
    try:
        offsets = tokenizer.encode(question, add_special_tokens=False).offsets
        if len(offsets) <= max_pieces:
            return question, False
        keep = max_pieces
        while True:
            cut = question[: offsets[keep - 1][1]].rstrip()
            if keep == 1 or len(tokenizer.encode(cut, add_special_tokens=False).ids) <= max_pieces:
                return cut, True
            keep -= 1
    finally:
        if saved_truncation:
            tokenizer.enable_truncation(**saved_truncation)
        if saved_padding:
            tokenizer.enable_padding(**saved_padding)


def make_windows(tokenizer, question: str, passages: list[Passage], max_length: int, stride: int) -> list[Window]:
    """Question + passage pairs cut into windows that fit the reader (long passages overlap).

    A question too long to leave room for the passage is cut first (the tokenizer would raise,
    or panic when fewer than `stride` pieces of passage fit).
    """
    # [CLS] question [SEP] passage [SEP]: the passage part must stay longer than the stride.
    budget = min(MAX_QUESTION_TOKENS, max_length - 3 - stride - 1)
    question, _ = truncate_question(tokenizer, question, budget)
    tokenizer.enable_truncation(max_length, stride=stride, strategy="only_second")
    tokenizer.no_padding()
    windows = []
    try:
        for passage in passages:
            first = tokenizer.encode(question, passage.text)
            for enc in [first, *first.overflowing]:
                offsets = [
                    (passage.start + s, passage.start + e) if seq == 1 else None
                    for (s, e), seq in zip(enc.offsets, enc.sequence_ids)
                ]
                windows.append(Window(enc.ids, enc.type_ids, offsets, passage))
    finally:
        tokenizer.no_truncation()
    return windows


def pad(windows: list[Window], pad_id: int = 0) -> dict[str, np.ndarray]:
    longest = max(len(w.ids) for w in windows)
    ids = np.full((len(windows), longest), pad_id, dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for row, w in enumerate(windows):
        ids[row, : len(w.ids)] = w.ids
        types[row, : len(w.ids)] = w.type_ids
        mask[row, : len(w.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def best_spans(window: Window, start_logits: np.ndarray, end_logits: np.ndarray, top: int = 3) -> list[Span]:
    """The best-scoring legal spans of one window (inside the context, ordered, short enough)."""
    context = [i for i, o in enumerate(window.context_offsets) if o is not None]
    if not context:
        return []
    null = float(start_logits[0] + end_logits[0])
    ctx = np.array(context)
    starts = ctx[np.argsort(-start_logits[ctx])[:TOP_CANDIDATES]]
    ends = ctx[np.argsort(-end_logits[ctx])[:TOP_CANDIDATES]]
    found = []
    for s in starts:
        for e in ends:
            if e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                continue
            found.append((float(start_logits[s] + end_logits[e]) - null, int(s), int(e)))
    found.sort(reverse=True)
    spans = []
    for margin, s, e in found[:top]:
        start, end = window.context_offsets[s][0], window.context_offsets[e][1]
        spans.append(Span(start, end, margin, window.passage, null))
    return spans


def merge_duplicates(spans: list[Span]) -> list[Span]:
    """One candidate per article span (overlapping passages propose the same one), best first."""
    best: dict[tuple[int, int], Span] = {}
    for span in spans:
        key = (span.start, span.end)
        if key not in best or span.margin > best[key].margin:
            best[key] = span
    return sorted(best.values(), key=lambda s: -s.margin)


def length_batches(lengths: list[int], batch_size: int, max_padding: float = 0.25) -> list[list[int]]:
    """Consecutive groups of ascending `lengths` in which padding to the longest adds at most
    `max_padding` of the shortest: padding is wasted compute, and a chat question's few windows
    often differ in length by half."""
    batches: list[list[int]] = []
    for i, length in enumerate(lengths):
        if batches and len(batches[-1]) < batch_size and length <= lengths[batches[-1][0]] * (1 + max_padding):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class Reader:
    """Scores spans with a network run either by ONNX Runtime or by PyTorch."""

    def __init__(self, runner, tokenizer, max_length: int = 384, stride: int = 128, name: str = "reader",
                 pad_id: int = 0, workers: int = 1):
        self.runner = runner  # callable: dict of int64 arrays -> (start_logits, end_logits)
        self.workers = workers  # batches run at once (a runner safe to call from many threads)
        self.pad_id = pad_id
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stride = stride
        self.name = name

    def read_many(self, questions: list[str], passages: list[list[Passage]], batch_size: int = 8) -> list[list[Span]]:
        """Candidate spans for each question, best first, from batched passes over all windows.

        Small batches: with one batch per core at once, more of them balance the cores better, and
        a single-threaded run loses little to a small batch. A chat question's two or three windows
        go one per core.
        """
        windows, owner = [], []
        for q, (question, ps) in enumerate(zip(questions, passages)):
            for w in make_windows(self.tokenizer, question, ps, self.max_length, self.stride):
                windows.append(w)
                owner.append(q)
        spans: list[list[Span]] = [[] for _ in questions]
        # Similar lengths together: less padding, less wasted compute.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids))
        batch_size = max(1, min(batch_size, -(-len(windows) // self.workers)))
        batches = [[order[r] for r in rows] for rows in length_batches([len(windows[i].ids) for i in order], batch_size)]
        run = lambda rows: self.runner(pad([windows[i] for i in rows], self.pad_id))  # noqa: E731
        for rows, (start_logits, end_logits) in zip(batches, map_in_threads(run, batches, self.workers)):
            for j, i in enumerate(rows):
                spans[owner[i]].extend(best_spans(windows[i], start_logits[j], end_logits[j]))
        return [merge_duplicates(s) for s in spans]
