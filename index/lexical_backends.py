"""The lexical index for many articles at once: BM25 in tantivy, which adds and deletes passages.

Why tantivy (tantivy-py, Rust): a corpus changes an article at a time, so its lexical index must
delete one article's passages and add the new ones without rebuilding the rest, and it must answer
in milliseconds at a million passages. `python -m bench.lexical_compare` measured it against the
project's numpy BM25 (`index/lexical.py`) and bm25s on the same SQuAD passages (README, "Scale"):
tantivy is the only one of the three that deletes and adds in place (bm25s and `BM25` are built
once over a fixed list, so a changed article means a rebuild), and its queries are the fastest.

Tokenisation is the project's own: passages and questions go through `index.lexical.terms` (lower
case, stopwords dropped, a plural -s folded) in Python, and tantivy only splits the result at
spaces, so a word matches here exactly when it matches in the single-article BM25. tantivy's
scoring is BM25 with its fixed k1 = 1.2, b = 0.75 (the single-article index uses k1 = 1.5): the
ranking agrees closely but scores are not the same numbers (the bench reports the agreement).

A tantivy index is a folder that tantivy writes into itself, with a small `article-qa-lexical.json`
saying what it is and how it tokenises. Two ways to keep one:

- **in place**: `new_lexical_index(path=folder)`, then `save()`: tantivy's commit writes new
  segment files and then replaces its `meta.json` atomically, so a process killed mid-write leaves
  the last commit. Cheapest for a big corpus that changes an article at a time.
- **as one file** (what a store that checksums and swaps whole files wants): `save(file)` writes a
  snapshot, a 16-byte magic, a JSON list of the folder's files and their sizes, then their bytes,
  atomically (temporary file, fsync, rename); `open_lexical_index(file)` unpacks it into a private
  temporary folder (removed with the index object) and opens it there. `new_lexical_index()` with
  no path works in such a temporary folder too.

`add` and `remove` are buffered and committed by `save`, or by the next `search` or `len` (so what
was added is always searched).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
import weakref
from pathlib import Path
from typing import Protocol

import numpy as np

from article_qa.index.lexical import terms
from article_qa.index.passage_ids import checked_ids
from article_qa.index.private_files import read_regular, write_atomic

KINDS = ("tantivy",)
MARKER = "article-qa-lexical.json"
FORMAT_VERSION = 1
TOKENIZER = "article_qa.index.lexical.terms/1"  # bump when `terms` changes: old indexes are refused
_ANALYZER = "aq_terms"
WRITER_HEAP_BYTES = 128_000_000
WRITER_THREADS = 2
SNAPSHOT_MAGIC = b"ARTICLEQA-LEX01\n"
_SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
MAX_SNAPSHOT_HEADER = 16 * 1024 * 1024


class LexicalIndexError(ValueError):
    """A lexical index that cannot be used; the message is one sentence for the user."""


class LexicalIndex(Protocol):
    kind: str

    def add(self, ids: np.ndarray, texts: list[str]) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def save(self, path: Path | None = None) -> None: ...
    def __len__(self) -> int: ...


def new_lexical_index(kind: str | None = None, path: Path | None = None) -> "TantivyIndex":
    """An empty lexical index: in the folder `path` (made here; it must not exist or be empty), or
    with no path in a private temporary folder, kept with `save(file)`."""
    chosen = kind or "tantivy"
    if chosen not in KINDS:
        raise LexicalIndexError(f"unknown lexical index kind {chosen!r} (choose from {', '.join(KINDS)})")
    if path is None:
        return TantivyIndex.create(_temporary_folder(), temporary=True)
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise LexicalIndexError(f"cannot make a lexical index in {path}: it exists and is not an empty folder")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return TantivyIndex.create(path)


def open_lexical_index(path: Path) -> "TantivyIndex":
    """The lexical index in the folder `path`, or in the snapshot file `path` (see the module's
    docstring); LexicalIndexError when it is missing, not one of ours, made with other
    tokenisation, or damaged."""
    path = Path(path)
    if path.is_file() and not path.is_symlink():
        folder = _temporary_folder()
        try:
            _unpack(path, folder)
            return _open_folder(folder, shown=path, temporary=True)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    if not path.is_dir():
        raise LexicalIndexError(f"lexical index not found: {path}")
    return _open_folder(path, shown=path)


def _open_folder(path: Path, shown: Path, temporary: bool = False) -> "TantivyIndex":
    try:
        config = json.loads(read_regular(path / MARKER, 64 * 1024).decode("utf-8"))
    except FileNotFoundError:
        raise LexicalIndexError(f"{shown} is not an article-qa lexical index (it has no {MARKER})") from None
    except (OSError, ValueError) as err:
        raise LexicalIndexError(f"the lexical index {shown} is damaged (its {MARKER} is unreadable: {err})") from None
    if not isinstance(config, dict) or config.get("kind") not in KINDS or config.get("format") != FORMAT_VERSION:
        raise LexicalIndexError(f"the lexical index {shown} is of a kind or format this version does not read; "
                                "build it again")
    if config.get("tokenizer") != TOKENIZER:
        raise LexicalIndexError(f"the lexical index {shown} was tokenised by {config.get('tokenizer')!r}, not "
                                f"{TOKENIZER!r}; build it again")
    return TantivyIndex.open(path, config, shown=shown, temporary=temporary)


def fork_lexical_index(index: "TantivyIndex", path: Path) -> "TantivyIndex":
    """A copy of `index` in the new folder `path` to change, leaving `index`'s folder as it is:
    its committed files are hard-linked (copied where links cannot be made), which costs no time
    or space. Safe because tantivy never changes a file it wrote: a commit writes new segment and
    delete files and replaces meta.json and .managed.json by rename, which in `path` only
    replaces the link there. What the store uses to make each generation of a corpus."""
    index.save()
    path = Path(path)
    path.mkdir(mode=0o700)
    for entry in os.scandir(index.path):
        if not entry.is_file(follow_symlinks=False) or entry.name.startswith(".tantivy-"):
            continue
        try:
            os.link(entry.path, path / entry.name)
        except OSError:  # another file system, or links not allowed: a copy
            shutil.copyfile(entry.path, path / entry.name)
    return _open_folder(path, shown=path)


def _temporary_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="article-qa-lexical-"))  # mode 0700


def _pack(folder: Path, target: str) -> None:
    """Write the snapshot of `folder` (its regular files, tantivy's lock files left out) to `target`."""
    names = sorted(entry.name for entry in os.scandir(folder)
                   if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".tantivy-"))
    listing = [[name, (folder / name).stat().st_size] for name in names]
    header = json.dumps({"files": listing}).encode("utf-8")
    with open(target, "wb") as out:
        out.write(SNAPSHOT_MAGIC + struct.pack("<Q", len(header)) + header)
        for name, _ in listing:
            with open(folder / name, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)


