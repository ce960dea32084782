"""The saved index of one article: FAISS vectors, BM25 postings and a JSON sidecar, reused until
something changes.

The sidecar records everything the index depends on (article sha256, model and its weights'
sha256, chunking, format version) and the name, size and checksum of each data file, so a changed
input or a damaged file is noticed and the index rebuilt, with the reason said. Writes are
crash-safe: the data files go to new names, then the sidecar is swapped in by rename, then old
files are removed; a process killed at any point leaves the old index or the new one, never a mix.
Two processes building the same index take turns on a file lock. No pickle is read or written.
When the cache cannot be written (read-only, disk full) or must not be used (another user's folder,
one others may write to, a symbolic link; see `index/private_files.py`) the index lives in memory,
with a warning.

A big article is what this layout is for: a 5 MB article has ~18,000 passages, whose vectors
(27 MB) are memory-mapped by FAISS and whose BM25 postings (a few MB) are memory-mapped by numpy
after their checksum is verified, so a cold `ask` neither copies them nor tokenises the article.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from article_qa.index import cache_layout
from article_qa.index.article import Article
from article_qa.index.cache_layout import INDEX_LOCK, SIDECAR, CacheLayout
from article_qa.index.private_files import (
    open_regular,
    private_folder,
    read_regular,
    remove_stale_temps,
    subfolder_problem,
    write_atomic,
)
from article_qa.index.embeddings import Embedder, Progress
from article_qa.index.lexical import BM25
from article_qa.index.passages import Chunking, Passage, split_passages
from article_qa.index.printable import printable

FORMAT = "article-qa-index"
VERSION = 2  # 2: BM25 postings saved beside the vectors
LOCK_TIMEOUT_S = 600
MAX_SIDECAR_BYTES = 64 * 1024 * 1024  # a 20 MB article's passage offsets take ~2 MB
# The only data files a sidecar may name: the tool's own names, inside the key folder. A sidecar
# naming "/dev/zero" or "../../somewhere" is an incomplete index, not an instruction.
DATA_FILES = {
    "dense": re.compile(r"dense-[0-9a-f]{16}\.faiss"),
    "lexical": re.compile(r"lexical-[0-9a-f]{16}\.bin"),
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    lexical: BM25 | None = None  # built from the passages when not given

    def __post_init__(self):
        if self.lexical is None:
            self.lexical = BM25([p.text for p in self.passages])


class IndexWarning(UserWarning):
    """The index could not be saved, or the cache folder must not be used; it is used from memory."""


def index_key(article: Article, embedder: Embedder) -> str:
    """The name of the article's index folder in the cache (`CacheLayout.index_folder`)."""
    return cache_layout.index_key(article.sha256, embedder.model.name)


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
    layout = CacheLayout.at(index_dir)
    root = layout.root
    problem = layout.problem()
    if problem:
        warnings.warn(f"not using the cache folder {printable(str(root))}: {problem}; the index is kept "
                      "in memory and the models are not exported (slower)", IndexWarning)
        return _in_memory(article, embedder, chunking, progress, problem, started)
    folder = layout.index_folder(article.sha256, embedder.model.name)
    expected = _expected_meta(article, embedder, chunking)
    if not rebuild:
        loaded, reason = _try_load(folder, expected, article, embedder, chunking, started)
        if loaded is not None:
            return loaded
    else:
        reason = "rebuild requested"
    try:
        _make_private_dir(folder)
        from filelock import FileLock

        lock = FileLock(str(folder / INDEX_LOCK), timeout=LOCK_TIMEOUT_S)
        lock.acquire()
    except OSError as err:
        return _cannot_write(folder, err, article, embedder, chunking, progress, None, started)
    try:
        if not rebuild:
            # Another process may have built it while we waited for the lock.
            loaded, _ = _try_load(folder, expected, article, embedder, chunking, started)
            if loaded is not None:
                return loaded
        built = _build(article, embedder, chunking, progress)
        try:
            _save(folder, expected, *built)
        except OSError as err:  # disk full, read-only: keep what was built instead of encoding again
            return _cannot_write(folder, err, article, embedder, chunking, progress, built, started)
        _export_quietly(embedder)
    finally:
        lock.release()
    passages, vectors, lexical = built
    action = "built" if reason is None else "rebuilt"
    status = IndexStatus(action, reason, folder, time.monotonic() - started)
    return ArticleIndex(article, passages, _faiss_index(vectors), embedder, chunking, status, lexical)


