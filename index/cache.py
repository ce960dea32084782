"""The cache folder as a user sees it: where it is, how big, and emptying it.

Indexes and model exports accumulate there (173 MB after one run: the two ONNX exports are most of
it), and users asked where the space went. The folder can be any path (`--index-dir`,
`ARTICLE_QA_INDEX_DIR`), so `clear_cache` removes only what the tool recorded making:

- the cache folder must hold the tool's marker (`.article-qa-cache`, written by `private_folder`
  whenever the tool writes into a folder), or nothing in it is removed and the caller says why;
- an index folder (`<16 hex>-<8 hex>`) or `onnx` is removed only when it holds the marker too, and
  only when everything in it is of the tool's own layout (a folder holding anything else is kept);
- an index folder whose build lock is held (an `index` or a first question running now) is kept,
  and so is a temporary file of a process still running;
- `hashes.json` is removed only when it is the tool's checksum cache (every entry a file state and
  a sha256);
- `pages` (web pages read by URL) is emptied when it holds the marker: its pages and records
  (`<32 hex>.page`, `<32 hex>.json`) and dead processes' temporary files go, anything else stays
  (and with it the folder).

What was made by a version without markers is recognised by its layout but kept (the caller says
so: it can be removed by hand). The chat history is kept: it is what the user typed, not a cache.
The rules of `index/private_files.py` hold here too: a cache folder another user owns or others may
write to is not cleared at all, and a folder inside it that is not the user's own is left alone.
The names of the cache's places are `index/cache_layout.py`'s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from article_qa.index.cache_layout import (
    CHAT_HISTORY,
    CORPUS_DATA_FILES,
    CORPUS_DATABASE,
    EXPORTS,
    HASH_CACHE_FILE,
    INDEX_LOCK,
    PAGES,
    SIDECAR,
    CacheLayout,
    is_index_folder_name,
)
from article_qa.index.embedding_model import MAX_HASH_CACHE_BYTES
from article_qa.index.onnx_export import EXPORT_FILES, EXPORT_FOLDER, MANIFEST_FILE
from article_qa.index.private_files import (
    MARKER,
    UnsafeFolder,
    folder_problem,
    is_marked,
    is_stale_temp,
    read_regular,
    subfolder_problem,
    temp_base,
)
from article_qa.index.store import DATA_FILES

_LEGACY_EXPORT = re.compile(r"(encoder|reader)-[0-9a-f]{16}\.onnx")  # the single-file exports of 0.1
_HASH_KEY = re.compile(r".+\|\d+\|\d+\|\d+\|\d+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PAGE_FILE = re.compile(r"[0-9a-f]{32}\.(?:page|json)")
_TEMP_BASES = {f".{HASH_CACHE_FILE}", f".{CHAT_HISTORY}", f".{MARKER}"}
_KIND_NAMES = {"index": "article indexes", "models": "model exports (ONNX)", "pages": "web pages read by URL",
               "hashes": "checksum cache",
               "history": "chat history", "other": "not article-qa's"}
# Why `clear_cache` kept something, in the order they are reported.
KEPT = {
    "in use": "in use by a running article-qa",
    "unmarked": "article-qa's layout without its marker (made by an older version; remove by hand if unneeded)",
    "foreign": "article-qa's folders holding files it does not make",
    "history": "chat history",
    "other": "not article-qa's",
}


@dataclass(frozen=True)
class CacheEntry:
    """One thing in the cache folder: its name, what it is, and its size in bytes."""

    name: str
    kind: str  # "index", "models", "hashes", "history" or "other"
    size: int


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


@dataclass
class Cleared:
    """What `clear_cache` did: the bytes it freed, and what it kept, by reason (see KEPT)."""

    freed: int = 0
    kept: dict[str, list[int]] = field(default_factory=dict)  # reason → [count, bytes]

    def keep(self, reason: str, size: int) -> None:
        count_and_size = self.kept.setdefault(reason, [0, 0])
        count_and_size[0] += 1
        count_and_size[1] += size

    def by_reason(self) -> list[tuple[str, int, int]]:
        """(reason, count, bytes) in KEPT's order."""
        return [(r, *self.kept[r]) for r in KEPT if r in self.kept]


