"""A corpus's vectors on disk: float16 rows in an append-only file, searched exactly or through an
IVF+SQ8 snapshot whose candidates are re-ranked with those rows.

The rules, and why:

- **Rows.** Every passage vector is one float16 row of `vectors-<g>.f16`, its passage id one int64
  of `vectors-<g>.ids`, both only ever appended to. Removing a passage marks its row dead (the dead
  rows are listed in the entry the store commits); nothing is rewritten. So saving one changed
  article writes its new rows and a small entry, not the index (at 100,000 passages the exact
  FAISS file had to be rewritten whole: 154 MB, 2.07 s). The entry records how many rows are
  committed; rows past that (a writer killed before its commit) are ignored by readers and cut off
  by the next writer, so an interrupted update leaves the old index. When dead rows pass a quarter
  of the file, the live rows are copied into a new file (a new generation).
- **Memory-mapped.** Rows are read through `numpy.memmap`: a search reads only the rows it scores
  (~100 rows of 768 bytes), so a million passages (737 MB of rows) cost no time to open and no
  memory until touched. float16 halves the disk of float32 and moves a cosine by < 1e-3.
- **exact** (up to `vector_backends.EXACT_MAX` passages): the rows as float32 in a FAISS
  `IndexFlatIP`, built at the first search (100,000 rows: ~0.1 s), every row scanned. A store
  created without knowing its size (a streamed build) settles its kind at the first commit.
- **ivf-sq8** (above that): a FAISS `IndexIVFScalarQuantizer` snapshot of the rows at some point,
  `ivf-<g>.faiss`, opened with `IO_FLAG_MMAP` (its 8-bit codes are not read until probed), searched
  with a small `nprobe` for `candidates` (100) passages that are then re-ranked by their exact
  cosine from the rows. 8-bit codes alone lost ~2% of recall@10 at a million passages even over
  every list; the re-rank gives back what the codes lose, so a few lists suffice. `nprobe` is the
  smallest whose *re-ranked* recall@10 against exact search meets the target, times a margin of 1.5
  for questions outside the sample (`tune_nprobe`). Rows
  added after the snapshot are searched exactly (they are few); dead rows are excluded before the
  search (a FAISS IDSelector). When rows past the snapshot pass a tenth of it, or on compaction,
  the snapshot is rebuilt from the rows with the same trained quantizer.
- **Integrity, cheaply.** Each appended block of rows has a sha256 (ids and vectors), the snapshot
  one too, checked when they are written. Opening checks sizes and each file's stamp (size, mtime,
  inode) recorded at commit; only a file whose stamp changed is hashed again (and refused when its
  committed part differs). A million-passage index opens without reading its vectors.

`allowed` (one article's passages) is scored exactly from the rows when it is small, so a filtered
search always returns its k best of what exists; `scores(query, ids)` gives the exact cosine of
given passages (the corpus's fusion uses it instead of a second search).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import numpy as np

from article_qa.index.vector_backends import (
    EXACT_MAX,
    TARGET_RECALL,
    VectorIndexError,
    _checked_ids,
    _checked_vectors,
    _threads,
    choose_kind,
    default_nlist,
    exact_neighbours,
    training_sample_size,
    tune_nprobe,
)

STORE_FORMAT = 2
CANDIDATES = 100  # ivf-sq8 passages re-ranked per query (tune_nprobe picks nprobe for this many)
SMALL_ALLOWED = 50_000  # an `allowed` set up to this size is scored exactly from the rows
COMPACT_DEAD_SHARE = 0.25
RESNAPSHOT_SHARE = 0.10
_BLOCK_ROWS = 65_536
PREAD_ROWS_MAX = 4_096  # rows read one by one with pread; more go through the memory map


class StoredVectors:
    """The vector side of a corpus index in one folder (see the module's docstring)."""

    def __init__(self, folder: Path, entry: dict):
        self.folder = Path(folder)
        self.entry = entry
        self.kind = entry["kind"]
        self.dim = int(entry["dim"])
        self.config = entry.setdefault("config", {})
        self._committed = int(entry["rows"])
        self._pending = 0  # rows appended since the last commit
        self._dead: set[int] = set(int(r) for r in entry.get("dead", ()))
        self._rows16: np.ndarray | None = None
        self._ids = np.zeros(0, np.int64)
        self._flat = None  # exact: IndexFlatIP over every row (dead ones excluded at search)
        self._ivf = None  # ivf-sq8: the snapshot of rows [0, snapshot_rows)
        self._ivf_old = None  # after a compaction: the previous snapshot, whose training is reused
        self._map()

    # -- making and opening --
    @classmethod
    def create(cls, folder: Path, dim: int, expected_size: int | None, kind: str | None = None, *,
               exact_max: int = EXACT_MAX, candidates: int = CANDIDATES) -> "StoredVectors":
        """An empty store in `folder` for about `expected_size` passages; `kind` None picks by size.
        `expected_size` None (a build that streams its articles does not know how many passages
        it will hold): the kind and the IVF's size are settled at the first commit, by the rows
        held then."""
        if dim < 1:
            raise VectorIndexError(f"a vector index needs a positive dimension, not {dim}")
        if kind not in (None, "exact", "ivf-sq8"):
            raise VectorIndexError(f"unknown vector index kind {kind!r} (choose from exact, ivf-sq8)")
        name = f"vectors-{secrets.token_hex(8)}"
        entry = {"format": STORE_FORMAT, "kind": kind or "exact", "dim": int(dim), "rows_file": name, "rows": 0,
                 "blocks": [], "dead": [], "stamps": {},
                 "config": {"given_kind": kind, "exact_max": int(exact_max), "candidates": int(candidates),
                            "expected_size": None, "rows_dtype": "float16"}}
        for suffix in (".f16", ".ids"):
            with open(Path(folder) / (name + suffix), "xb"):
                pass
        store = cls(folder, entry)
        if expected_size is not None:
            store._settle_kind(int(expected_size))
        return store

    def _settle_kind(self, expected_size: int) -> None:
        """Choose the kind for `expected_size` passages (unless one was given) and record why."""
        given = self.config.pop("given_kind", None)
        exact_max = int(self.config.pop("exact_max", EXACT_MAX))
        candidates = int(self.config.pop("candidates", CANDIDATES))
        chosen = given or choose_kind(expected_size, exact_max)
        how = "given" if given else f"by size ({expected_size:,} passages, exact up to {exact_max:,})"
        self.kind = self.entry["kind"] = chosen
        self.config.update({"chosen_by": how, "expected_size": int(expected_size)})
        if chosen == "ivf-sq8":
            self.config.update({"candidates": candidates, "nlist_wanted": default_nlist(expected_size),
                                "nprobe": None, "tuning": None})
            self.entry["snapshot"] = None
        self._flat = None

    @classmethod
    def open(cls, folder: Path, entry: dict, *, verify: bool | None = None) -> "StoredVectors":
        """The store `entry` (what `commit` returned) describes. Sizes are always checked; the
        sha256 of a file only when its stamp is not the one recorded (`verify` True: always;
        False: never). Raises VectorIndexError naming what is wrong."""
        if not isinstance(entry, dict) or entry.get("format") != STORE_FORMAT or entry.get("kind") not in (
                "exact", "ivf-sq8"):
            raise VectorIndexError("the vector index is of a format this version does not read; build it again")
        folder = Path(folder)
        name = entry["rows_file"]
        dim, rows = int(entry["dim"]), int(entry["rows"])
        changed = bool(verify)
        for suffix, width in ((".f16", 2 * dim), (".ids", 8)):
            path = folder / (name + suffix)
            try:
                info = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                raise VectorIndexError(f"the vector index is incomplete ({path.name} is missing)") from None
            if not os.path.isfile(path) or os.path.islink(path):
                raise VectorIndexError(f"the vector index is damaged ({path.name} is not a regular file)")
            if info.st_size < rows * width:
                raise VectorIndexError(f"the vector index is damaged ({path.name} holds {info.st_size:,} bytes, "
                                       f"not the {rows * width:,} committed: truncated?)")
            changed = changed or (verify is None and entry.get("stamps", {}).get(suffix) != _stamp(info))
        if changed:
            _verify_blocks(folder / name, dim, entry.get("blocks", []))
        snapshot = entry.get("snapshot")
        if snapshot:
            path = folder / snapshot["file"]
            try:
                info = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                raise VectorIndexError(f"the vector index is incomplete ({path.name} is missing)") from None
            if info.st_size != snapshot["size"]:
                raise VectorIndexError(f"the vector index is damaged ({path.name} holds {info.st_size:,} bytes, "
                                       f"not {snapshot['size']:,})")
            if verify or (verify is None and snapshot.get("stamp") != _stamp(info)):
                if _sha256(path) != snapshot["sha256"]:
                    raise VectorIndexError(f"the vector index is damaged ({path.name}: checksum mismatch)")
        return cls(folder, entry)

    # -- what a search index does --
    def __len__(self) -> int:
        return len(self._ids) - len(self._dead)

    def ids(self) -> np.ndarray:
        """Every live passage id, in row order."""
        return self._live_ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append `vectors` under the new `ids` (written now past the committed rows; a reader sees
        them after `commit`)."""
        ids = _checked_ids(ids)
        vectors = _checked_vectors(vectors, self.dim, "vectors")
        if len(ids) != len(vectors):
            raise VectorIndexError(f"{len(ids):,} ids for {len(vectors):,} vectors")
        if not len(ids):
            return
        if len(np.unique(ids)) != len(ids):
            raise VectorIndexError("the ids to add repeat")
        present = ids[np.isin(ids, self._live_ids)]
        if len(present):
            raise VectorIndexError(f"{len(present):,} of the ids to add are already in the index "
                                   f"(e.g. {int(present[0])}); remove them first to replace them")
        if self._pending == 0:
            self._truncate_to(self._committed)  # what a writer killed before its commit left
        half = vectors.astype(np.float16)
        with open(self._rows_path(".f16"), "ab") as f:
            f.write(half.tobytes())
        with open(self._rows_path(".ids"), "ab") as f:
            f.write(ids.tobytes())
        self._pending += len(ids)
        self._map()
        if self._flat is not None:
            self._flat.add(half.astype(np.float32))

    def remove(self, ids: np.ndarray) -> None:
        """Mark the rows of the passages `ids` dead; ids not in the index are ignored."""
        ids = _checked_ids(ids)
        rows = self._rows_of(ids)
        self._dead.update(int(r) for r in rows[rows >= 0])
        self._relive()

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
        """(scores, ids), each (queries, k), best first; id -1 and score -inf where fewer than k
        passages (of `allowed`, when given) exist. Scores are the exact cosines from the rows."""
        queries = _checked_vectors(np.atleast_2d(queries), self.dim, "queries", normalized=False)
        if k < 1:
            raise VectorIndexError(f"k must be at least 1, not {k}")
        if allowed is not None:
            allowed = np.unique(_checked_ids(allowed))
            rows = self._rows_of(allowed)
            rows = rows[rows >= 0]
            if len(rows) <= SMALL_ALLOWED or self.kind == "exact":
                return self._score_rows(queries, rows, k)
            return self._search_ivf(queries, k, self.nprobe, allowed)
        if self.kind == "exact":
            return self._search_exact(queries, k)
        return self._search_ivf(queries, k, self.nprobe)

    def scores(self, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The exact cosine of one query with each passage of `ids` (-inf for ids not held)."""
        ids = _checked_ids(ids)
        rows = self._rows_of(ids)
        out = np.full(len(ids), -np.inf, dtype=np.float32)
        found = rows >= 0
        if found.any():
            q = np.asarray(query, dtype=np.float32).reshape(-1)
            out[found] = self._vectors(rows[found]) @ q
        return out

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors (float32 of the float16 rows) of `ids`, NaN rows for ids not held."""
        ids = _checked_ids(ids)
        rows = self._rows_of(ids)
        out = np.full((len(ids), self.dim), np.nan, dtype=np.float32)
        if (rows >= 0).any():
            out[rows >= 0] = self._vectors(rows[rows >= 0])
        return out

    def configuration(self) -> dict:
        return {"format": STORE_FORMAT, "kind": self.kind, "dim": self.dim, "count": len(self), **self.config}

    # -- saving --
    def commit(self, tune: tuple[np.ndarray, np.ndarray] | None = None, target: float = TARGET_RECALL) -> dict:
        """Make the appended rows and the removals durable and return the new entry (which the
        caller records atomically: until then readers use the old one). Compacts the rows, and for
        ivf-sq8 (re)builds the snapshot and tunes `nprobe`, when due: `tune` is (queries, their
        exact top-10 ids) to tune on; without it 200 of the passages serve as queries."""
        if self.config.get("expected_size") is None:
            self._settle_kind(len(self))
        rows = len(self._ids)
        entry = dict(self.entry)
        if self._pending:
            for suffix in (".f16", ".ids"):
                with open(self._rows_path(suffix), "rb+") as f:
                    os.fsync(f.fileno())
            blocks = list(entry.get("blocks", []))
            for first in range(self._committed, rows, _BLOCK_ROWS):
                last = min(first + _BLOCK_ROWS, rows)
                blocks.append([last, _block_sha(self._read_rows(first, last), self._ids[first:last])])
            entry["blocks"] = blocks
        entry["rows"] = rows
        entry["dead"] = sorted(self._dead)
        self.entry, self._committed, self._pending = entry, rows, 0
        if len(self._dead) > COMPACT_DEAD_SHARE * max(rows, 1) and len(self._dead) > 1000:
            self._compact()
        if self.kind == "ivf-sq8" and self._snapshot_due():
            self._snapshot(tune, target)
        self.entry["config"] = self.config
        self.entry["stamps"] = {s: _stamp(os.stat(self._rows_path(s)))
                                for s in (".f16", ".ids")}
        return dict(self.entry)

    def files(self) -> set[str]:
        """The names of the files this store's entry uses (the store removes the others)."""
        names = {self.entry["rows_file"] + ".f16", self.entry["rows_file"] + ".ids"}
        if self.entry.get("snapshot"):
            names.add(self.entry["snapshot"]["file"])
        return names

    # -- ivf-sq8 tuning (what tune_nprobe calls) --
    @property
    def nlist(self) -> int:
        return int(self._ivf.nlist) if self._ivf is not None else int(self.config.get("nlist_wanted", 1))

    @property
    def nprobe(self) -> int:
        return int(self.config.get("nprobe") or 1)

    def set_nprobe(self, nprobe: int, tuning: dict | None = None) -> None:
        self.config["nprobe"] = max(1, min(int(nprobe), self.nlist))
        if tuning is not None:
            self.config["tuning"] = tuning

    def search_nprobe(self, queries: np.ndarray, k: int, nprobe: int, allowed: np.ndarray | None = None):
        return self._search_ivf(np.ascontiguousarray(queries, dtype=np.float32), k, nprobe, allowed)

    # -- inside --
    def _map(self) -> None:
        """(Re)map the rows file: every row written so far, committed or pending."""
        rows = self._committed + self._pending
        if rows:
            self._rows16 = np.memmap(self._rows_path(".f16"), dtype=np.float16, mode="r", shape=(rows, self.dim))
            self._ids = np.array(np.memmap(self._rows_path(".ids"), dtype=np.int64, mode="r", shape=(rows,)))
        else:
            self._rows16, self._ids = np.zeros((0, self.dim), np.float16), np.zeros(0, np.int64)
        self._relive()
        if self.kind == "ivf-sq8" and self._ivf is None and self.entry.get("snapshot"):
            import faiss

            path = str(self.folder / self.entry["snapshot"]["file"])
            try:
                self._ivf = faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            except RuntimeError:
                raise VectorIndexError(f"the vector index is damaged (FAISS cannot read "
                                       f"{self.entry['snapshot']['file']})") from None

    def _exact_index(self):
        """exact: the rows as float32 in a FAISS IndexFlatIP, made at the first search (100,000
        rows: ~0.1 s) and kept up to date by `add`; a build that only appends never makes it."""
        if self._flat is None:
            import faiss

            self._flat = faiss.IndexFlatIP(self.dim)
            for first in range(0, len(self._ids), _BLOCK_ROWS):
                self._flat.add(self._read_rows(first, first + _BLOCK_ROWS).astype(np.float32))
        return self._flat

    def _relive(self) -> None:
        """The lookup from passage id to row over the live rows (ids are appended in increasing
        order by the corpus, so this is usually a slice, not a sort)."""
        live = np.ones(len(self._ids), dtype=bool)
        if self._dead:
            live[np.fromiter(self._dead, np.int64, len(self._dead))] = False
        rows = np.flatnonzero(live)
        ids = self._ids[rows]
        if len(ids) > 1 and not (np.diff(ids) > 0).all():
            order = np.argsort(ids, kind="stable")
            ids, rows = ids[order], rows[order]
        self._sorted_ids, self._sorted_rows, self._live = ids, rows, live
        self._live_ids = self._ids[live]
        self._dead_rows = np.fromiter(self._dead, np.int64, len(self._dead)) if self._dead else None

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The live row of each id, -1 where it has none."""
        if not len(self._sorted_ids):
            return np.full(len(ids), -1, np.int64)
        at = np.searchsorted(self._sorted_ids, ids)
        at = np.minimum(at, len(self._sorted_ids) - 1)
        return np.where(self._sorted_ids[at] == ids, self._sorted_rows[at], -1)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """These rows as float32. A few (a question's re-rank: ~100) are read one by one with
        pread: through the memory map each 768-byte row faulted in its neighbours too, and a
        long-running process ended up holding most of the rows file (1.5 GB of RSS after 300
        questions at 1.37M passages). Many (a large `allowed`) are read through the map."""
        order = np.argsort(rows)  # read in file order
        out = np.empty((len(rows), self.dim), np.float32)
        if len(rows) > PREAD_ROWS_MAX:
            out[order] = self._rows16[rows[order]]
            return out
        width = 2 * self.dim
        with open(self._rows_path(".f16"), "rb", buffering=0) as f:
            fd = f.fileno()
            data = b"".join(os.pread(fd, width, int(r) * width) for r in rows[order].tolist())
        out[order] = np.frombuffer(data, dtype=np.float16).reshape(len(rows), self.dim)
        return out

    def _score_rows(self, queries: np.ndarray, rows: np.ndarray, k: int):
        scores_out = np.full((len(queries), k), -np.inf, np.float32)
        ids_out = np.full((len(queries), k), -1, np.int64)
        if len(rows):
            scores = queries @ self._vectors(rows).T
            ids = self._ids[rows]
            for q in range(len(queries)):
                top = _top(scores[q], ids, k)
                scores_out[q, :len(top)], ids_out[q, :len(top)] = scores[q][top], ids[top]
        return scores_out, ids_out

    def _search_exact(self, queries: np.ndarray, k: int):
        import faiss

        if not len(self):
            return _empty(len(queries), k)
        params = None
        if self._dead_rows is not None:
            inner = faiss.IDSelectorBatch(self._dead_rows)
            outer = faiss.IDSelectorNot(inner)  # `inner` must outlive the search: both are kept here
            params = faiss.SearchParameters(sel=outer)
        with _threads(1 if len(queries) <= 4 else None):
            scores, rows = self._exact_index().search(queries, k, params=params)
        ids = np.where(rows >= 0, self._ids[np.maximum(rows, 0)], -1)
        scores = scores.copy()
        scores[ids < 0] = -np.inf
        return scores, ids

    def _search_ivf(self, queries: np.ndarray, k: int, nprobe: int, allowed: np.ndarray | None = None):
        """The snapshot's best `candidates` from `nprobe` lists (dead rows and rows not allowed
        excluded first), with the rows added since, re-ranked by exact cosine; over every list
        again when that finds fewer than k of what exists."""
        import faiss

        if self._ivf is None:
            rows = np.flatnonzero(self._live) if allowed is None else self._rows_of(allowed)
            return self._score_rows(queries, rows[rows >= 0], k)
        depth = max(int(self.config.get("candidates") or CANDIDATES), k)
        snapshot_rows = int(self.entry["snapshot"]["rows"])
        selector = inner = None  # `inner` kept alive while `selector` (which points to it) is used
        if allowed is not None:
            rows = self._rows_of(allowed)
            selector = faiss.IDSelectorBatch(allowed[(rows >= 0) & (rows < snapshot_rows)])
        elif self._dead_rows is not None:
            dead = self._dead_rows[self._dead_rows < snapshot_rows]
            if len(dead):
                inner = faiss.IDSelectorBatch(self._ids[dead])
                selector = faiss.IDSelectorNot(inner)
        late = np.flatnonzero(self._live[snapshot_rows:]) + snapshot_rows
        if allowed is not None:
            late = np.intersect1d(late, self._rows_of(allowed))
        exist = min(k, len(self) if allowed is None else int((self._rows_of(allowed) >= 0).sum()))
        out_s, out_i = _empty(len(queries), k)
        with _threads(1 if len(queries) <= 4 else None):
            params = faiss.SearchParametersIVF(nprobe=max(1, min(int(nprobe), self.nlist)))
            if selector is not None:
                params.sel = selector
            _, found = self._ivf.search(queries, depth, params=params)
            for q in range(len(queries)):
                candidates = found[q][found[q] >= 0]
                if len(candidates) + len(late) < exist and nprobe < self.nlist:
                    params_all = faiss.SearchParametersIVF(nprobe=self.nlist)
                    if selector is not None:
                        params_all.sel = selector
                    _, again = self._ivf.search(queries[q:q + 1], depth, params=params_all)
                    candidates = again[0][again[0] >= 0]
                rows = np.concatenate([self._rows_of(candidates), late])
                rows = np.unique(rows[rows >= 0])
                if not len(rows):
                    continue
                scores = self._vectors(rows) @ queries[q]
                top = _top(scores, self._ids[rows], k)
                out_s[q, :len(top)], out_i[q, :len(top)] = scores[top], self._ids[rows][top]
        return out_s, out_i

    def _rows_path(self, suffix: str) -> str:
        """The rows file in use, `.f16` (vectors) or `.ids` (passage ids)."""
        return str(self.folder / self.entry["rows_file"]) + suffix

    def _read_rows(self, first: int, last: int) -> np.ndarray:
        """Rows [first, last) as float16, read from the file rather than through the memory map:
        a scan of every row (a snapshot, a compaction, a commit's checksums, the tuning's exact
        search) would otherwise leave the whole file mapped in the process's memory (1.37M rows:
        1 GB of RSS), where a read leaves it to the page cache."""
        last = min(last, self._committed + self._pending)
        if last <= first:
            return np.zeros((0, self.dim), np.float16)
        width = 2 * self.dim
        with open(self._rows_path(".f16"), "rb", buffering=0) as f:
            data = os.pread(f.fileno(), (last - first) * width, first * width)
        return np.frombuffer(data, dtype=np.float16).reshape(last - first, self.dim)

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        """These rows (increasing) as float32, read a block of the file at a time."""
        out = np.empty((len(rows), self.dim), np.float32)
        at = 0
        while at < len(rows):
            first = int(rows[at])
            upto = int(np.searchsorted(rows, first + _BLOCK_ROWS, side="left"))
            out[at:upto] = self._read_rows(first, first + _BLOCK_ROWS)[rows[at:upto] - first]
            at = upto
        return out

    def _truncate_to(self, rows: int) -> None:
        for suffix, width in ((".f16", 2 * self.dim), (".ids", 8)):
            with open(self._rows_path(suffix), "rb+") as f:
                if os.fstat(f.fileno()).st_size > rows * width:
                    f.truncate(rows * width)

    def _live_vectors(self, first: int = 0):
        """(ids, float32 vectors) of the live rows from `first`, a block at a time."""
        for start in range(first, len(self._ids), _BLOCK_ROWS):
            rows = np.flatnonzero(self._live[start:start + _BLOCK_ROWS]) + start
            if len(rows):
                yield self._ids[rows], self._read_rows(start, start + _BLOCK_ROWS)[rows - start].astype(np.float32)

    def _compact(self) -> None:
        """Copy the live rows into a new rows file (a new generation); the old one stays for
        readers of the old entry until the store removes it."""
        name = f"vectors-{secrets.token_hex(8)}"
        base = self.folder / name
        blocks, rows = [], 0
        with open(str(base) + ".f16", "xb") as vf, open(str(base) + ".ids", "xb") as idf:
            for ids, vectors in self._live_vectors():
                half = vectors.astype(np.float16)
                vf.write(half.tobytes())
                idf.write(ids.tobytes())
                rows += len(ids)
                blocks.append([rows, _block_sha(half, ids)])
            os.fsync(vf.fileno())
            os.fsync(idf.fileno())
        self.entry = dict(self.entry, rows_file=name, rows=rows, blocks=blocks, dead=[])
        self.entry["snapshot"] = None if self.kind == "ivf-sq8" else self.entry.get("snapshot")
        self._ivf_old, self._ivf = self._ivf, None  # rows moved: the snapshot is made again, same training
        self._committed, self._dead, self._flat = rows, set(), None
        self._map()

    def _snapshot_due(self) -> bool:
        snapshot = self.entry.get("snapshot")
        if snapshot is None:
            return len(self) > 0
        return len(self._ids) - int(snapshot["rows"]) > RESNAPSHOT_SHARE * int(snapshot["rows"])

    def _snapshot(self, tune, target: float) -> None:
        """Build the IVF snapshot of every live row (training the quantizer the first time, on a
        sample of them), write it as its own FAISS file and tune nprobe on the re-ranked results."""
        import faiss

        from article_qa.index.vector_backends import IVFSQ8Index

        rows = len(self._ids)
        trained_from = self._ivf if self._ivf is not None else self._ivf_old
        if trained_from is None:
            rng = np.random.default_rng(0)
            live_rows = np.flatnonzero(self._live)
            want = min(len(live_rows), training_sample_size(max(self.config["expected_size"], len(live_rows))))
            sample_rows = np.sort(rng.choice(live_rows, want, replace=False))
            sample = self._gather(sample_rows)
            trained = IVFSQ8Index.trained(self.dim, self.config["nlist_wanted"], sample, self.config["chosen_by"])
            ivf = trained._index
            ivf.set_direct_map_type(faiss.DirectMap.NoMap)  # nothing is removed from a snapshot
            self.config.update({k: v for k, v in trained.config.items() if k in ("nlist", "trained_on", "nlist_note")})
            if self.config.get("nprobe") is None:
                self.config["nprobe"] = int(ivf.nprobe)
        else:  # the same trained lists and codes, filled again with the live rows
            quantizer = faiss.IndexFlatIP(self.dim)
            quantizer.add(trained_from.quantizer.reconstruct_n(0, trained_from.nlist))
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, trained_from.nlist,
                                                faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            quantizer.this.disown()
            ivf.own_fields = True
            ivf.sq = trained_from.sq
            ivf.by_residual = trained_from.by_residual
            ivf.is_trained = True
        for ids, vectors in self._live_vectors():
            ivf.add_with_ids(vectors, ids)
        name = f"ivf-{secrets.token_hex(8)}.faiss"
        path = self.folder / name
        faiss.write_index(ivf, str(path))
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        self._ivf = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        self.entry["snapshot"] = {"file": name, "rows": rows, "size": path.stat().st_size, "sha256": _sha256(path),
                                  "stamp": _stamp(path.stat())}
        if tune is None:
            rng = np.random.default_rng(1)
            live_rows = np.flatnonzero(self._live)
            picked = np.sort(rng.choice(live_rows, min(200, len(live_rows)), replace=False))
            queries = np.asarray(self._rows16[picked], dtype=np.float32)
            truth = exact_neighbours(_LiveRows(self), self._live_ids, queries, 10)
            tune = (queries, truth)
            against = " (200 of the passages as queries)"
        else:
            against = ""
        tune_nprobe(self, tune[0], target_recall=target, exact_ids=tune[1])
        self.config["tuning"]["against"] += against
        self.config["tuning"]["reranked"] = int(self.config.get("candidates") or CANDIDATES)


class _LiveRows:
    """The live rows as float32 blocks, sliceable as `exact_neighbours` wants."""

    def __init__(self, store: StoredVectors):
        self.rows = np.flatnonzero(store._live)
        self.store = store

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, part: slice) -> np.ndarray:
        return self.store._gather(self.rows[part])


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best scores, best first (ties by smaller id)."""
    n = min(k, len(scores))
    part = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    return part[np.lexsort((ids[part], -scores[part]))]


def _empty(n: int, k: int):
    return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


def _stamp(info: os.stat_result) -> list[int]:
    return [int(info.st_size), int(info.st_mtime_ns), int(info.st_ino)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _block_sha(vectors16: np.ndarray, ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids).tobytes() + np.ascontiguousarray(vectors16).tobytes()).hexdigest()


def _verify_blocks(base: Path, dim: int, blocks: list) -> None:
    """Check the committed rows against the block checksums (which cover ids and vectors together)."""
    with open(str(base) + ".f16", "rb") as vf, open(str(base) + ".ids", "rb") as idf:
        first = 0
        for last, sha in blocks:
            ids = idf.read(8 * (last - first))
            vectors = vf.read(2 * dim * (last - first))
            if hashlib.sha256(ids + vectors).hexdigest() != sha:
                raise VectorIndexError(f"the vector index is damaged ({base.name}: checksum mismatch)")
            first = last