def _cannot_write(folder, err, article, embedder, chunking, progress, built, started) -> ArticleIndex:
    why = str(err.strerror or err)
    warnings.warn(f"cannot write the index to {printable(str(folder))} ({why}); using it from memory",
                  IndexWarning)
    return _in_memory(article, embedder, chunking, progress, why, started, built)


def _in_memory(article, embedder, chunking, progress, why, started, built=None) -> ArticleIndex:
    passages, vectors, lexical = built or _build(article, embedder, chunking, progress)
    status = IndexStatus("in-memory", why, None, time.monotonic() - started)
    return ArticleIndex(article, passages, _faiss_index(vectors), embedder, chunking, status, lexical)


def _expected_meta(article: Article, embedder: Embedder, chunking: Chunking) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "article": {"sha256": article.sha256, "chars": len(article.text)},
        "model": {"name": embedder.model.name, "sha256": embedder.model.sha256},
        "chunking": chunking.to_dict(),
    }


class _Damaged(Exception):
    """A saved data file that cannot be used; the message is the reason shown to the user."""


def _try_load(folder, expected, article, embedder, chunking, started) -> tuple[ArticleIndex | None, str | None]:
    """The saved index if it matches `expected`, else (None, why it cannot be used)."""
    problem = subfolder_problem(folder)
    if problem:
        return None, f"the index folder cannot be used ({problem})"
    try:
        meta = json.loads(read_regular(folder / SIDECAR, MAX_SIDECAR_BYTES))
    except FileNotFoundError:
        return None, None
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
        passages = _passages(meta["passages"], article.text)
        files = {kind: _file_entry(meta["files"], kind) for kind in DATA_FILES}
    except (KeyError, TypeError, ValueError):
        return None, "the saved index is incomplete"
    try:
        vectors = _load_vectors(folder, files["dense"])
        lexical = _load_lexical(folder, files["lexical"])
    except FileNotFoundError:
        return None, "the saved index is incomplete"
    except _Damaged as err:
        return None, str(err)
    except OSError:
        return None, "the saved index is incomplete"
    if vectors.ntotal != len(passages) or vectors.d != meta.get("dim") or lexical.n_docs != len(passages):
        return None, "the saved vectors do not match the passages"
    status = IndexStatus("reused", None, folder, time.monotonic() - started)
    return ArticleIndex(article, passages, vectors, embedder, chunking, status, lexical), None


def _passages(offsets, text: str) -> list[Passage]:
    passages = []
    for i, (start, end) in enumerate(offsets):
        if type(start) is not int or type(end) is not int or not 0 <= start < end <= len(text):
            raise ValueError("passage offsets outside the article")
        passages.append(Passage(i, start, end, text[start:end]))
    return passages


def _file_entry(files: dict, kind: str) -> dict:
    entry = files[kind]
    if not (isinstance(entry["name"], str) and DATA_FILES[kind].fullmatch(entry["name"])):
        raise ValueError(f"{kind}: not one of the tool's own file names")
    if not (isinstance(entry["sha256"], str) and _SHA256.fullmatch(entry["sha256"])):
        raise ValueError(f"{kind}: no checksum")
    if type(entry.get("size")) is not int or entry["size"] < 0:
        raise ValueError(f"{kind}: no size")
    return entry


