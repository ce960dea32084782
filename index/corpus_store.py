"""The saved index of a corpus: many articles in one index, updated article by article.

One folder in the cache per corpus (its `--article` values and the model) holds:

    corpus.sqlite             config (format, model, chunking, the search files in use and their
                              entries), articles (id, content sha256, file stamp, title, source,
                              format, text) and passages (id, article, order, start, end)
    vectors-<16 hex>.f16/.ids the passages' vectors as float16 rows and their passage ids, only ever
                              appended to (`index/vector_store.py`; dead rows listed in the entry)
    ivf-<16 hex>.faiss        past 100,000 passages: the IVF+SQ8 snapshot, opened memory-mapped
    lexical-<16 hex>.tantivy/ the BM25 index, a tantivy folder opened in place (never copied)

Passage text is never held as Python objects: a hit's text is read from its article's row when it
is retrieved (SQLite's `substr` counts characters as Python does, so `text == article[start:end]`).

**Incremental.** An article whose file stamp (size, mtime) and, when that changed, content sha256
are those stored is unchanged and not read again; a changed or removed article's passages are
removed from both search indexes and the new ones added (txtai's upsert), so only changed articles
are embedded, and of a changed article only the passages whose text changed (the others keep their
stored vectors). **Atomic.** New vectors are appended past the rows the committed entry counts
(readers never look there), the lexical index is changed in a new folder of hard links to the
current one's immutable files; the rows and the config naming the new entry change in one SQLite
transaction; only after it commits are the old files removed. A process killed at any point
leaves the old index or the new one: before the commit SQLite rolls back and the old entry still
counts the old rows (the next writer cuts off what was appended past them), after it the new one
is used. **Streamed.** An update reads, splits, embeds and writes its new and changed articles
`BATCH_CHARACTERS` of text at a time inside that one transaction, so its memory is a batch's
whatever the corpus's size (every article and vector held at once took 2.78 GB at 100,000
passages). Opening checks sizes, and checksums only of files changed since they were written, so a
million-passage corpus opens without reading its vectors. Writers take
turns on the folder's file lock (the one `cache clear` respects); readers need none.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import secrets
import sqlite3
import stat
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from article_qa.index.article import Article, ArticleError, ArticleRef
from article_qa.index.cache_layout import CORPUS_DATA_FILES, CORPUS_DATABASE, INDEX_LOCK, CacheLayout
from article_qa.index.corpus_sources import Entry, Listing, Skipped, read_entry
from article_qa.index.embeddings import Embedder, Progress
from article_qa.index.passages import Chunking, Passage, split_passages
from article_qa.index.printable import printable, quoted
from article_qa.index.private_files import private_folder, remove_stale_temps
from article_qa.index.store import LOCK_TIMEOUT_S, IndexWarning

FORMAT = "article-qa-corpus"
VERSION = 2  # 2: vectors as float16 rows + IVF snapshot, tantivy in place (index/vector_store.py)
DATABASE = CORPUS_DATABASE
CORPUS_FILES = CORPUS_DATA_FILES
SEARCH_DEPTH = 50  # candidates taken from each of the dense and the lexical search before fusing
# An update reads, splits, embeds and writes its new articles this much text at a time (~5,000
# SQuAD passages): its memory is a batch's, so a million passages build in the same memory as ten.
BATCH_CHARACTERS = 4_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, stamp TEXT, title TEXT NOT NULL, source TEXT NOT NULL,
    format TEXT NOT NULL, text TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS passages (
    pid INTEGER PRIMARY KEY AUTOINCREMENT, article TEXT NOT NULL, ord INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS passages_by_article ON passages(article, ord);
CREATE INDEX IF NOT EXISTS articles_listed ON articles(position, id, title, source, sha256, stamp);
"""
# articles_listed covers what opening a corpus reads of every article (its id, title, source,
# checksum and stamp, in order), so that is read from the index's few pages: through the table
# it was one page of each article's text (23,800 articles of 1M passages: 1.5 s of a cold ask).


@dataclass(frozen=True)
class _Backend:
    """One search backend as the store uses it: its module (`open_*_index`, `new_*_index`) and the
    suffix of the one file it saves to (tantivy's folder is saved as one snapshot file, so that the
    store checksums and swaps whole files)."""

    module: object
    suffix: str


