"""Read retrieved passages and pick the answer span, or the reader's "no answer" option.

An extractive reader scores every word piece as the start and the end of the answer; the [CLS]
position stands for "this passage does not say". The span's margin over that null score is what
decides between answering and abstaining. All passages of a question (and all questions of a batch)
go through the network in one padded forward pass. Spans are mapped back through the tokenizer's
character offsets, so an answer is always an exact slice of the article.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.passages import Passage

MAX_ANSWER_TOKENS = 30
MAX_QUESTION_TOKENS = 64  # longer questions are cut before pairing with a passage
TOP_CANDIDATES = 20
SHIPPED_READER = Path(__file__).parent / "reader_model"
READER_CONFIG = "reader.json"


class ReaderError(Exception):
    """The reader model cannot be loaded or fails its integrity check."""


@dataclass(frozen=True)
class Span:
    """A candidate answer in article coordinates, with its margin over the passage's null score."""

    start: int
    end: int
    margin: float  # span logit sum minus null logit sum; > 0 means "more likely than no answer"
    passage: Passage


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
        spans.append(Span(start, end, margin, window.passage))
    return spans


def merge_duplicates(spans: list[Span]) -> list[Span]:
    """One candidate per article span (overlapping passages propose the same one), best first."""
    best: dict[tuple[int, int], Span] = {}
    for span in spans:
        key = (span.start, span.end)
        if key not in best or span.margin > best[key].margin:
            best[key] = span
    return sorted(best.values(), key=lambda s: -s.margin)


class Reader:
    """Scores spans with a network run either by ONNX Runtime or by PyTorch."""

    def __init__(self, runner, tokenizer, max_length: int = 384, stride: int = 128, name: str = "reader"):
        self.runner = runner  # callable: dict of int64 arrays -> (start_logits, end_logits)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stride = stride
        self.name = name

    def read_many(self, questions: list[str], passages: list[list[Passage]], batch_size: int = 32) -> list[list[Span]]:
        """Candidate spans for each question, best first, from one batched pass over all windows."""
        windows, owner = [], []
        for q, (question, ps) in enumerate(zip(questions, passages)):
            for w in make_windows(self.tokenizer, question, ps, self.max_length, self.stride):
                windows.append(w)
                owner.append(q)
        spans: list[list[Span]] = [[] for _ in questions]
        # Similar lengths together: less padding, less wasted compute.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids))
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            start_logits, end_logits = self.runner(pad([windows[i] for i in rows]))
            for j, i in enumerate(rows):
                spans[owner[i]].extend(best_spans(windows[i], start_logits[j], end_logits[j]))
        return [merge_duplicates(s) for s in spans]


# -- loading ---------------------------------------------------------------------------------


def shipped_config(folder: Path = SHIPPED_READER) -> dict:
    path = folder / READER_CONFIG
    if not path.is_file():
        raise ReaderError(f"no trained reader at {folder} (train one with python -m qa.train_reader)")
    return json.loads(path.read_text())


def load_reader(name_or_path: str | None, export_dir: Path | None) -> Reader:
    """The shipped reader (default) or any Hugging Face extractive QA model by name or path."""
    if name_or_path is None:
        return _load_shipped(SHIPPED_READER, export_dir)
    path = Path(name_or_path).expanduser()
    if (path / READER_CONFIG).is_file():
        return _load_shipped(path, export_dir)
    return _load_hf(name_or_path)