def _verified_fd(folder: Path, entry: dict, what: str) -> int:
    """A descriptor of the data file `entry` names, after its size and sha256 were checked."""
    fd = open_regular(folder / entry["name"])
    try:
        if os.fstat(fd).st_size != entry["size"]:
            raise _Damaged(f"the saved {what} are damaged (size {os.fstat(fd).st_size}, not {entry['size']})")
        digest = hashlib.sha256()
        while block := os.read(fd, 1 << 20):
            digest.update(block)
        if digest.hexdigest() != entry["sha256"]:
            raise _Damaged(f"the saved {what} are damaged (checksum mismatch)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _load_vectors(folder: Path, entry: dict):
    import faiss

    path = folder / entry["name"]
    fd = _verified_fd(folder, entry, "vectors")
    try:
        flag = getattr(faiss, "IO_FLAG_MMAP_IFC", None)
        try:
            if flag is None:  # an older faiss: read a copy
                os.lseek(fd, 0, os.SEEK_SET)
                data = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
                return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            vectors = faiss.read_index(str(path), flag)
        except RuntimeError:  # a file faiss cannot read, even though its checksum matches
            raise _Damaged("the saved vectors are damaged (unreadable)") from None
        # FAISS opened the file by name: it must be the very file whose checksum was just read.
        checked, opened = os.fstat(fd), os.lstat(path)
        if (checked.st_dev, checked.st_ino) != (opened.st_dev, opened.st_ino):
            raise _Damaged("the saved vectors changed while being read")
        return vectors
    finally:
        os.close(fd)


def _load_lexical(folder: Path, entry: dict) -> BM25:
    fd = _verified_fd(folder, entry, "lexical statistics")
    try:
        buffer = mmap.mmap(fd, entry["size"], access=mmap.ACCESS_READ) if entry["size"] else b""
        try:
            return BM25.from_buffer(buffer, entry)
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
            raise _Damaged(f"the saved lexical statistics are damaged ({err})") from None
    finally:
        os.close(fd)


def _build(article: Article, embedder: Embedder, chunking: Chunking, progress: Progress | None):
    limit = min(chunking.max_tokens, embedder.max_tokens - 2)
    effective = Chunking(limit, chunking.min_tokens, chunking.overlap_sentences)
    passages = split_passages(article.text, embedder.token_spans, effective)
    vectors = embedder.encode([p.text for p in passages], progress=progress)
    return passages, vectors, BM25([p.text for p in passages])


def _faiss_index(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _save(folder: Path, expected: dict, passages: list[Passage], vectors: np.ndarray, lexical: BM25) -> None:
    import faiss

    files = {}
    for kind, data, extension, extra in (
        ("dense", faiss.serialize_index(_faiss_index(vectors)).tobytes(), "faiss", {}),
        ("lexical", lexical.to_bytes(), "bin", lexical.shape()),
    ):
        digest = hashlib.sha256(data).hexdigest()
        name = f"{kind}-{digest[:16]}.{extension}"
        write_atomic(folder / name, data)
        files[kind] = {"name": name, "sha256": digest, "size": len(data), **extra}
    meta = dict(expected)
    meta.update(
        dim=int(vectors.shape[1]),
        passages=[[p.start, p.end] for p in passages],
        files=files,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    write_atomic(folder / SIDECAR, json.dumps(meta, indent=1).encode("utf-8"))
    keep = {entry["name"] for entry in files.values()}
    for entry in os.scandir(folder):
        if entry.name not in keep and any(p.fullmatch(entry.name) for p in DATA_FILES.values()):
            os.unlink(entry.path)  # an older index's data file (a link is removed, never followed)
    remove_stale_temps(folder)  # of writers killed mid-write
    remove_stale_temps(folder.parent)  # e.g. the hash cache's, in the cache folder itself


def _make_private_dir(folder: Path) -> None:
    private_folder(folder.parent, parents=True)
    private_folder(folder)


def _export_quietly(embedder: Embedder) -> None:
    """Export the encoder for fast later questions; a failed export only costs speed, and is said
    once (`export_failed`)."""
    try:
        embedder.export()
    except Exception as err:  # noqa: BLE001 - any exporter failure falls back to PyTorch
        from article_qa.index.onnx_export import export_failed

        export_failed(err)


class SavedIndexError(Exception):
    """A saved index that cannot be opened as it is (`open_saved_index`, `open_saved_corpus`);
    str(err) is one line: the folder and why."""


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot be read as an index folder here (missing, not a folder, no permission),
    or None. A batch worker on another machine sees the folder only through a shared file system."""
    try:
        if not folder.is_dir():
            return "no such folder" if not os.path.lexists(folder) else "not a folder"
        os.listdir(folder)
    except OSError as err:
        return str(err.strerror or err)
    return None


def open_saved_index(folder: Path, article: Article, embedder: Embedder, chunking: Chunking = Chunking()) -> ArticleIndex:
    """The article's index as saved in `folder`, opened read-only: never built, never written.

    The rule for a batch worker (`batch/distributed.py`): the driver has already built or
    refreshed the index, so a worker that cannot load it must say why instead of building its own
    copy (minutes, and a second writer on a shared folder). Raises SavedIndexError."""
    problem = folder_problem(folder)
    if problem is None:
        loaded, reason = _try_load(folder, _expected_meta(article, embedder, chunking), article, embedder, chunking,
                                   time.monotonic())
        if loaded is not None:
            return loaded
        problem = reason or "it holds no saved index"
    raise SavedIndexError(f"cannot open the index folder {printable(str(folder))}: {problem}")
