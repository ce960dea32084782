"""Vector indexes for many articles at once: exact search while it is fast enough, IVF+SQ8 past that.

The rule, and why:

- **exact** (`IndexIDMap2(IndexFlatIP)`) up to `EXACT_MAX` passages. Its recall is 1 by definition
  and one query costs a scan of every vector, on one thread: `python -m bench --rows corpus`
  measured 17 ms of CPU per question (vector and BM25 together) over 100,000 384-dim passages on
  the project's 2-core AMD EPYC machine, growing linearly, so 100,000 is where exact search still
  fits the 20 ms retrieval budget (the issue guessed ~200,000; twice as many would take ~34 ms).
- **ivf-sq8** (`IndexIVFScalarQuantizer`, 8-bit codes, inner product) above that: `nlist ≈ 4·√n`
  lists trained on a sample, each vector stored in 1 byte a dimension (a quarter of float32, so a
  million 384-dim passages take ~0.4 GB, not 1.5 GB), and only `nprobe` lists scanned per query.
  `nprobe` is not guessed: `tune_nprobe` takes the smallest one whose recall@k against exact search
  on a sample meets the target (0.98), and it is saved with the index. A hash-table direct map
  keeps `remove` cheap (an article's passages are removed without scanning every list). HNSW was
  not chosen because FAISS's HNSW cannot remove vectors, and articles get edited.

Vectors are float32 and L2-normalized, so inner product is cosine. Passage ids are the caller's
int64 (the corpus's passage ids), never positions. `search(..., allowed=ids)` restricts the search
to those ids *before* it runs (a FAISS IDSelector in the search parameters), so a search filtered to
one article returns k hits when that article has k passages. For IVF, probing only `nprobe` lists
can find fewer than k allowed vectors; such queries are searched again over every list.

These are the in-memory FAISS indexes and their one-file format. A corpus's index keeps its vectors
differently, as append-only float16 rows with an IVF snapshot that is memory-mapped and re-ranked
(`index/vector_store.py`, which uses the rules and `tune_nprobe` here).

A saved index is one file: a 16-byte magic, a 4 kB JSON header (kind, dimension, count, the tuned
`nprobe` and the recall it reached, the payload's size and sha256), then the FAISS index itself,
written through a streaming writer into a temporary file that is fsync'd and renamed over the
target (`index/private_files.write_atomic`). `open_vector_index` checks magic, header, size and (by
default) the checksum, and raises `VectorIndexError` with one sentence saying what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from article_qa.index.passage_ids import checked_ids
from article_qa.index.private_files import open_regular, write_atomic

KINDS = ("exact", "ivf-sq8")
EXACT_MAX = 100_000  # passages; above it new_vector_index(kind=None) picks ivf-sq8 (measured: see the docstring)
TARGET_RECALL = 0.98
# The smallest nprobe that meets the target on a sample sits at that sample's edge, so other
# questions fall just short (1M passages: 0.993 on the 150 tuning questions, 0.979 on 150 others);
# the index probes this many times it. Search time grows with nprobe (3.6 ms at 67 of 4,000 lists).
NPROBE_MARGIN = 1.5
MIN_POINTS_PER_LIST = 39  # FAISS's k-means warns below 39 training points per centroid
MAGIC = b"ARTICLEQA-VEC01\n"
HEADER_BYTES = 4096
FORMAT_VERSION = 1
_NORM_TOLERANCE = 1e-3
# A question or two is searched on one thread: waking FAISS's OpenMP threads for one query cost
# 80 ms where the scan itself took 0.2 ms on the shared 2-core machine (3,000 vectors; measured).
SINGLE_THREAD_QUERIES = 4


class VectorIndexError(ValueError):
    """A vector index that cannot be used: damaged, not one of ours, or misused. Its message is one
    sentence for the user."""


class VectorIndex(Protocol):
    kind: str  # "exact" | "ivf-sq8", recorded in the index configuration

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def save(self, path: Path) -> None: ...
    def __len__(self) -> int: ...


def choose_kind(expected_size: int, exact_max: int = EXACT_MAX) -> str:
    """The kind `new_vector_index` picks for `expected_size` passages when none is given."""
    return "exact" if expected_size <= exact_max else "ivf-sq8"


def default_nlist(expected_size: int) -> int:
    """About 4·√n inverted lists: lists of ~√n/4 vectors each, the usual balance of the coarse
    search (nlist centroids) against the scan (nprobe lists)."""
    return max(1, int(round(4 * math.sqrt(max(expected_size, 1)))))


def training_sample_size(expected_size: int) -> int:
    """How many vectors to train an ivf-sq8 index for `expected_size` passages on: 40 per list
    (FAISS's k-means asks for 39 at least; its cap of 256 would only make training slower: it is
    the longest part of building a million-passage index)."""
    return min(expected_size, 40 * default_nlist(expected_size))


def new_vector_index(dim: int, expected_size: int, kind: str | None = None,
                     training_sample: np.ndarray | None = None, *, exact_max: int = EXACT_MAX,
                     nlist: int | None = None) -> "ExactIndex | IVFSQ8Index":
    """An empty index for about `expected_size` passages of `dim` dimensions.

    `kind` None picks by size (`choose_kind`; `exact_max` overrides the threshold); "exact" or
    "ivf-sq8" forces one (the override recorded in the configuration). ivf-sq8 is trained here on
    `training_sample` (vectors like the ones to be added); with fewer than 39 sample vectors per
    list it uses fewer lists, as many as the sample trains well, and records that. Without a
    sample it is trained on a sample of the first vectors added, and its nprobe tuned on them
    (`tune_nprobe` with 200 of them as queries against exact search over all of them): a fresh
    build adds everything at once, so the first vectors are the corpus."""
    if dim < 1:
        raise VectorIndexError(f"a vector index needs a positive dimension, not {dim}")
    chosen = kind or choose_kind(expected_size, exact_max)
    if chosen not in KINDS:
        raise VectorIndexError(f"unknown vector index kind {chosen!r} (choose from {', '.join(KINDS)})")
    how = "given" if kind else f"by size ({expected_size:,} passages, exact up to {exact_max:,})"
    if chosen == "exact":
        return ExactIndex.empty(dim, chosen_by=how)
    wanted = nlist or default_nlist(expected_size)
    if training_sample is None or len(training_sample) == 0:
        return IVFSQ8Index.untrained(dim, wanted, expected_size, chosen_by=how)
    sample = _checked_vectors(training_sample, dim, "training sample")
    return IVFSQ8Index.trained(dim, wanted, sample, chosen_by=how)


def open_vector_index(path: Path, *, verify: bool = True) -> "ExactIndex | IVFSQ8Index":
    """The index saved at `path`. Raises VectorIndexError when the file is not a vector index, is
    truncated or damaged (`verify` checks the payload's sha256 while reading it; the size, the
    header and FAISS's own parsing are always checked)."""
    import faiss

    path = Path(path)
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        raise VectorIndexError(f"vector index not found: {path}") from None
    except OSError as err:
        raise VectorIndexError(f"cannot read the vector index {path}: {err.strerror or err}") from None
    with os.fdopen(fd, "rb") as f:
        head = f.read(len(MAGIC) + HEADER_BYTES)
        if not head.startswith(MAGIC):
            raise VectorIndexError(f"{path} is not an article-qa vector index (it does not start with its magic)")
        try:
            config = json.loads(head[len(MAGIC):].rstrip(b" ").decode("utf-8"))
            payload_bytes, payload_sha = int(config["payload_bytes"]), str(config["payload_sha256"])
            kind = config["kind"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise VectorIndexError(f"the vector index {path} is damaged (its header is unreadable)") from None
        if kind not in KINDS or config.get("format") != FORMAT_VERSION:
            raise VectorIndexError(f"the vector index {path} is of kind {kind!r}, format {config.get('format')!r}, "
                                   "which this version does not read; build it again")
        size = os.fstat(f.fileno()).st_size
        if size != len(MAGIC) + HEADER_BYTES + payload_bytes:
            raise VectorIndexError(f"the vector index {path} is damaged (size {size:,} bytes, not "
                                   f"{len(MAGIC) + HEADER_BYTES + payload_bytes:,}: truncated?)")
        digest = hashlib.sha256() if verify else None

        def read(n: int) -> bytes:
            data = f.read(n)
            if digest is not None:
                digest.update(data)
            return data

        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(read))
        except RuntimeError:
            raise VectorIndexError(f"the vector index {path} is damaged (FAISS cannot read it)") from None
        if f.tell() != size:
            raise VectorIndexError(f"the vector index {path} is damaged (bytes after the index)")
        if digest is not None and digest.hexdigest() != payload_sha:
            raise VectorIndexError(f"the vector index {path} is damaged (checksum mismatch)")
    if index.d != config.get("dim") or index.ntotal != config.get("count"):
        raise VectorIndexError(f"the vector index {path} is damaged (its header and its vectors disagree)")
    cls = ExactIndex if kind == "exact" else IVFSQ8Index
    return cls._opened(index, config)


def exact_neighbours(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int,
                     chunk: int = 65_536) -> np.ndarray:
    """Ids of the k nearest `vectors` (inner product) of each query, exactly, a chunk at a time (so
    that a million vectors need not be in one array): the ground truth for `tune_nprobe`."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), k), -1, dtype=np.int64)
    for first in range(0, len(vectors), chunk):
        block = np.asarray(vectors[first:first + chunk], dtype=np.float32)
        scores = queries @ block.T
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(ids[first:first + chunk], scores.shape)], axis=1)
        top = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, top, axis=1)
        best_ids = np.take_along_axis(all_ids, top, axis=1)
    return best_ids


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of the share of the true top-k ids (those that exist) found."""
    shares = []
    for got, want in zip(found, truth):
        want = want[want >= 0]
        if len(want):
            shares.append(len(np.intersect1d(got[got >= 0], want)) / len(want))
    return float(np.mean(shares)) if shares else 1.0


def tune_nprobe(index, sample_queries: np.ndarray, target_recall: float = TARGET_RECALL, k: int = 10,
                exact_ids: np.ndarray | None = None, margin: float = NPROBE_MARGIN) -> tuple[int, float]:
    """`margin` times the smallest `nprobe` whose recall@k against exact search on `sample_queries`
    meets `target_recall` (at most every list), set on the index and recorded in its configuration
    with that smallest one; returns (nprobe, recall on the sample at it).

    The truth is `exact_ids` when given (the exact top-k over the float vectors, from
    `exact_neighbours`: this counts what SQ8 loses too); otherwise the index searched over every
    list (what probing fewer lists loses). When even every list falls short, returns nlist and the
    recall reached. An exact index has nothing to tune: (0, 1.0)."""
    if index.kind == "exact":
        return 0, 1.0
    queries = _checked_vectors(sample_queries, index.dim, "sample queries")
    if exact_ids is None:
        _, exact_ids = index.search_nprobe(queries, k, index.nlist)
        against = "the index over every list"
    else:
        against = "exact search over the float vectors"
    truth = np.asarray(exact_ids, dtype=np.int64)[:, :k]

    def recall(nprobe: int) -> float:
        return recall_at_k(index.search_nprobe(queries, k, nprobe)[1], truth)

    low, high, reached = 0, None, {}
    nprobe = 1
    while True:  # doubling, then bisection between the last that fell short and the first that met
        reached[nprobe] = recall(nprobe)
        if reached[nprobe] >= target_recall:
            high = nprobe
            break
        low = nprobe
        if nprobe >= index.nlist:
            break
        nprobe = min(nprobe * 2, index.nlist)
    if high is None:
        chosen = index.nlist
    else:
        while high - low > 1:
            middle = (low + high) // 2
            reached[middle] = recall(middle)
            if reached[middle] >= target_recall:
                high = middle
            else:
                low = middle
        chosen = min(index.nlist, math.ceil(high * margin))
        if chosen not in reached:
            reached[chosen] = recall(chosen)
    index.set_nprobe(chosen, {"recall": round(reached[chosen], 4), "target": target_recall, "k": k,
                              "queries": len(queries), "against": against, "met": reached[chosen] >= target_recall,
                              "smallest_meeting": high, "margin": margin})
    return chosen, reached[chosen]


# -- the two kinds -------------------------------------------------------------------------------


class _FaissIndex:
    kind: str

    def __init__(self, index, dim: int, config: dict):
        self._index = index
        self.dim = dim
        self.config = config  # what `save` records besides the payload; see `configuration`

    # -- what both kinds share --
    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """Every passage id held, in no particular order."""
        raise NotImplementedError

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add `vectors` under `ids` (new ids: to replace a passage, remove it first)."""
        ids = _checked_ids(ids)
        vectors = _checked_vectors(vectors, self.dim, "vectors")
        if len(ids) != len(vectors):
            raise VectorIndexError(f"{len(ids):,} ids for {len(vectors):,} vectors")
        if len(np.unique(ids)) != len(ids):
            raise VectorIndexError("the ids to add repeat")
        if len(self) and len(ids):
            present = ids[np.isin(ids, self.ids())]
            if len(present):
                raise VectorIndexError(f"{len(present):,} of the ids to add are already in the index "
                                       f"(e.g. {int(present[0])}); remove them first to replace them")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        """Remove the passages `ids`; ids not in the index are ignored."""
        import faiss

        ids = _checked_ids(ids)
        if len(ids) and len(self):
            self._index.remove_ids(faiss.IDSelectorArray(np.ascontiguousarray(ids)))

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (queries, k), best first; id -1 and score -inf where fewer than k
        passages (of `allowed`, when given) exist."""
        queries = _checked_vectors(np.atleast_2d(queries), self.dim, "queries", normalized=False)
        if k < 1:
            raise VectorIndexError(f"k must be at least 1, not {k}")
        if allowed is not None:
            allowed = np.unique(_checked_ids(allowed))
            if len(allowed) == 0:
                return _empty(len(queries), k)
        with _threads(1 if len(queries) <= SINGLE_THREAD_QUERIES else None):
            scores, ids = self._search(queries, k, allowed)
        scores = scores.copy()
        scores[ids < 0] = -np.inf
        return scores, ids

    def configuration(self) -> dict:
        """What is recorded with the index: kind, dimension, count, and for ivf-sq8 the lists and
        the tuned nprobe with the recall it reached."""
        return {"format": FORMAT_VERSION, "kind": self.kind, "dim": self.dim, "count": len(self), **self.config}

    def save(self, path: Path) -> None:
        """Write the index to `path` in one atomic replace (temporary file, fsync, rename)."""
        import faiss

        path = Path(path)
        digest, written = hashlib.sha256(), 0

        def write_to(temp: str) -> None:
            nonlocal written
            with open(temp, "r+b") as f:
                f.write(MAGIC + b" " * HEADER_BYTES)

                def write(data: bytes) -> int:
                    nonlocal written
                    digest.update(data)
                    written += len(data)
                    f.write(data)
                    return len(data)

                writer = faiss.PyCallbackIOWriter(write)
                faiss.write_index(self._index, writer)
                del writer  # flushes FAISS's buffer through `write`
                header = json.dumps({**self.configuration(), "payload_bytes": written,
                                     "payload_sha256": digest.hexdigest()}).encode("utf-8")
                if len(header) > HEADER_BYTES:
                    raise VectorIndexError("the vector index's configuration is too long to save")
                f.seek(len(MAGIC))
                f.write(header)

        write_atomic(path, write_to)

    @classmethod
    def _opened(cls, index, config: dict):
        kept = {k: v for k, v in config.items() if k not in ("format", "kind", "dim", "count",
                                                             "payload_bytes", "payload_sha256")}
        return cls(index, int(config["dim"]), kept)


class ExactIndex(_FaissIndex):
    """Every vector scanned for every query: recall 1, cost linear in the passages."""

    kind = "exact"

    @classmethod
    def empty(cls, dim: int, chosen_by: str = "given") -> "ExactIndex":
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), dim, {"chosen_by": chosen_by})

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)

    def _search(self, queries, k, allowed):
        import faiss

        if allowed is None:
            return self._index.search(queries, k)
        selector = faiss.IDSelectorBatch(allowed)
        return self._index.search(queries, k, params=faiss.SearchParameters(sel=selector))


