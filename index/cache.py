"""The cache folder as a user sees it: where it is, how big, and emptying it.

Indexes and model exports accumulate there (173 MB after one run: the two ONNX exports are most of
it), and users asked where the space went. Only what article-qa writes is ever removed: the folder
can be any path (`--index-dir`, `ARTICLE_QA_INDEX_DIR`), so `clear_cache` deletes index folders, the
model exports and the checksum cache it recognises and leaves anything else, which it reports. The
chat history is kept: it is what the user typed, not a cache. The rules of `index/private_files.py`
hold here too: a cache folder another user owns or others may write to is not cleared at all, a
folder inside it that is not the user's own is left alone, and the temporary file of a process
still running is not pulled from under it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from article_qa.index.cache_layout import CHAT_HISTORY, EXPORTS, HASH_CACHE_FILE, CacheLayout, is_index_folder
from article_qa.index.private_files import UnsafeFolder, folder_problem, is_stale_temp, subfolder_problem
_KIND_NAMES = {"index": "article indexes", "models": "model exports (ONNX)", "hashes": "checksum cache",
               "history": "chat history", "other": "not article-qa's"}


@dataclass(frozen=True)
class CacheEntry:
    """One thing in the cache folder: its name, what it is, and its size in bytes."""

    name: str
    kind: str  # "index", "models", "hashes", "history" or "other"
    size: int

    @property
    def removable(self) -> bool:
        return self.kind in ("index", "models", "hashes")


@dataclass(frozen=True)
class CacheUsage:
    path: Path
    entries: tuple[CacheEntry, ...]

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind → (count, bytes), for the kinds present, in a fixed order."""
        out: dict[str, tuple[int, int]] = {}
        for kind in _KIND_NAMES:
            found = [e for e in self.entries if e.kind == kind]
            if found:
                out[kind] = (len(found), sum(e.size for e in found))
        return out


def cache_folder(index_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder in use (`CacheLayout.at`)."""
    return CacheLayout.at(index_dir).root


def kind_name(kind: str) -> str:
    return _KIND_NAMES[kind]


def cache_usage(folder: Path) -> CacheUsage:
    """What the cache folder holds (nothing when it does not exist)."""
    if not folder.is_dir():
        return CacheUsage(folder, ())
    entries = [CacheEntry(child.name, _kind(child), _size(child)) for child in sorted(folder.iterdir())]
    return CacheUsage(folder, tuple(entries))


def clear_cache(folder: Path) -> tuple[int, CacheUsage]:
    """Remove article-qa's indexes, model exports and checksum cache; return the bytes freed and
    what is left (the chat history and anything that is not article-qa's). Raises UnsafeFolder
    for a folder that is not safely the user's own."""
    problem = folder_problem(folder)
    if problem:
        raise UnsafeFolder(folder, problem)
    freed = 0
    for entry in cache_usage(folder).entries:
        if not entry.removable:
            continue
        path = folder / entry.name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        freed += entry.size
    return freed, cache_usage(folder)


def _kind(path: Path) -> str:
    if path.is_symlink():
        return "other"
    if path.is_dir():
        if subfolder_problem(path):
            return "other"  # another user's folder, or one others may write to: not ours to empty
        if path.name == EXPORTS:
            return "models"
        if is_index_folder(path):
            return "index"
        return "other"
    if path.name == HASH_CACHE_FILE:
        return "hashes"
    if path.name.startswith(f".{HASH_CACHE_FILE}.") and is_stale_temp(path.name):
        return "hashes"  # a dead process's half-written checksum cache
    if path.name == CHAT_HISTORY:
        return "history"
    return "other"


def _size(path: Path) -> int:
    """Bytes on disk under `path`, links not followed."""
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
