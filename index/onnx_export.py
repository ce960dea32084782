"""ONNX exports of our transformer networks, and the runtime that encodes with them.

An export is written once into the cache, keyed by the sha256 of the weights it came from, and
checked against PyTorch on probe texts before it is used (the tracing exporter can bake shapes into a
graph; a check on padded batches of several lengths catches that). A failed check removes the file,
and the caller falls back to PyTorch.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from index.embedding_model import ModelRef
from index.parallel import TORCH_WORK, map_in_threads, usable_cores

# ONNX Runtime keeps a telemetry database (SQLite, with a device id) under ~/.cache/Microsoft and
# writes it at every session start and exit (~25 ms here). A tool run per question should neither
# record its users' usage nor pay for it; a user may still set ORT_DISABLE_TELEMETRY=0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


class ExportError(RuntimeError):
    """The ONNX export failed or does not match the PyTorch model."""


# An export is a folder: the graph, and its weights beside it as external data, which ONNX Runtime
# loads far faster than weights inside the graph's protobuf (a MiniLM session in a fresh process:
# 60-80 ms against 240-285 ms). The folder is published with one rename, so it is whole or absent.
MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "model.data"


def exported_model_path(model: ModelRef, export_dir: Path) -> Path:
    return Path(export_dir) / f"encoder-{model.sha256[:16]}" / MODEL_FILE


def _options(level=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread per run: callers run independent batches on all cores at once (index/parallel.py),
    # which beats splitting each operator across cores, and leaves no worker threads spinning
    # between runs (the encoder's spinning threads slowed the reader right after it by a third).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level if level is not None else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def session(path: Path):
    """An ONNX Runtime session that many threads may run at once, each run on one core."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), _options(), providers=["CPUExecutionProvider"])


def publish(checked: Path, path: Path) -> None:
    """Publish a checked export as the folder of `path`: ONNX Runtime's optimised graph with its
    weights as external data. The checked file is consumed.

    Fusing the graph once here, not at every start, saves ~35 ms a load with identical outputs. The
    saved level is EXTENDED, which does not depend on the CPU (ALL adds layout changes for this CPU),
    so a cache shared between machines stays valid; sessions still apply ALL when they load it.
    """
    import onnxruntime as ort

    folder = path.parent
    staging = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    options = _options(ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    options.optimized_model_filepath = str(staging / path.name)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", WEIGHTS_FILE)
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    try:
        try:
            ort.InferenceSession(str(checked), options, providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - the unoptimised export is as right, only slower to load
            shutil.rmtree(staging)
            staging.mkdir(mode=0o700)
            checked.replace(staging / path.name)
        if folder.is_dir() and not path.is_file():
            shutil.rmtree(folder)  # a damaged earlier export
        try:
            staging.rename(folder)
        except OSError:
            if not path.is_file():
                raise
            # another process published the same export first: theirs is as good
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        checked.unlink(missing_ok=True)
    folder.with_name(f"{folder.name}.onnx").unlink(missing_ok=True)  # the single-file export of 0.1


def discard(path: Path) -> None:
    """Remove an export that fails to load (damaged on disk), so that it is made again."""
    shutil.rmtree(path.parent, ignore_errors=True)


def batch_arrays(tokenizer, texts, max_tokens: int, pairs=None) -> dict[str, np.ndarray]:
    """Token ids, mask and segment ids of a padded batch, as ONNX Runtime wants them."""
    tokenizer.enable_truncation(max_tokens)
    tokenizer.enable_padding()
    try:
        encodings = tokenizer.encode_batch(texts if pairs is None else list(zip(texts, pairs)))
    finally:
        tokenizer.no_truncation()
        tokenizer.no_padding()
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[..., None].astype(hidden.dtype)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


class OnnxEncoder:
    """Sentence embeddings from an exported encoder: tokenizers + ONNX Runtime, no torch."""

    name = "onnx"

    def __init__(self, path: Path, tokenizer, max_tokens: int, pooling: str):
        self.session = session(path)
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.pooling = pooling
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.workers = usable_cores()  # batches run at once (see index/parallel.py)
        self.input_names = {i.name for i in self.session.get_inputs()}  # models differ (token_type_ids)

    def encode(self, texts: list[str]) -> np.ndarray:
        return next(self.encode_many([texts]))

    def encode_many(self, batches: list[list[str]]) -> Iterator[np.ndarray]:
        """Vectors per batch, in order; the batches run on all cores at once.

        Tokenizing happens first, in this thread: the tokenizer's padding settings are shared state.
        """
        arrays = [batch_arrays(self.tokenizer, texts, self.max_tokens) for texts in batches]
        return map_in_threads(self._run, arrays, self.workers)

    def _run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        (hidden,) = self.session.run(None, {k: v for k, v in arrays.items() if k in self.input_names})
        return pool(hidden, arrays["attention_mask"], self.pooling).astype(np.float32)


def export_graph(module, path: Path, names: list[str], outputs: list[str]) -> Path:
    """Trace `module` to a temporary ONNX file beside the folder of `path` (the caller checks it,
    then publishes it)."""
    import torch

    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names + outputs}
    tmp = path.parent.with_name(f"{path.parent.name}.{os.getpid()}.raw.onnx")
    tmp.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with TORCH_WORK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, dummy, str(tmp), input_names=names, output_names=outputs,
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )
    return tmp