class IVFSQ8Index(_FaissIndex):
    """Inverted lists of 8-bit codes: `nprobe` of `nlist` lists scanned per query."""

    kind = "ivf-sq8"

    @classmethod
    def untrained(cls, dim: int, nlist: int, expected_size: int, chosen_by: str) -> "IVFSQ8Index":
        """Trained, and tuned, on the first vectors added (see `new_vector_index`)."""
        return cls(None, dim, {"chosen_by": chosen_by, "nlist_wanted": nlist, "expected_size": expected_size,
                               "trained_on": 0, "nprobe": None, "tuning": None})

    @classmethod
    def trained(cls, dim: int, nlist_wanted: int, sample: np.ndarray, chosen_by: str) -> "IVFSQ8Index":
        import faiss

        nlist = max(1, min(nlist_wanted, len(sample) // MIN_POINTS_PER_LIST))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.min_points_per_centroid = 1  # the sample size was checked above; no warnings
        index.train(sample)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        index.nprobe = min(nlist, max(1, nlist // 64))  # until tune_nprobe measures one
        config = {"chosen_by": chosen_by, "nlist": nlist, "trained_on": len(sample), "nprobe": int(index.nprobe),
                  "tuning": None}
        if nlist != nlist_wanted:
            config["nlist_note"] = f"{nlist_wanted} lists wanted, {nlist} trained: the sample had {len(sample):,} vectors"
        return cls(index, dim, config)

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._index is not None:
            return super().add(ids, vectors)
        vectors = _checked_vectors(vectors, self.dim, "vectors")
        if len(vectors) == 0:
            return
        ids = _checked_ids(ids)
        if len(ids) != len(vectors):
            raise VectorIndexError(f"{len(ids):,} ids for {len(vectors):,} vectors")
        rng = np.random.default_rng(0)
        want = min(len(vectors), training_sample_size(max(self.config["expected_size"], len(vectors))))
        sample = vectors[np.sort(rng.choice(len(vectors), want, replace=False))]
        trained = IVFSQ8Index.trained(self.dim, self.config["nlist_wanted"], sample, self.config["chosen_by"])
        self._index, self.config = trained._index, trained.config
        super().add(ids, vectors)
        queries = vectors[np.sort(rng.choice(len(vectors), min(200, len(vectors)), replace=False))]
        tune_nprobe(self, queries, exact_ids=exact_neighbours(vectors, ids, queries, 10))
        self.config["tuning"]["against"] += " (200 of the first passages added as queries)"

    def remove(self, ids: np.ndarray) -> None:
        if self._index is not None:
            super().remove(ids)

    def ids(self) -> np.ndarray:
        if self._index is None:
            return np.zeros(0, np.int64)
        return self._ids()

    def save(self, path: Path) -> None:
        if self._index is None:
            raise VectorIndexError("an ivf-sq8 index is trained on the first vectors added: add some before saving it")
        super().save(path)

    @property
    def nlist(self) -> int:
        return int(self.config["nlist_wanted"]) if self._index is None else int(self._index.nlist)

    @property
    def nprobe(self) -> int:
        return 0 if self._index is None else int(self._index.nprobe)

    def set_nprobe(self, nprobe: int, tuning: dict | None = None) -> None:
        self._index.nprobe = max(1, min(int(nprobe), self.nlist))
        self.config["nprobe"] = self.nprobe
        if tuning is not None:
            self.config["tuning"] = tuning

    def _ids(self) -> np.ndarray:
        import faiss

        lists = self._index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(self.nlist) if lists.list_size(i)]
        return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)

    def search_nprobe(self, queries: np.ndarray, k: int, nprobe: int, allowed: np.ndarray | None = None):
        import faiss

        params = faiss.SearchParametersIVF(nprobe=max(1, min(int(nprobe), self.nlist)))
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed)
            params.sel = selector
        return self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)

    def _search(self, queries, k, allowed):
        if self._index is None:
            return _empty(len(queries), k)
        scores, ids = self.search_nprobe(queries, k, self.nprobe, allowed)
        # Probing nprobe lists can find fewer than k of what exists; search those queries again
        # over every list, so that k hits come back whenever k exist.
        exist = min(k, len(self) if allowed is None else len(allowed))
        short = np.flatnonzero((ids >= 0).sum(axis=1) < exist)
        if len(short) and self.nprobe < self.nlist:
            again_scores, again_ids = self.search_nprobe(queries[short], k, self.nlist, allowed)
            scores[short], ids[short] = again_scores, again_ids
        return scores, ids


class _threads:
    """FAISS's OpenMP threads set to `n` inside the block (unchanged for None), restored after."""

    def __init__(self, n: int | None):
        self.n, self.before = n, None

    def __enter__(self):
        if self.n is not None:
            import faiss

            self.before = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.before is not None:
            import faiss

            faiss.omp_set_num_threads(self.before)


# -- checks -----------------------------------------------------------------------------------------


def _empty(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


def _checked_ids(ids) -> np.ndarray:
    return checked_ids(ids, VectorIndexError)


def _checked_vectors(vectors, dim: int, what: str, normalized: bool = True) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise VectorIndexError(f"the {what} must be an array of shape (n, {dim}), not {vectors.shape}")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) and not np.isfinite(vectors).all():
        raise VectorIndexError(f"the {what} hold NaN or infinite values")
    if normalized and len(vectors):
        norms = np.linalg.norm(vectors, axis=1)
        if np.abs(norms - 1).max() > _NORM_TOLERANCE:
            raise VectorIndexError(f"the {what} must be L2-normalized (a norm of {float(norms[np.abs(norms - 1).argmax()]):.3f})")
    return vectors