def cache_folder(index_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder in use (`CacheLayout.at`)."""
    return CacheLayout.at(index_dir).root


def kind_name(kind: str) -> str:
    return _KIND_NAMES[kind]


def cache_usage(folder: Path) -> CacheUsage:
    """What the cache folder holds (nothing when it does not exist); the marker is not counted."""
    if not folder.is_dir():
        return CacheUsage(folder, ())
    entries = [CacheEntry(child.name, _kind(child), _size(child))
               for child in sorted(folder.iterdir()) if child.name != MARKER]
    return CacheUsage(folder, tuple(entries))


def clear_cache(folder: Path) -> Cleared:
    """Remove what the tool recorded making in the cache folder (see the module's rules); return
    what was freed and kept. Raises UnsafeFolder for a folder that is not safely the user's own,
    or that is not an article-qa cache: then nothing is removed."""
    problem = folder_problem(folder)
    if problem:
        raise UnsafeFolder(folder, problem)
    cleared = Cleared()
    if not os.path.lexists(folder):
        return cleared
    if not is_marked(folder):
        raise UnsafeFolder(folder, _unmarked_reason(folder))
    for entry in cache_usage(folder).entries:
        _clear_entry(folder / entry.name, entry, cleared)
    return cleared


def _unmarked_reason(folder: Path) -> str:
    if any(e.kind in ("index", "models", "hashes") for e in cache_usage(folder).entries):
        return (f"it has no {MARKER} marker, so nothing in it is known to be article-qa's (a cache made "
                "by an older article-qa has none: remove what you do not need by hand)")
    return f"it is not an article-qa cache (it has no {MARKER} marker)"


def _clear_entry(path: Path, entry: CacheEntry, cleared: Cleared) -> None:
    if entry.kind == "index":
        _clear_index(path, entry.size, cleared)
    elif entry.kind == "models":
        _clear_exports(path, entry.size, cleared)
    elif entry.kind == "pages":
        _clear_pages(path, entry.size, cleared)
    elif entry.kind == "hashes" and temp_base(path.name) is not None and not is_stale_temp(path.name):
        cleared.keep("in use", entry.size)  # being written by a process still running
    elif entry.kind == "hashes":
        _remove(path)
        cleared.freed += entry.size
    else:
        cleared.keep(entry.kind, entry.size)


def _clear_index(path: Path, size: int, cleared: Cleared) -> None:
    """Remove a marked index folder of the tool's layout unless its build lock is held."""
    if not is_marked(path):
        return cleared.keep("unmarked", size)
    if not all(_index_file(e) for e in os.scandir(path)):
        return cleared.keep("foreign", size)
    with _build_lock(path) as free:
        if not free:
            return cleared.keep("in use", size)
        shutil.rmtree(path)
    cleared.freed += size


def _index_file(entry: os.DirEntry) -> bool:
    """Whether `entry` is a file the tool writes into an index folder (or a corpus's tantivy folder)."""
    if entry.is_dir(follow_symlinks=False):
        return entry.name.endswith(".tantivy") and CORPUS_DATA_FILES.fullmatch(entry.name) is not None
    name = entry.name
    return (name in (SIDECAR, MARKER, CORPUS_DATABASE, CORPUS_DATABASE + "-journal") or name.startswith(INDEX_LOCK)
            or temp_base(name) is not None or CORPUS_DATA_FILES.fullmatch(name) is not None
            or any(p.fullmatch(name) for p in DATA_FILES.values()))


@contextmanager
def _build_lock(folder: Path) -> Iterator[bool]:
    """Hold the index folder's build lock (the one `open_index` takes) if nobody holds it: yields
    whether it was free."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / INDEX_LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _clear_exports(folder: Path, size: int, cleared: Cleared) -> None:
    """Remove the exports, checksum cache and dead temporary files in a marked `onnx` folder;
    the folder goes too when nothing else is left in it."""
    _clear_marked(folder, size, cleared, _export_entry_problem)


def _clear_pages(folder: Path, size: int, cleared: Cleared) -> None:
    """Remove the saved pages and records and dead temporary files of a marked `pages` folder; the
    folder goes too when nothing else is left in it."""
    _clear_marked(folder, size, cleared, _page_entry_problem)


def _clear_marked(folder: Path, size: int, cleared: Cleared, problem) -> None:
    """Remove each entry of a folder the tool marked as its own unless `problem(entry)` gives a
    reason to keep it (counted in `cleared`); the folder goes too when nothing is left in it. An
    unmarked folder is kept whole."""
    if not is_marked(folder):
        return cleared.keep("unmarked", size)
    left = 0
    for entry in os.scandir(folder):
        if entry.name == MARKER:
            continue
        path, entry_size = Path(entry.path), _size(Path(entry.path))
        reason = problem(entry)
        if reason:
            cleared.keep(reason, entry_size)
            left += 1
            continue
        _remove(path)
        cleared.freed += entry_size
    if not left:
        os.unlink(folder / MARKER)
        os.rmdir(folder)


def _page_entry_problem(entry: os.DirEntry) -> str | None:
    """Why an entry of the `pages` folder must stay, or None when it is a saved page or record or a
    dead writer's temporary file."""
    if temp_base(entry.name) is not None and not entry.is_dir(follow_symlinks=False):
        return None if is_stale_temp(entry.name) else "in use"
    if _PAGE_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
        return None
    return "foreign"


def _export_entry_problem(entry: os.DirEntry) -> str | None:
    """Why an entry of the `onnx` folder must stay (a KEPT reason), or None when it is the tool's
    to remove: a published export, a 0.1 single-file export, the checksum cache, a dead writer's
    temporary file."""
    name = entry.name
    if temp_base(name) is not None:
        return None if is_stale_temp(name) else "in use"
    if entry.is_symlink():
        return "other"
    if EXPORT_FOLDER.fullmatch(name) and entry.is_dir() and subfolder_problem(Path(entry.path)) is None:
        names = os.listdir(entry.path)
        allowed = set(EXPORT_FILES) | {MANIFEST_FILE}
        ok = set(names) <= allowed and not any(os.path.isdir(os.path.join(entry.path, n)) for n in names)
        return None if ok else "foreign"
    if _LEGACY_EXPORT.fullmatch(name) and entry.is_file():
        return None
    if name == HASH_CACHE_FILE and _is_hash_cache(Path(entry.path)):
        return None
    return "other"


def _remove(path: Path) -> None:
    """Remove a file or folder; a link is unlinked, never followed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _is_hash_cache(path: Path) -> bool:
    """Whether `path` is the tool's checksum cache: a JSON object of file state → sha256."""
    try:
        data = json.loads(read_regular(path, MAX_HASH_CACHE_BYTES))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(
        _HASH_KEY.fullmatch(k) and isinstance(v, str) and _SHA256.fullmatch(v) for k, v in data.items())


def _kind(path: Path) -> str:
    if path.is_symlink():
        return "other"
    if path.is_dir():
        if subfolder_problem(path):
            return "other"  # another user's folder, or one others may write to: not ours to empty
        if path.name == EXPORTS:
            return "models"
        if path.name == PAGES:
            return "pages"
        if is_index_folder_name(path.name):
            return "index"
        return "other"
    if path.name == HASH_CACHE_FILE:
        return "hashes" if _is_hash_cache(path) else "other"
    if temp_base(path.name) in _TEMP_BASES:
        return "hashes"  # a half-written checksum cache (or history, or marker)
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