def _load_shipped(folder: Path, export_dir: Path | None) -> Reader:
    """Our LoRA reader: base MiniLM weights (checked) + adapter (checked), ONNX when exported."""
    from index.embedding_model import HASH_CACHE_FILE, resolve_model
    from index.embeddings import load_fast_tokenizer

    config = shipped_config(folder)
    adapter_path = folder / config.get("adapter", "adapter.safetensors")
    if not adapter_path.is_file():
        raise ReaderError(f"reader adapter missing: {adapter_path}")
    digest = hashlib.sha256(adapter_path.read_bytes()).hexdigest()
    if digest != config["adapter_sha256"]:
        raise ReaderError(f"reader adapter {adapter_path} fails its checksum; reinstall article-qa")
    hash_cache = Path(export_dir).parent / HASH_CACHE_FILE if export_dir else None
    base = resolve_model(config.get("base_model"), hash_cache=hash_cache)
    if config.get("base_sha256") and base.sha256 != config["base_sha256"]:
        raise ReaderError("the reader was trained on other base weights than the installed model")
    tokenizer = load_fast_tokenizer(base)
    max_length = int(config.get("max_length", 384))
    stride = int(config.get("stride", 128))
    key = hashlib.sha256((digest + (base.sha256 or "")).encode()).hexdigest()[:16]
    onnx_path = Path(export_dir) / f"reader-{key}.onnx" if export_dir else None
    if onnx_path is not None and onnx_path.is_file():
        return Reader(_onnx_runner(onnx_path), tokenizer, max_length, stride, "onnx")
    network = _merged_network(base.path, adapter_path, config)
    if onnx_path is not None:
        try:
            _export_reader(network, onnx_path, tokenizer)
            return Reader(_onnx_runner(onnx_path), tokenizer, max_length, stride, "onnx")
        except Exception:  # noqa: BLE001 - an export failure only costs speed
            pass
    return Reader(_torch_runner(network), tokenizer, max_length, stride, "torch")


def _merged_network(base_path: str, adapter_path: Path, config: dict):
    from safetensors.torch import load_file

    from qa.reader_net import load_merged

    return load_merged(base_path, load_file(str(adapter_path)), int(config["rank"]), float(config["alpha"]))


def _torch_runner(network):
    import torch

    def run(arrays):
        with torch.inference_mode():
            s, e = network(*(torch.from_numpy(arrays[k]) for k in ("input_ids", "attention_mask", "token_type_ids")))
        return s.float().numpy(), e.float().numpy()

    return run


def _onnx_runner(path: Path):
    from index.onnx_export import session

    sess = session(path)
    names = [i.name for i in sess.get_inputs()]

    def run(arrays):
        start, end = sess.run(None, {n: arrays[n] for n in names})
        return start, end

    return run


def _export_reader(network, path: Path, tokenizer) -> None:
    """Export the merged reader and keep it only if it reproduces PyTorch's logits."""
    from index.onnx_export import export_graph

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = export_graph(network, path, ["input_ids", "attention_mask", "token_type_ids"], ["start_logits", "end_logits"])
    try:
        probe = [
            Passage(0, 0, 57, "The peace talks were held in Brussels, Belgium on Sunday."),
            Passage(1, 58, 80, "Nothing else happened."),
        ]
        arrays = pad(make_windows(tokenizer, "Where were the talks held?", probe, 384, 128))
        expected = _torch_runner(network)(arrays)
        got = _onnx_runner(tmp)(arrays)
        mask = arrays["attention_mask"].astype(bool)
        for a, b in zip(expected, got):
            if not np.allclose(a[mask], b[mask], atol=1e-3):
                raise RuntimeError("ONNX reader differs from PyTorch")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_hf(name_or_path: str) -> Reader:
    """Any AutoModelForQuestionAnswering (e.g. deepset/roberta-base-squad2), run by PyTorch."""
    try:
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForQuestionAnswering.from_pretrained(name_or_path).eval()
    except (OSError, ValueError) as err:
        raise ReaderError(f"cannot load reader {name_or_path!r}: {str(err).splitlines()[0]}") from err
    fast = tokenizer.backend_tokenizer
    uses_types = "token_type_ids" in tokenizer.model_input_names

    def run(arrays):
        inputs = {k: torch.from_numpy(v) for k, v in arrays.items() if k != "token_type_ids" or uses_types}
        with torch.inference_mode():
            out = model(**inputs)
        return out.start_logits.float().numpy(), out.end_logits.float().numpy()

    max_length = min(384, int(getattr(model.config, "max_position_embeddings", 512)) - 2)
    return Reader(run, fast, max_length, 128, name_or_path)
