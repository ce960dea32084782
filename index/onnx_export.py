"""ONNX exports of our transformer networks, and the runtime that encodes with them.

An export is written once into the cache, keyed by the sha256 of the weights it came from, and
checked against PyTorch on probe texts before it is used (the tracing exporter can bake shapes into a
graph; a check on padded batches of several lengths catches that). A failed check removes the file,
and the caller falls back to PyTorch.

A published export is not trusted as found: the sha256 of each of its files is recorded in its
manifest when it is published, and checked each time a session is made from it (through a hash
cache beside the exports, which keys on inode and ctime, so a file rewritten in place is hashed again; otherwise the
check costs two stats). Weights overwritten in place or another valid model swapped in gave garbage
answers at score 1.0; now they are discarded, with a warning, and exported again. Temporary files
and folders carry the writer's pid and a random part; those of writers that died (an interrupted
first export left 87 MB behind for ever) are removed by the next export.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np

from article_qa.index.private_files import (
    private_folder,
    read_regular,
    remove_stale_temps,
    subfolder_problem,
    write_atomic,
)
from article_qa.index.cache_layout import HASH_CACHE_FILE
from article_qa.index.embedding_model import ModelRef, cached_sha256, file_sha256, remember_sha256
from article_qa.index.parallel import TORCH_WORK, map_in_threads, usable_cores
from article_qa.index.printable import printable

# ONNX Runtime keeps a telemetry database (SQLite, with a device id) under ~/.cache/Microsoft and
# writes it at every session start and exit (~25 ms here). A tool run per question should neither
# record its users' usage nor pay for it; a user may still set ORT_DISABLE_TELEMETRY=0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


ENV_RUNTIME = "ARTICLE_QA_RUNTIME"
RUNTIMES = ("auto", "onnx", "torch")
Model = TypeVar("Model")


def chosen_runtime() -> str:
    """`ARTICLE_QA_RUNTIME`: "auto" (ONNX when it can be exported, else PyTorch; the default),
    "onnx" (an export that fails is an error) or "torch" (no exports: the reference to check
    them against)."""
    runtime = os.environ.get(ENV_RUNTIME, "auto").strip().lower() or "auto"
    return runtime if runtime in RUNTIMES else "auto"


def fastest(path: Path | None, runtime: str, onnx: Callable[[], Model], export: Callable[[], None],
            torch: Callable[[], Model]) -> Model:
    """A model by the one rule for the encoder and the reader alike: `onnx()` when the export at
    `path` loads; else, when it fails to load (damaged on disk; ONNX Runtime's errors vary), it is
    discarded and `export()` makes it again; else `torch()`, after saying once why the export failed
    (`export_failed`). `path` None (no cache to keep exports in) and `runtime` "torch" go straight
    to `torch()`; with "onnx" a failed export raises."""
    if runtime != "torch" and path is not None:
        if path.is_file():
            try:
                return onnx()
            except Exception:  # noqa: BLE001 - damaged on disk: made again below
                discard(path)
        try:
            export()
            return onnx()
        except Exception as err:  # noqa: BLE001 - a failed export only costs speed, and is said
            if runtime == "onnx":
                raise
            export_failed(err)
    return torch()


class ExportError(RuntimeError):
    """The ONNX export failed or does not match the PyTorch model."""


class ExportChanged(ExportError):
    """A published export whose files are not those recorded when it was published."""


class ExportWarning(UserWarning):
    """A cached export was found changed and is made again."""


class ExportFailedWarning(UserWarning):
    """A model could not be exported (a full disk, …); PyTorch answers instead."""


_FAILURE_SAID = threading.Lock()
_failure_said = False


def export_failed(err: BaseException) -> None:
    """Say that a model could not be exported to ONNX, and why, in one line and once per process
    (the encoder and the reader fail together on a full disk); the callers answer with PyTorch."""
    global _failure_said
    with _FAILURE_SAID:
        if _failure_said:
            return
        _failure_said = True
    # Said while holding TORCH_WORK: the exports silence torch's warnings with catch_warnings(),
    # which changes the filters of every thread, and would swallow this line said meanwhile.
    with TORCH_WORK:
        warnings.warn(f"could not export the models to ONNX ({failure_reason(err)}); answering with "
                      "PyTorch (slower) until they can be exported", ExportFailedWarning)


def failure_reason(err: BaseException) -> str:
    """Why an export failed, in a few words: the OSError behind it when there is one (torch wraps
    them), else the first line of its message."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return printable(first[:200])


# An export is a folder: the graph, and its weights beside it as external data, which ONNX Runtime
# loads far faster than weights inside the graph's protobuf (a MiniLM session in a fresh process:
# 60-80 ms against 240-285 ms). The folder is published with one rename, so it is whole or absent.
MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "model.data"
MANIFEST_FILE = "manifest.json"  # {"files": {name: {"sha256", "size"}}}, written at publish
EXPORT_FILES = (MODEL_FILE, WEIGHTS_FILE)  # the only names a manifest may list
EXPORT_FOLDER = re.compile(r"(encoder|reader)-[0-9a-f]{16}")


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
    """An ONNX Runtime session that many threads may run at once, each run on one core.

    A published export (`<folder>/model.onnx`) must match its manifest first; one that does not
    raises ExportChanged after a warning, and the callers discard it and export again."""
    import onnxruntime as ort

    path = Path(path)
    if path.name == MODEL_FILE:
        verify_export(path.parent)
    return ort.InferenceSession(str(path), _options(), providers=["CPUExecutionProvider"])


def _hash_cache(folder: Path) -> Path:
    """The export folder's own hash cache, beside the exports (<root>/onnx/hashes.json)."""
    return Path(folder).parent / HASH_CACHE_FILE


def verify_export(folder: Path) -> None:
    """Check a published export against its manifest; raise ExportChanged (after a warning, unless
    it only predates manifests) when a file is missing, extra, a link, or not what was recorded."""
    problem = subfolder_problem(folder)
    if problem:
        _changed(folder, problem)
    try:
        manifest = json.loads(read_regular(folder / MANIFEST_FILE, 1 << 20))
        files = manifest["files"]
        if not isinstance(files, dict) or set(files) != set(EXPORT_FILES) & set(files) or MODEL_FILE not in files:
            raise ValueError("a manifest listing other files")
    except FileNotFoundError:
        # Made before exports had manifests: made again (quietly, nothing points to tampering).
        raise ExportChanged(f"{folder} has no manifest") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        _changed(folder, f"its manifest is unreadable ({err})")
    present = set(os.listdir(folder)) - {MANIFEST_FILE}
    if present != set(files):
        _changed(folder, f"it holds {', '.join(sorted(present)) or 'nothing'} instead of {', '.join(sorted(files))}")
    for name, entry in files.items():
        path = folder / name
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            _changed(folder, f"{name} is not a regular file")
        if not isinstance(entry, dict) or info.st_size != entry.get("size"):
            _changed(folder, f"{name} has {info.st_size} bytes, not {entry.get('size') if isinstance(entry, dict) else '?'}")
        if cached_sha256(path, _hash_cache(folder)) != entry.get("sha256"):
            _changed(folder, f"the sha256 of {name} is not the one recorded")


def _changed(folder: Path, why: str):
    warnings.warn(f"the cached ONNX export {printable(str(folder))} changed since it was made ({why}); "
                  "it is discarded and exported again", ExportWarning)
    raise ExportChanged(f"{folder}: {why}")


def publish(checked: Path, path: Path) -> None:
    """Publish a checked export as the folder of `path`: ONNX Runtime's optimised graph with its
    weights as external data, and a manifest of their sha256. The checked file is consumed.

    Fusing the graph once here, not at every start, saves ~35 ms a load with identical outputs. The
    saved level is EXTENDED, which does not depend on the CPU (ALL adds layout changes for this CPU),
    so a cache shared between machines stays valid; sessions still apply ALL when they load it.
    """
    import onnxruntime as ort

    folder = path.parent
    export_dir = private_folder(folder.parent, parents=True)
    remove_stale_temps(export_dir)
    staging = Path(tempfile.mkdtemp(dir=export_dir, prefix=f"{folder.name}.{os.getpid()}.", suffix=".tmp"))
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
        digests = {name: file_sha256(staging / name) for name in EXPORT_FILES if (staging / name).is_file()}
        manifest = {"files": {name: {"sha256": d, "size": (staging / name).stat().st_size} for name, d in digests.items()}}
        write_atomic(staging / MANIFEST_FILE, json.dumps(manifest, indent=1).encode("utf-8"))
        if os.path.lexists(folder):
            if _is_whole(folder):
                return  # another process published the same export first: theirs is as good
            _remove(folder)  # a damaged or changed earlier export
        try:
            staging.rename(folder)
        except OSError:
            if not _is_whole(folder):
                raise
            return
        for name, digest in digests.items():  # the first session need not hash them again
            remember_sha256(folder / name, digest, _hash_cache(folder))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        checked.unlink(missing_ok=True)
        legacy = folder.with_name(f"{folder.name}.onnx")  # the single-file export of 0.1
        if os.path.lexists(legacy) and not os.path.isdir(legacy):
            legacy.unlink()


def _is_whole(folder: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExportWarning)
            verify_export(folder)
    except (ExportChanged, OSError):
        return False
    return True


def _remove(folder: Path) -> None:
    """Remove an export folder of ours: a link is unlinked (never followed), a folder removed."""
    if not EXPORT_FOLDER.fullmatch(folder.name):
        raise ExportError(f"refusing to remove {folder}: not an export folder of the tool")
    if os.path.islink(folder) or not os.path.isdir(folder):
        os.unlink(folder)
    else:
        shutil.rmtree(folder)


def discard(path: Path) -> None:
    """Remove an export that fails to load or to verify, so that it is made again."""
    try:
        _remove(Path(path).parent)
    except (OSError, ExportError):
        pass


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
    then publishes it); when tracing or writing fails, the temporary file is removed."""
    import torch

    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names + outputs}
    export_dir = private_folder(path.parent.parent, parents=True)
    remove_stale_temps(export_dir)  # e.g. the 87 MB raw export of a process killed mid-export
    fd, name = tempfile.mkstemp(dir=export_dir, prefix=f"{path.parent.name}.{os.getpid()}.", suffix=".raw.onnx")
    os.close(fd)
    tmp = Path(name)
    try:
        with TORCH_WORK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, dummy, str(tmp), input_names=names, output_names=outputs,
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not stay full of a half-written export
        raise
    return tmp