def _backends(in_memory: bool = False) -> tuple[str, _Backend, _Backend]:
    """(name, vectors, lexical): `index/vector_backends.py` (exact FAISS, IVF+SQ8 by size) and
    `index/lexical_backends.py` (tantivy) when this build has them, else the numpy ones of
    `index/exact_backends.py`, which an index kept in memory always uses (nothing to save)."""
    try:
        if in_memory:
            raise ImportError
        from article_qa.index import lexical_backends, vector_backends
    except ImportError:
        from article_qa.index import exact_backends

        return "exact", _Backend(exact_backends, ".npz"), _Backend(exact_backends, ".npz")
    return "faiss-rows+tantivy-folder", _Backend(vector_backends, ".f16"), _Backend(lexical_backends, ".tantivy")


@dataclass(frozen=True)
class Changes:
    """What an update did, by article id."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    def counts(self) -> dict:
        return {"added": len(self.added), "changed": len(self.changed), "removed": len(self.removed),
                "unchanged": len(self.unchanged), "skipped": len(self.skipped)}

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class CorpusStatus:
    """What `open_corpus` did: built, updated, reused, rebuilt (and why) or kept in memory."""

    action: str
    reason: str | None
    path: Path | None
    seconds: float
    changes: Changes = field(default_factory=Changes)


def corpus_key(specs: tuple[str, ...], model_name: str) -> str:
    """The corpus's folder name: its `--article` values (as absolute paths, in order) and the model,
    in the `<16 hex>-<8 hex>` form of every index folder (`cache clear` knows it)."""
    spelled = json.dumps([os.path.abspath(os.path.expanduser(s)) for s in specs])
    model = hashlib.sha256(model_name.encode()).hexdigest()[:8]
    return f"{hashlib.sha256(('corpus:' + spelled).encode()).hexdigest()[:16]}-{model}"


class CorpusIndex:
    """A corpus's articles and passages (SQLite) with their dense and lexical search indexes."""

    is_corpus = True

    def __init__(self, db: sqlite3.Connection, vectors, lexical, embedder: Embedder, chunking: Chunking,
                 status: CorpusStatus):
        self.db = db
        self.vectors = vectors
        self.lexical = lexical
        self.embedder = embedder
        self.chunking = chunking
        self.status = status
        self.refs: dict[str, ArticleRef] = {
            row[0]: ArticleRef(row[0], row[1], row[2])
            for row in db.execute("SELECT id, title, source FROM articles ORDER BY position, id")}
        self._texts: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def passage_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM passages").fetchone()[0])

    def text_of(self, article_id: str) -> str:
        """The article's text, the one its offsets count in (the last few are kept)."""
        text = self._texts.get(article_id)
        if text is None:
            row = self.db.execute("SELECT text FROM articles WHERE id = ?", (article_id,)).fetchone()
            if row is None:
                raise KeyError(article_id)
            if len(self._texts) >= 64:
                self._texts.pop(next(iter(self._texts)))
            text = self._texts[article_id] = row[0]
        return text

    def resolve(self, value: str) -> str:
        """The id of the article `value` names: its id, or its source path as given or resolved.
        Raises KeyError with a one-line message."""
        if value in self.refs:
            return value
        for ref in self.refs.values():
            if ref.source == value:
                return ref.id
        wanted = os.path.realpath(os.path.expanduser(value))
        for ref in self.refs.values():
            if os.path.realpath(ref.source) == wanted:
                return ref.id
        ids = list(self.refs)
        shown = ", ".join(quoted(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        raise KeyError(f"no article {quoted(value)} in the corpus (its ids: {shown})")

    def passage_ids(self, article_id: str) -> np.ndarray:
        rows = self.db.execute("SELECT pid FROM passages WHERE article = ? ORDER BY ord", (article_id,))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def passages(self, ids: list[int]) -> list[Passage]:
        """The passages of these ids, in this order, their text read from their article's row."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f'SELECT p.pid, p.article, p.start, p."end", substr(a.text, p.start + 1, p."end" - p.start) '
            f"FROM passages p JOIN articles a ON a.id = p.article WHERE p.pid IN ({marks})", [int(i) for i in ids])
        found = {r[0]: Passage(r[0], r[2], r[3], r[4], self.refs[r[1]]) for r in rows}
        return [found[i] for i in ids if i in found]

    def search(self, query_vectors: np.ndarray, query_texts: list[str], k: int, dense_weight: float,
               within: list[str | None]) -> list[list]:
        """The k best passages of each query, best first: BM25 and cosine fused as for one article
        (`qa.retrieve.fused_scores`: BM25 divided by the query's best BM25 score), over the union of
        the dense and the lexical search's best SEARCH_DEPTH; `within` an article id restricts the
        search to that article's passages before it is made. A passage whose text an earlier hit
        has already (the same paragraph in several articles) is read once: it is left out."""
        from article_qa.qa.retrieve import Hit

        depth = max(SEARCH_DEPTH, 4 * k)
        queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
        results = []
        for row, text in enumerate(query_texts):
            allowed = None if within[row] is None else self.passage_ids(within[row])
            query = queries[row:row + 1]
            dense_s, dense_i = self.vectors.search(query, depth, allowed)
            lexical_s, lexical_i = self.lexical.search(text, depth, allowed)
            candidates = np.unique(np.concatenate([dense_i[0][dense_i[0] >= 0], lexical_i[lexical_i >= 0]]))
            if not len(candidates):
                results.append([])
                continue
            if hasattr(self.vectors, "scores"):  # the stored rows give each candidate's cosine directly
                dense = dict(zip(candidates.tolist(), self.vectors.scores(query[0], candidates).tolist()))
            else:
                dense_s, dense_i = self.vectors.search(query, len(candidates), candidates)
                dense = {int(i): float(s) for s, i in zip(dense_s[0], dense_i[0]) if i >= 0}
            lexical_c, lexical_ci = self.lexical.search(text, len(candidates), candidates)
            lexical = {int(i): float(s) for s, i in zip(lexical_c, lexical_ci) if i >= 0}
            best = max(float(lexical_s[0]) if len(lexical_s) else 0.0, 0.0)
            scored = []
            for pid in candidates.tolist():
                d, lx = dense.get(pid, 0.0), lexical.get(pid, 0.0)
                scored.append((dense_weight * d + (1 - dense_weight) * (lx / best if best > 0 else 0.0), pid, d, lx))
            scored.sort(key=lambda s: (-s[0], s[1]))
            hits, seen = [], set()
            # Read in small batches: each row read costs its article's text (SQLite's substr), which
            # the profile at 100,000 passages put second only to the vector search.
            step = 2 * k + 2
            for start in range(0, len(scored), step):
                batch = scored[start:start + step]
                passages = {p.index: p for p in self.passages([s[1] for s in batch])}
                for fused, pid, d, lx in batch:
                    passage = passages.get(pid)
                    if passage is None or passage.text in seen:
                        continue
                    seen.add(passage.text)
                    hits.append(Hit(passage, fused, d, lx))
                    if len(hits) >= k:
                        break
                if len(hits) >= k:
                    break
            results.append(hits)
        return results

    def close(self) -> None:
        self.db.close()


def open_corpus(
    listing: Listing,
    embedder: Embedder,
    chunking: Chunking = Chunking(),
    index_dir: Path | None = None,
    progress: Progress | None = None,
    rebuild: bool = False,
    encoding: str = "utf-8",
    vector_kind: str | None = None,
) -> CorpusIndex:
    """The corpus's index, brought up to date with its articles: reused when nothing changed,
    otherwise updated article by article (or built) and saved. `vector_kind` ("exact", "ivf-sq8")
    overrides the kind a new build picks by size (`index.vector_store`); it is recorded in the
    index's configuration."""
    started = time.monotonic()
    layout = CacheLayout.at(index_dir)
    problem = layout.problem()
    if problem:
        warnings.warn(f"not using the cache folder {printable(str(layout.root))}: {problem}; the index is kept "
                      "in memory and the models are not exported (slower)", IndexWarning)
        return _in_memory(listing, embedder, chunking, progress, encoding, problem, started)
    folder = layout.root / corpus_key(listing.specs, embedder.model.name)
    expected = _expected_config(embedder, chunking)
    try:
        private_folder(folder.parent, parents=True)
        private_folder(folder)
        _private_file(folder / DATABASE)
        db = _connect(folder / DATABASE)
    except (OSError, sqlite3.Error) as err:
        return _cannot_write(folder, err, listing, embedder, chunking, progress, encoding, started)
    if not rebuild:
        reused = _reuse(db, folder, expected, listing, embedder, chunking, started)
        if reused is not None:
            return reused
    from filelock import FileLock

    lock = FileLock(str(folder / INDEX_LOCK), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except OSError as err:
        db.close()
        return _cannot_write(folder, err, listing, embedder, chunking, progress, encoding, started)
    try:
        if not rebuild:  # another process may have updated it while we waited for the lock
            reused = _reuse(db, folder, expected, listing, embedder, chunking, started)
            if reused is not None:
                return reused
        try:
            return _update(db, folder, expected, listing, embedder, chunking, progress, encoding, rebuild, started,
                           vector_kind)
        except (OSError, sqlite3.OperationalError) as err:  # disk full, read-only
            db.close()
            return _cannot_write(folder, err, listing, embedder, chunking, progress, encoding, started)
    finally:
        lock.release()


def _private_file(path: Path) -> None:
    """Make the database file readable by its owner only (SQLite's journal copies its mode), and
    refuse a link or anything but a regular file planted in its place."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    finally:
        os.close(fd)


def _connect(path: Path | str) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=LOCK_TIMEOUT_S)
    db.executescript(_SCHEMA)
    return db


def _expected_config(embedder: Embedder, chunking: Chunking) -> dict:
    return {"format": FORMAT, "version": VERSION, "backends": _backends()[0],
            "model": {"name": embedder.model.name, "sha256": embedder.model.sha256},
            "chunking": chunking.to_dict()}


def _config(db: sqlite3.Connection) -> dict:
    out = {}
    for key, value in db.execute("SELECT key, value FROM config"):
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = None
    return out


class _Unusable(Exception):
    """The saved index cannot be used as it is; the message is the reason shown."""


def _check_config(config: dict, expected: dict) -> None:
    if not config:
        raise _Unusable("")
    for key, label in (("format", "it is not an article-qa corpus index"),
                       ("version", "it was saved by another version"),
                       ("backends", "it was saved with other search backends"), ("model", "the model changed"),
                       ("chunking", "the chunking changed")):
        if config.get(key) != expected[key]:
            raise _Unusable(label)


def _load_backends(folder: Path | None, config: dict):
    """The saved vector and lexical indexes the config names, opened where they are: the vectors'
    rows memory-mapped (sizes checked, checksums only of a file whose stamp changed since it was
    written; `index.vector_store`), the tantivy folder in place (never copied). Raises _Unusable."""
    from article_qa.index.lexical_backends import open_lexical_index
    from article_qa.index.vector_store import StoredVectors

    files = config.get("files")
    if folder is None or not isinstance(files, dict):
        raise _Unusable("the saved index is incomplete")
    entry, lexical_entry = files.get("vectors"), files.get("lexical")
    if not (isinstance(entry, dict) and isinstance(lexical_entry, dict) and isinstance(lexical_entry.get("name"), str)
            and CORPUS_FILES.fullmatch(lexical_entry["name"]) and lexical_entry["name"].startswith("lexical-")):
        raise _Unusable("the saved index is incomplete")
    lexical_path = folder / lexical_entry["name"]
    if lexical_path.is_symlink() or not lexical_path.is_dir():
        raise _Unusable("the saved index is incomplete")
    try:
        vectors = StoredVectors.open(folder, entry)
    except (KeyError, TypeError, ValueError) as err:  # VectorIndexError is a ValueError
        raise _Unusable(f"the saved vectors are damaged ({err})" if "damaged" not in str(err)
                        else f"the saved vectors are damaged ({str(err).split('(', 1)[-1].rstrip(')')})") from None
    try:
        lexical = open_lexical_index(lexical_path)
    except Exception as err:  # noqa: BLE001 - any unreadable index means: rebuild it
        raise _Unusable(f"the saved lexical are damaged ({type(err).__name__})") from None
    return vectors, lexical


def _stored(db: sqlite3.Connection) -> dict[str, tuple[str, str | None, str]]:
    """id → (content sha256, file stamp, title) of every stored article."""
    return {row[0]: (row[1], row[2], row[3]) for row in db.execute("SELECT id, sha256, stamp, title FROM articles")}


def _quick_unchanged(stored: dict, listing: Listing) -> bool:
    """Whether every listed article is stored as it is now, judged by file stamps and the checksums
    of JSON Lines texts alone (nothing is read), and no stored article is gone."""
    if set(stored) != {e.id for e in listing.entries}:
        return False
    for entry in listing.entries:
        sha, stamp, title = stored[entry.id]
        if entry.title is not None and entry.title != title:  # a JSON Lines title changed alone
            return False
        if entry.path is None:
            if hashlib.sha256((entry.text or "").encode("utf-8", "surrogatepass")).hexdigest() != sha:
                return False
        else:
            now = entry.stamp  # a stat of the file: once
            if not now or now != stamp:
                return False
    return True


def _reuse(db, folder, expected, listing, embedder, chunking, started) -> CorpusIndex | None:
    try:
        _check_config(_config(db), expected)
        stored = _stored(db)
        if not _quick_unchanged(stored, listing):
            return None
        vectors, lexical = _load_backends(folder, _config(db))
    except _Unusable:
        return None
    changes = Changes(unchanged=tuple(e.id for e in listing.entries), skipped=tuple(listing.skipped))
    status = CorpusStatus("reused", None, folder, time.monotonic() - started, changes)
    return CorpusIndex(db, vectors, lexical, embedder, chunking, status)


@dataclass(frozen=True)
class _Plan:
    """What an update must do, known from the listing and the stored stamps alone (nothing read):
    the entries to read (new, or their file stamp changed), those unchanged by stamp, and the
    stored articles no longer listed."""

    to_read: list[tuple[Entry, int]]  # (entry, position in the listing)
    unchanged: list[tuple[Entry, None, int]]  # as `_restamp` takes them
    removed: list[str]


def _plan(stored: dict, listing: Listing, fresh: bool) -> _Plan:
    to_read, unchanged = [], []
    for position, entry in enumerate(listing.entries):
        old = None if fresh else stored.get(entry.id)
        if old is not None and entry.stamp and old[1] == entry.stamp:
            unchanged.append((entry, None, position))
        else:
            to_read.append((entry, position))
    listed = {e.id for e in listing.entries}
    removed = [] if fresh else [i for i in stored if i not in listed]
    return _Plan(to_read, unchanged, removed)


class _Generation:
    """One update being written: the new search files (vector rows appended past the committed
    ones, the lexical index forked into a new folder of hard links) and the SQLite rows, in one
    transaction that `commit` ends. Articles are written a batch at a time (`write`), so the
    memory an update needs is a batch's, not the corpus's; nothing it writes is seen by readers,
    who use the committed entry, until the commit."""

    def __init__(self, db, folder: Path, vectors, lexical, embedder: Embedder, chunking: Chunking,
                 vector_kind: str | None, fresh: bool, removed: list[str]):
        from article_qa.index.lexical_backends import fork_lexical_index, new_lexical_index
        from article_qa.index.vector_store import StoredVectors

        self.db, self.folder, self.embedder, self.chunking = db, folder, embedder, chunking
        self.old_files = {e.name for e in os.scandir(folder) if CORPUS_FILES.fullmatch(e.name)}
        self.written: list[str] = []
        self.fresh = fresh
        self.lexical_name = f"lexical-{secrets.token_hex(8)}.tantivy"
        db.execute("BEGIN IMMEDIATE")
        try:
            if vectors is None:  # its kind is settled at the commit, by the passages it holds then
                vectors = StoredVectors.create(folder, embedder.dim, None, vector_kind)
                self.written.extend(sorted(vectors.files()))
                lexical = new_lexical_index()
            self.written.append(self.lexical_name)
            self.vectors, self.lexical = vectors, fork_lexical_index(lexical, folder / self.lexical_name)
            if fresh:
                db.execute("DELETE FROM passages")
                db.execute("DELETE FROM articles")
            self._drop(removed)
        except BaseException:
            self.abort()
            raise

    def write(self, batch: list[tuple[Article, str | None, int]], changed: set[str],
              progress: Progress | None = None) -> None:
        """Add these articles (new ones, and new texts of the stored ones whose ids are in
        `changed`): split, embed (a changed article's unchanged passages keep their vectors), and
        write them."""
        pieces, texts = _split(batch, self.embedder, self.chunking)
        going = [a.id for a, _, _ in batch if a.id in changed]
        known = {} if self.fresh else _old_vectors(self.db, self.vectors, going)
        encoded = _encode(texts, self.embedder, progress, known)
        self._drop(going)
        ids = []
        for (article, stamp, position), spans in zip(batch, pieces):
            self.db.execute("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (article.id, article.sha256, stamp, article.ref().title, article.source, article.format,
                             article.text, position))
            for order, (start, end) in enumerate(spans):
                ids.append(self.db.execute('INSERT INTO passages (article, ord, start, "end") VALUES (?, ?, ?, ?)',
                                           (article.id, order, start, end)).lastrowid)
        if ids:
            ids = np.array(ids, dtype=np.int64)
            self.vectors.add(ids, encoded)
            self.lexical.add(ids, texts)

    def _drop(self, article_ids: list[str]) -> None:
        """Remove these stored articles, their rows and their passages in both search indexes."""
        gone = np.array([r[0] for i in article_ids for r in
                         self.db.execute("SELECT pid FROM passages WHERE article = ?", (i,))], dtype=np.int64)
        if len(gone):
            self.vectors.remove(gone)
            self.lexical.remove(gone)
        for article_id in article_ids:
            self.db.execute("DELETE FROM passages WHERE article = ?", (article_id,))
            self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))

    def commit(self, restamp, expected: dict) -> None:
        """Save the search files, record them in the config and commit; then remove the files of
        the previous index (and of writers killed before their commit). On failure the caller
        calls `abort`."""
        _restamp(self.db, restamp)
        entry = self.vectors.commit()
        self.written.extend(sorted(self.vectors.files()))
        self.lexical.save()
        files = {"vectors": entry, "lexical": {"name": self.lexical_name, "kind": self.lexical.kind}}
        settings = dict(expected, files=files, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        for key, value in settings.items():
            self.db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)", (key, json.dumps(value)))
        _before_commit()
        self.db.execute("COMMIT")
        for name in self.old_files - (self.vectors.files() | {self.lexical_name}):
            _unlink(self.folder / name)
        remove_stale_temps(self.folder)

    def abort(self) -> None:
        """Roll back; remove what this update wrote (the rows file in use only grew past its
        committed rows, which the next writer cuts off)."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        for name in set(self.written) - self.old_files:
            _unlink(self.folder / name)


def _batches_progress(progress: Progress | None, done: int, size: int, total: int) -> Progress | None:
    """The embedding progress of one batch of `size` articles, reported in articles of the whole
    update (`done` before it, `total` to read): a streamed build does not know its passages ahead."""
    if progress is None:
        return None
    return lambda d, t: progress(done + (size * d) // max(t, 1), total)


def _update(db, folder, expected, listing, embedder, chunking, progress, encoding, rebuild, started,
            vector_kind: str | None = None) -> CorpusIndex:
    """Bring the saved corpus up to date with `listing`, reading, splitting and embedding its new and
    changed articles BATCH_CHARACTERS of text at a time (memory stays a batch's at any size), all
    in one `_Generation`: the old index or the new one, never a mix."""
    config = _config(db)
    reason = "rebuild requested" if rebuild else None
    vectors = lexical = None
    if not rebuild:
        try:
            _check_config(config, expected)
            vectors, lexical = _load_backends(folder, config)
        except _Unusable as err:  # a saved index that cannot be used is rebuilt whole
            reason = str(err) or None
    stored = _stored(db)
    fresh = vectors is None
    plan = _plan(stored, listing, fresh)
    restamp = list(plan.unchanged)
    added, changed, unchanged = [], [], [e.id for e, _, _ in plan.unchanged]
    skipped = list(listing.skipped)
    generation: _Generation | None = None
    batch, batch_chars, done = [], 0, 0

    def start() -> _Generation:
        return _Generation(db, folder, vectors, lexical, embedder, chunking, vector_kind, fresh, plan.removed)

    def flush() -> None:
        nonlocal generation, batch, batch_chars
        generation = generation or start()
        stored_before = {a.id for a, _, _ in batch if a.id in stored}
        generation.write(batch, stored_before, _batches_progress(progress, done, len(batch), len(plan.to_read)))
        batch, batch_chars = [], 0

    try:
        if fresh or plan.removed:
            generation = start()
        for count, (entry, position) in enumerate(plan.to_read, 1):
            try:
                article = read_entry(entry, encoding)
            except ArticleError as err:
                skipped.append(Skipped(entry.source, str(err)))
                continue
            old = None if fresh else stored.get(entry.id)
            if old is not None and old[0] == article.sha256:  # touched, not changed: only its stamp
                unchanged.append(entry.id)
                restamp.append((entry, entry.stamp, position))
                continue
            (changed if entry.id in stored else added).append(entry.id)
            batch.append((article, entry.stamp, position))
            batch_chars += len(article.text)
            if batch_chars >= BATCH_CHARACTERS:
                flush()
                done = count
        if batch:
            flush()
        if generation is None:  # touched files, unreadable ones: no new search files
            db.execute("BEGIN IMMEDIATE")
            _restamp(db, restamp)
            db.execute("COMMIT")
            changes = Changes(unchanged=tuple(unchanged), skipped=tuple(skipped))
            return CorpusIndex(db, vectors, lexical, embedder, chunking,
                               CorpusStatus("reused", None, folder, time.monotonic() - started, changes))
        generation.commit(restamp, expected)
    except BaseException:
        if generation is not None:
            generation.abort()
        raise
    _export_quietly(embedder)
    new = set(added) | set(changed)
    removed = [i for i in stored if i not in new] if fresh else plan.removed
    changes = Changes(tuple(added), tuple(changed), tuple(removed), tuple(unchanged), tuple(skipped))
    action = "rebuilt" if reason else ("built" if not stored else ("updated" if changes.any else "reused"))
    status = CorpusStatus(action, reason, folder, time.monotonic() - started, changes)
    return CorpusIndex(db, generation.vectors, generation.lexical, embedder, chunking, status)


def _restamp(db: sqlite3.Connection, restamp) -> None:
    """Unchanged articles: their order and source as listed now, and a new file stamp when the
    file was touched without changing its text (so it is not read again next time)."""
    for entry, stamp, position in restamp:
        if entry.title is not None:
            db.execute("UPDATE articles SET title = ? WHERE id = ?", (entry.title, entry.id))
        if stamp is None:
            db.execute("UPDATE articles SET position = ?, source = ? WHERE id = ?", (position, entry.source, entry.id))
        else:
            db.execute("UPDATE articles SET position = ?, source = ?, stamp = ? WHERE id = ?",
                       (position, entry.source, stamp, entry.id))


def _before_commit() -> None:
    """A point tests can stop a writer at (killed after writing the new files, before the commit)."""
    point = os.environ.get("ARTICLE_QA_TEST_PAUSE")
    if point == "corpus-before-commit":
        print("PAUSED corpus-before-commit", flush=True)
        time.sleep(60)


def _unlink(path: Path) -> None:
    """Remove one of the store's files or lexical folders (a link is removed, never followed)."""
    try:
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _split(new, embedder: Embedder, chunking: Chunking) -> tuple[list[list[tuple[int, int]]], list[str]]:
    limit = min(chunking.max_tokens, embedder.max_tokens - 2)
    effective = Chunking(limit, chunking.min_tokens, chunking.overlap_sentences)
    pieces, texts = [], []
    # The splitter counts a paragraph's word pieces more than once (to join small ones, then to
    # check the result): each distinct span is tokenized once per article.
    for article, _, _ in new:
        passages = split_passages(article.text, functools.lru_cache(maxsize=1024)(embedder.token_spans), effective)
        pieces.append([(p.start, p.end) for p in passages])
        texts.extend(p.text for p in passages)
    return pieces, texts


def _old_vectors(db: sqlite3.Connection, vectors, article_ids: list[str]) -> dict[str, np.ndarray]:
    """The stored vector of each passage text of the changed articles as they were: a passage an
    edit left as it was keeps its vector (an edited paragraph is embedded again, not the article)."""
    if not article_ids or not hasattr(vectors, "vectors_of"):
        return {}
    pids, texts = [], []
    for article_id in article_ids:
        for pid, text in db.execute('SELECT p.pid, substr(a.text, p.start + 1, p."end" - p.start) FROM passages p '
                                    "JOIN articles a ON a.id = p.article WHERE p.article = ?", (article_id,)):
            pids.append(pid)
            texts.append(text)
    if not pids:
        return {}
    found = vectors.vectors_of(np.array(pids, dtype=np.int64))
    return {text: found[i] for i, text in enumerate(texts) if np.isfinite(found[i]).all()}


def _encode(texts: list[str], embedder: Embedder, progress: Progress | None,
            known: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The texts' vectors, each distinct text encoded once (a paragraph many articles share), and
    none whose vector is `known` (an unchanged passage of a changed article)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    known = known or {}
    distinct = [t for t in dict.fromkeys(texts) if t not in known]
    vectors = embedder.encode(distinct, progress=progress) if distinct else np.zeros((0, 0), np.float32)
    row = {text: vectors[i] for i, text in enumerate(distinct)}
    return np.stack([row[t] if t in row else known[t] for t in texts]).astype(np.float32, copy=False)


def _cannot_write(folder, err, listing, embedder, chunking, progress, encoding, started) -> CorpusIndex:
    why = str(getattr(err, "strerror", None) or err)
    warnings.warn(f"cannot write the index to {printable(str(folder))} ({why}); using it from memory", IndexWarning)
    return _in_memory(listing, embedder, chunking, progress, encoding, why, started)


def _in_memory(listing, embedder, chunking, progress, encoding, why, started) -> CorpusIndex:
    """The corpus indexed in memory (a SQLite database in memory, the search indexes unsaved)."""
    _, vector_backend, lexical_backend = _backends(in_memory=True)
    db = _connect(":memory:")
    added, skipped = [], list(listing.skipped)
    for entry, position in _plan({}, listing, True).to_read:
        try:
            added.append((read_entry(entry, encoding), entry.stamp, position))
        except ArticleError as err:
            skipped.append(Skipped(entry.source, str(err)))
    pieces, texts = _split(added, embedder, chunking)
    encoded = _encode(texts, embedder, progress)
    vectors = vector_backend.module.new_vector_index(encoded.shape[1] if len(texts) else embedder.dim, len(texts))
    lexical = lexical_backend.module.new_lexical_index()
    ids = []
    for (article, stamp, position), spans in zip(added, pieces):
        db.execute("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (article.id, article.sha256, stamp, article.ref().title, article.source, article.format,
                    article.text, position))
        for order, (start, end) in enumerate(spans):
            ids.append(db.execute('INSERT INTO passages (article, ord, start, "end") VALUES (?, ?, ?, ?)',
                                  (article.id, order, start, end)).lastrowid)
    if ids:
        vectors.add(np.array(ids, np.int64), encoded)
        lexical.add(np.array(ids, np.int64), texts)
    changes = Changes(added=tuple(a.id for a, _, _ in added), skipped=tuple(skipped))
    status = CorpusStatus("in-memory", why, None, time.monotonic() - started, changes)
    return CorpusIndex(db, vectors, lexical, embedder, chunking, status)


def _export_quietly(embedder: Embedder) -> None:
    from article_qa.index.store import _export_quietly as export

    export(embedder)


def open_saved_corpus(folder: Path, embedder: Embedder, chunking: Chunking = Chunking()) -> CorpusIndex:
    """The corpus index saved in `folder`, opened read-only (SQLite `mode=ro`): never updated,
    never written, without its articles' files (their text is in the index). For a batch worker,
    whose driver has brought the index up to date already (`store.open_saved_index` says why).
    Raises SavedIndexError."""
    from urllib.parse import quote

    from article_qa.index.store import SavedIndexError, folder_problem

    started = time.monotonic()
    problem = folder_problem(folder)
    db = None
    if problem is None and not (folder / DATABASE).is_file():
        problem = "it holds no saved corpus index"
    if problem is None:
        try:
            db = sqlite3.connect(f"file:{quote(str(folder / DATABASE))}?mode=ro", uri=True, isolation_level=None,
                                 check_same_thread=False, timeout=LOCK_TIMEOUT_S)
            config = _config(db)
            _check_config(config, _expected_config(embedder, chunking))
            vectors, lexical = _load_backends(folder, config)
            ids = tuple(row[0] for row in db.execute("SELECT id FROM articles ORDER BY position, id"))
            status = CorpusStatus("reused", None, folder, time.monotonic() - started, Changes(unchanged=ids))
            return CorpusIndex(db, vectors, lexical, embedder, chunking, status)
        except sqlite3.Error as err:
            problem = f"its database cannot be read ({err})"
        except _Unusable as err:
            problem = str(err) or "it holds no saved corpus index"
        if db is not None:
            db.close()
    raise SavedIndexError(f"cannot open the index folder {printable(str(folder))}: {problem}")
