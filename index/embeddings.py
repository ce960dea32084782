"""Turn passages and questions into unit vectors with a sentence-transformers model.

Two runtimes give the same vectors: sentence-transformers (PyTorch), which loads any model by
name or path, and an ONNX export of that model run by ONNX Runtime. Importing torch and
sentence-transformers costs 5-7 s on this machine while encoding a question costs milliseconds,
so once a model has been exported (at `index` time, into the cache, keyed by the weights' sha256)
questions are encoded without importing torch at all. Nothing heavy is imported until a text is
encoded. The export of an embedding model lives here too, so `index/onnx_export.py` (ONNX machinery
shared with the reader) never imports this module back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from article_qa.index.embedding_model import ModelRef, load_error
from article_qa.index.parallel import TORCH_WORK, Loading

Progress = Callable[[int, int], None]  # (done, total)


class Embedder:
    """Encodes texts with one model; the runtime is chosen on first use."""

    def __init__(self, model: ModelRef, export_dir: Path | None = None, runtime: str = "auto"):
        self.model = model
        self.export_dir = export_dir  # where the ONNX export lives (None: never export)
        self.runtime = runtime  # "auto", "onnx" or "torch"
        self._tokenizer = None
        self._export_error: Exception | None = None
        self._backend = Loading(self._make_backend)

    # -- tokenizer (cheap: the `tokenizers` library only) --------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_fast_tokenizer(self.model)
        return self._tokenizer

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the word pieces of `text` (no special tokens)."""
        return self.tokenizer.encode(text, add_special_tokens=False).offsets

    # -- encoding ----------------------------------------------------------------------------
    @property
    def max_tokens(self) -> int:
        return int(_sentence_config(self.model).get("max_seq_length", 256))

    def encode(self, texts: list[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
        """Unit vectors, float32, one row per text (cosine similarity is a dot product)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        backend = self._load_backend()
        # Sorting by length keeps padding, and so wasted work, small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[first : first + batch_size] for first in range(0, len(order), batch_size)]
        out = np.zeros((len(texts), backend.dim), dtype=np.float32)
        done = 0
        for rows, vectors in zip(batches, backend.encode_many([[texts[i] for i in rows] for rows in batches])):
            out[rows] = vectors
            done += len(rows)
            if progress:
                progress(done, len(texts))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    @property
    def dim(self) -> int:
        return self._load_backend().dim

    @property
    def runtime_in_use(self) -> str | None:
        backend = self._backend.loaded
        return None if backend is None else backend.name

    def export(self) -> Path | None:
        """Write the ONNX export if it is missing; None when this model cannot be exported. An
        export that failed is not tried again by this embedder: its error is raised again."""
        if self.export_dir is None or self.model.sha256 is None or self.runtime == "torch":
            return None
        if self._export_error is not None:
            raise self._export_error
        try:
            return export_embedder(self.model, self.export_dir)
        except Exception as err:
            self._export_error = err
            raise

    def start_loading(self) -> None:
        """Load the runtime in a background thread; a failure shows where the model is next used."""
        self._backend.start()

    def _load_backend(self):
        return self._backend.get()

    def _make_backend(self):
        """ONNX when an export exists or can be made (once, keyed by sha256); PyTorch otherwise
        (`index.onnx_export.fastest`, the rule the reader loads by too; a failed export is said once)."""
        from article_qa.index.onnx_export import OnnxEncoder, exported_model_path, fastest

        path = None
        if self.export_dir is not None and self.model.sha256:
            path = exported_model_path(self.model, self.export_dir)
        return fastest(
            path, self.runtime,
            onnx=lambda: OnnxEncoder(path, self.tokenizer, self.max_tokens, _pooling(self.model)),
            export=self.export,
            torch=lambda: TorchEncoder(self.model),
        )


class TorchEncoder:
    """sentence-transformers itself: the reference runtime, and the fallback for any model."""

    name = "torch"

    def __init__(self, model: ModelRef):
        import os

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        with TORCH_WORK:
            from sentence_transformers import SentenceTransformer

            try:
                self.st = SentenceTransformer(model.path, device="cpu")
            except (OSError, ValueError, KeyError) as err:  # no such hub model, no network, broken files
                raise load_error(model.name, err) from err
        dimension = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.st.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)

    def encode_many(self, batches: list[list[str]]):
        """One batch after another: PyTorch already spreads each batch over the cores."""
        return (self.encode(texts) for texts in batches)


def load_fast_tokenizer(model: ModelRef):
    """The model's `tokenizers` tokenizer without importing transformers (0.05 s instead of 2 s)."""
    from tokenizers import Tokenizer

    if model.is_local and (Path(model.path) / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(Path(model.path) / "tokenizer.json"))
    else:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(model.path).backend_tokenizer
        except (OSError, ValueError, KeyError) as err:
            raise load_error(model.name, err) from err
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _sentence_config(model: ModelRef) -> dict:
    path = Path(model.path) / "sentence_bert_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _pooling(model: ModelRef) -> str:
    path = Path(model.path) / "1_Pooling" / "config.json"
    if not path.is_file():
        return "mean"
    config = json.loads(path.read_text())
    if config.get("pooling_mode_cls_token"):
        return "cls"
    return "mean"


# -- the ONNX export of an embedding model ------------------------------------------------------

_PROBES = [
    "Where were the peace talks held?",
    "Ukrainian President Volodymyr Zelensky has announced that Ukraine will no longer pursue membership "
    "in the North Atlantic Treaty Organization (NATO) alliance, describing the move as a compromise.",
    "“Curly quotes”, emoji 👍 and numbers like 3.50 all go through the same tokenizer.",
    "x",
]
MIN_COSINE = 0.999


def export_embedder(model: ModelRef, export_dir: Path) -> Path:
    """The model's export: the published one when it is there (torch is not imported then), else
    the transformer exported, checked against sentence-transformers, then published."""
    from article_qa.index.onnx_export import exported_model_path

    path = exported_model_path(model, export_dir)
    if path.is_file():
        return path
    with TORCH_WORK:
        return _export_embedder(model, path)


def _export_embedder(model: ModelRef, path: Path) -> Path:
    import torch

    from article_qa.index.onnx_export import ExportError, OnnxEncoder, export_graph, publish

    if path.is_file():  # another thread published it while this one waited for TORCH_WORK
        return path
    reference = TorchEncoder(model)
    transformer = reference.st[0].auto_model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.net(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tmp = export_graph(Hidden(), path, ["input_ids", "attention_mask", "token_type_ids"], ["hidden"])
    try:
        max_tokens = int(reference.st.get_max_seq_length() or 256)
        candidate = OnnxEncoder(tmp, load_fast_tokenizer(model), max_tokens, _pooling(model))
        expected = reference.encode(_PROBES)
        got = candidate.encode(_PROBES)
        cosine = _row_cosines(expected, got).min()
        if cosine < MIN_COSINE:
            raise ExportError(f"ONNX export differs from PyTorch (cosine {cosine:.4f} < {MIN_COSINE})")
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)