def _unpack(path: Path, folder: Path) -> None:
    damaged = f"the lexical index {path} is damaged"
    with open(path, "rb") as f:
        if f.read(len(SNAPSHOT_MAGIC)) != SNAPSHOT_MAGIC:
            raise LexicalIndexError(f"{path} is not an article-qa lexical index (it does not start with its magic)")
        try:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > MAX_SNAPSHOT_HEADER:
                raise ValueError("header too long")
            files = [(str(name), int(size)) for name, size in json.loads(f.read(length).decode("utf-8"))["files"]]
        except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise LexicalIndexError(f"{damaged} (its list of files is unreadable)") from None
        total = os.fstat(f.fileno()).st_size
        if any(not _SNAPSHOT_NAME.fullmatch(n) or n in (".", "..") or size < 0 for n, size in files) or (
                f.tell() + sum(size for _, size in files) != total):
            raise LexicalIndexError(f"{damaged} (its size or its list of files is wrong: truncated?)")
        for name, size in files:
            with open(folder / name, "xb") as out:
                left = size
                while left:
                    block = f.read(min(left, 1 << 20))
                    out.write(block)
                    left -= len(block)


class TantivyIndex:
    kind = "tantivy"

    def __init__(self, path: Path, index, config: dict, temporary: bool = False):
        self.path = path  # the folder tantivy works in (a private temporary one for snapshots)
        self._index = index
        self._schema = index.schema
        self.config = config
        self._writer = None
        self._dirty = False
        self._searcher = None
        self.temporary = temporary
        if temporary:
            weakref.finalize(self, shutil.rmtree, str(path), True)

    # -- making and opening --
    @staticmethod
    def _schema_and_analyzer():
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_unsigned_field("id", indexed=True, fast=True)
        builder.add_text_field("body", tokenizer_name=_ANALYZER, index_option="freq")
        return builder.build(), tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()

    @classmethod
    def create(cls, path: Path, temporary: bool = False) -> "TantivyIndex":
        import tantivy

        schema, analyzer = cls._schema_and_analyzer()
        index = tantivy.Index(schema, path=str(path), reuse=False)
        index.register_tokenizer(_ANALYZER, analyzer)
        config = {"format": FORMAT_VERSION, "kind": "tantivy", "tokenizer": TOKENIZER,
                  "scoring": "BM25, k1 1.2, b 0.75 (tantivy's)"}
        write_atomic(path / MARKER, json.dumps(config).encode("utf-8"))
        self = cls(path, index, config, temporary)
        self._commit(force=True)  # an empty, valid index on disk from the start
        return self

    @classmethod
    def open(cls, path: Path, config: dict, shown: Path | None = None, temporary: bool = False) -> "TantivyIndex":
        import tantivy

        _, analyzer = cls._schema_and_analyzer()
        try:
            index = tantivy.Index.open(str(path))
            index.register_tokenizer(_ANALYZER, analyzer)
            index.reload()
            index.searcher().num_docs  # noqa: B018 - touches the segments: a damaged one fails here
        except (ValueError, OSError, RuntimeError) as err:
            raise LexicalIndexError(f"the lexical index {shown or path} is damaged (tantivy: {_first_line(err)})") from None
        return cls(path, index, config, temporary)

    # -- changes --
    def add(self, ids: np.ndarray, texts: list[str]) -> None:
        """Add passages `texts` under `ids` (new ids: to replace a passage, remove it first)."""
        import tantivy

        ids = _checked_ids(ids)
        if len(ids) != len(texts):
            raise LexicalIndexError(f"{len(ids):,} ids for {len(texts):,} texts")
        if len(np.unique(ids)) != len(ids):
            raise LexicalIndexError("the ids to add repeat")
        if len(ids) and len(self):
            present = self._present(ids)
            if len(present):
                raise LexicalIndexError(f"{len(present):,} of the ids to add are already in the index "
                                        f"(e.g. {int(present[0])}); remove them first to replace them")
        writer = self._get_writer()
        for passage_id, text in zip(ids.tolist(), texts):
            document = tantivy.Document()
            document.add_unsigned("id", passage_id)
            document.add_text("body", " ".join(terms(text)))
            writer.add_document(document)
        self._dirty = self._dirty or bool(len(ids))

    def remove(self, ids: np.ndarray) -> None:
        """Remove the passages `ids`; ids not in the index are ignored."""
        import tantivy

        ids = _checked_ids(ids)
        if len(ids):
            self._get_writer().delete_documents_by_query(
                tantivy.Query.term_set_query(self._schema, "id", ids.tolist()))
            self._dirty = True

    def save(self, path: Path | None = None) -> None:
        """Commit what was added and removed (tantivy's atomic commit) in the index's folder; with
        `path`, also write the committed index there as one snapshot file, atomically."""
        self._commit()
        if self._writer is not None:
            self._writer.wait_merging_threads()  # lets background merges finish; a new writer comes when needed
            self._writer = None
        if path is not None:
            path = Path(path)
            if path.is_dir():
                raise LexicalIndexError(f"cannot save the lexical index to {path}: it is a folder (give a file "
                                        "name, or make the index in that folder and save() it in place)")
            write_atomic(path, lambda temp: _pack(self.path, temp))

    # -- searching --
    def __len__(self) -> int:
        return int(self._fresh_searcher().num_docs)

    def configuration(self) -> dict:
        """What is recorded with the index: kind, format, tokenisation, scoring."""
        return dict(self.config)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the best k passages for `query`, best first (fewer when fewer match a
        term of the query; none when it has no content word). `allowed` restricts the search to
        those passage ids before it runs."""
        import tantivy

        if k < 1:
            raise LexicalIndexError(f"k must be at least 1, not {k}")
        words = terms(query)
        nothing = np.zeros(0, np.float32), np.zeros(0, np.int64)
        if not words:
            return nothing
        schema = self._schema
        text = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", word)) for word in words])
        if allowed is not None:
            allowed = np.unique(_checked_ids(allowed))
            if not len(allowed):
                return nothing
            only = tantivy.Query.const_score_query(tantivy.Query.term_set_query(schema, "id", allowed.tolist()), 0.0)
            text = tantivy.Query.boolean_query([(tantivy.Occur.Must, text), (tantivy.Occur.Must, only)])
        searcher = self._fresh_searcher()
        hits = searcher.search(text, k, count=False).hits
        if not hits:
            return nothing
        scores = np.array([score for score, _ in hits], dtype=np.float32)
        ids = np.array(searcher.fast_field_values("id", [address for _, address in hits]), dtype=np.int64)
        return scores, ids

    def ids(self) -> np.ndarray:
        """Every passage id held (committed first)."""
        import tantivy

        searcher = self._fresh_searcher()
        n = searcher.num_docs
        if not n:
            return np.zeros(0, np.int64)
        hits = searcher.search(tantivy.Query.all_query(), n, count=False).hits
        return np.array(searcher.fast_field_values("id", [a for _, a in hits]), dtype=np.int64)

    # -- inside --
    def _present(self, ids: np.ndarray) -> np.ndarray:
        import tantivy

        searcher = self._fresh_searcher()
        hits = searcher.search(tantivy.Query.term_set_query(self._schema, "id", ids.tolist()), len(ids), count=False).hits
        return np.array(searcher.fast_field_values("id", [a for _, a in hits]), dtype=np.int64)

    def _get_writer(self):
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=WRITER_THREADS)
            except ValueError as err:
                raise LexicalIndexError(f"cannot write the lexical index {self.path}: {_first_line(err)} "
                                        "(is another process writing it?)") from None
        return self._writer

    def _commit(self, force: bool = False) -> None:
        if self._dirty or force:
            self._get_writer().commit()
            self._dirty = False
            self._index.reload()
            self._searcher = None

    def _fresh_searcher(self):
        self._commit()
        if self._searcher is None:
            self._searcher = self._index.searcher()
        return self._searcher


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _checked_ids(ids) -> np.ndarray:
    return checked_ids(ids, LexicalIndexError)
