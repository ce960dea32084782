"""The saved index of one article: FAISS vectors plus a JSON sidecar, reused until something changes.

The sidecar records everything the vectors depend on (article sha256, model and its weights'
sha256, chunking, format version) and the checksum of the FAISS file, so a changed input or a
damaged file is noticed and the index rebuilt, with the reason said. Writes are crash-safe: the
vectors go to a new file name, then the sidecar is swapped in by rename, then old files are
removed; a process killed at any point leaves the old index or the new one, never a mix. Two
processes building the same index take turns on a file lock. No pickle is read or written. When
the cache cannot be written (read-only, disk full) the index lives in memory with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.article import Article
from index.embeddings import Embedder, Progress
from index.lexical import BM25
from index.passages import Chunking, Passage, split_passages

FORMAT = "article-qa-index"
VERSION = 1
SIDECAR = "index.json"
LOCK_TIMEOUT_S = 600
ENV_INDEX_DIR = "ARTICLE_QA_INDEX_DIR"


def default_index_dir() -> Path:
    """`$ARTICLE_QA_INDEX_DIR`, else the per-user cache folder (e.g. ~/.cache/article-qa)."""
    if os.environ.get(ENV_INDEX_DIR):
        return Path(os.environ[ENV_INDEX_DIR]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("article-qa", appauthor=False))


@dataclass(frozen=True)
class IndexStatus:
    """What `open_index` did, for the user: built, reused, rebuilt (and why) or kept in memory."""

    action: str
    reason: str | None
    path: Path | None
    seconds: float


@dataclass
class ArticleIndex:
    """An article's passages with their dense vectors (FAISS) and lexical statistics (BM25)."""

    article: Article
    passages: list[Passage]
    vectors: "object"  # faiss.IndexFlatIP over unit vectors: inner product = cosine
    embedder: Embedder
    chunking: Chunking
    status: IndexStatus
    lexical: BM25 = field(init=False)

    def __post_init__(self):
        self.lexical = BM25([p.text for p in self.passages])


class IndexWarning(UserWarning):
    """The index could not be saved; it is used from memory."""


def index_key(article: Article, embedder: Embedder) -> str:
    model = hashlib.sha256(embedder.model.name.encode()).hexdigest()[:8]
    return f"{article.sha256[:16]}-{model}"


def open_index(
    article: Article,
    embedder: Embedder,
    chunking: Chunking = Chunking(),
    index_dir: Path | None = None,
    progress: Progress | None = None,
    rebuild: bool = False,
) -> ArticleIndex:
    """The article's index: loaded from the cache when still valid, otherwise built and saved."""
    started = time.monotonic()
    folder = Path(index_dir or default_index_dir()) / index_key(article, embedder)
    expected = _expected_meta(article, embedder, chunking)
    if not rebuild:
        loaded, reason = _try_load(folder, expected, article, embedder, chunking, started)
        if loaded is not None:
            return loaded
    else:
        reason = "rebuild requested"
    built = None
    try:
        _make_private_dir(folder)
        from filelock import FileLock

        with FileLock(str(folder / ".lock"), timeout=LOCK_TIMEOUT_S):
            if not rebuild:
                # Another process may have built it while we waited for the lock.
                loaded, _ = _try_load(folder, expected, article, embedder, chunking, started)
                if loaded is not None:
                    return loaded
            built = passages, vectors = _build(article, embedder, chunking, progress)
            _save(folder, expected, passages, vectors)
            _export_quietly(embedder)
    except OSError as err:
        warnings.warn(f"cannot write the index to {folder} ({err.strerror or err}); using it from memory", IndexWarning)
        # When only saving failed (disk full), keep what was built instead of encoding it all again.
        passages, vectors = built or _build(article, embedder, chunking, progress)
        status = IndexStatus("in-memory", str(err.strerror or err), None, time.monotonic() - started)
        return ArticleIndex(article, passages, _faiss_index(vectors), embedder, chunking, status)
    action = "built" if reason is None else "rebuilt"
    status = IndexStatus(action, reason, folder, time.monotonic() - started)
    return ArticleIndex(article, passages, _faiss_index(vectors), embedder, chunking, status)


def _expected_meta(article: Article, embedder: Embedder, chunking: Chunking) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "article": {"sha256": article.sha256, "chars": len(article.text)},
        "model": {"name": embedder.model.name, "sha256": embedder.model.sha256},
        "chunking": chunking.to_dict(),
    }


def _try_load(folder, expected, article, embedder, chunking, started) -> tuple[ArticleIndex | None, str | None]:
    """The saved index if it matches `expected`, else (None, why it cannot be used)."""
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        return None, None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "the saved index's sidecar is unreadable"
    if not isinstance(meta, dict):
        return None, "the saved index's sidecar is unreadable"
    for key, label in (
        ("format", "it is not an article-qa index"),
        ("version", "it was saved by another version"),
        ("article", "the article changed"),
        ("model", "the model changed"),
        ("chunking", "the chunking changed"),
    ):
        if meta.get(key) != expected[key]:
            return None, label
    try:
        passages = [Passage(i, s, e, article.text[s:e]) for i, (s, e) in enumerate(meta["passages"])]
        dense = meta["files"]["dense"]
        path = folder / dense["name"]
        data = path.read_bytes()
        checksum = dense["sha256"]
    except (OSError, KeyError, TypeError, ValueError):
        return None, "the saved index is incomplete"
    if hashlib.sha256(data).hexdigest() != checksum:
        return None, "the saved vectors are damaged (checksum mismatch)"
    import faiss

    try:
        vectors = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError:  # a file faiss cannot read, even though its checksum matches
        return None, "the saved vectors are damaged (unreadable)"
    if vectors.ntotal != len(passages) or vectors.d != meta.get("dim"):
        return None, "the saved vectors do not match the passages"
    status = IndexStatus("reused", None, folder, time.monotonic() - started)
    return ArticleIndex(article, passages, vectors, embedder, chunking, status), None


def _build(article: Article, embedder: Embedder, chunking: Chunking, progress: Progress | None):
    limit = min(chunking.max_tokens, embedder.max_tokens - 2)
    effective = Chunking(limit, chunking.min_tokens, chunking.overlap_sentences)
    passages = split_passages(article.text, embedder.token_spans, effective)
    vectors = embedder.encode([p.text for p in passages], progress=progress)
    return passages, vectors


def _faiss_index(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _save(folder: Path, expected: dict, passages: list[Passage], vectors: np.ndarray) -> None:
    import faiss

    data = faiss.serialize_index(_faiss_index(vectors)).tobytes()
    digest = hashlib.sha256(data).hexdigest()
    name = f"dense-{digest[:16]}.faiss"
    _write_atomic(folder / name, data)
    meta = dict(expected)
    meta.update(
        dim=int(vectors.shape[1]),
        passages=[[p.start, p.end] for p in passages],
        files={"dense": {"name": name, "sha256": digest}},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    _write_atomic(folder / SIDECAR, json.dumps(meta, indent=1).encode("utf-8"))
    for old in folder.glob("dense-*.faiss"):
        if old.name != name:
            old.unlink(missing_ok=True)
    # Temp files of writers killed mid-write; every writer holds the lock, so none is in use now.
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _make_private_dir(folder: Path) -> None:
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)


def _export_quietly(embedder: Embedder) -> None:
    """Export the encoder for fast later questions; a failed export only costs speed."""
    try:
        embedder.export()
    except Exception as err:  # noqa: BLE001 - any exporter failure falls back to PyTorch
        warnings.warn(f"could not export the model to ONNX ({err}); questions will use PyTorch", IndexWarning)
