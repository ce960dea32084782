"""Exact search backends for a corpus, behind the agreed interfaces of `index/vector_backends.py`
and `index/lexical_backends.py` (`VectorIndex`, `LexicalIndex`): used by the corpus store when
those modules are not there, and the reference they are measured against.

Both keep their data as numpy arrays keyed by passage id, so an article's passages can be removed
and added without touching the others, and `allowed` restricts a search to some passages before it
is made (a question limited to one article gets its k passages from that article). Saved as one
`.npz` file each, read back with `allow_pickle=False`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from article_qa.index.lexical import terms


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (scores, ids), best first, padded with (0, -1)."""
    out_s = np.zeros(k, dtype=np.float32)
    out_i = np.full(k, -1, dtype=np.int64)
    if len(scores) and k > 0:
        n = min(k, len(scores))
        part = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        order = part[np.lexsort((ids[part], -scores[part]))]
        out_s[:n], out_i[:n] = scores[order], ids[order]
    return out_s, out_i


class ExactVectorIndex:
    """Inner product over every stored unit vector (= cosine)."""

    kind = "exact"

    def __init__(self, dim: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None):
        self.dim = dim
        self.ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, np.int64)
        self.vectors = np.zeros((0, dim), np.float32) if vectors is None else np.asarray(vectors, np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        self.vectors = np.concatenate([self.vectors, np.asarray(vectors, np.float32).reshape(-1, self.dim)])

    def remove(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self.ids, np.asarray(ids, np.int64))
        self.ids, self.vectors = self.ids[keep], self.vectors[keep]

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, np.float32).reshape(-1, self.dim)
        ids, vectors = self.ids, self.vectors
        if allowed is not None:
            mask = np.isin(ids, np.asarray(allowed, np.int64))
            ids, vectors = ids[mask], vectors[mask]
        scores = queries @ vectors.T
        pairs = [_top(row, ids, k) for row in scores]
        return (np.stack([p[0] for p in pairs]) if pairs else np.zeros((0, k), np.float32),
                np.stack([p[1] for p in pairs]) if pairs else np.zeros((0, k), np.int64))

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, ids=self.ids, vectors=self.vectors, dim=np.int64(self.dim))

    def __len__(self) -> int:
        return len(self.ids)


def open_vector_index(path: Path) -> ExactVectorIndex:
    with np.load(path, allow_pickle=False) as data:
        return ExactVectorIndex(int(data["dim"]), data["ids"], data["vectors"])


def new_vector_index(dim: int, expected_size: int = 0, kind: str | None = None,
                     training_sample: np.ndarray | None = None) -> ExactVectorIndex:
    if kind not in (None, "exact"):
        raise ValueError(f"unknown vector index kind {kind!r}; this build has 'exact' only")
    return ExactVectorIndex(dim)


class ExactLexicalIndex:
    """Okapi BM25 (k1=1.5, b=0.75, as `index/lexical.py`) over postings kept sorted by term;
    document frequencies and the average length are the whole corpus's, whatever `allowed` is."""

    kind = "bm25-exact"
    k1, b = 1.5, 0.75

    def __init__(self, words=None, term=None, doc=None, tf=None, ids=None, lengths=None):
        self.words: list[str] = list(words) if words is not None else []
        self.vocabulary = {w: i for i, w in enumerate(self.words)}
        self.term = np.zeros(0, np.int64) if term is None else np.asarray(term, np.int64)  # sorted
        self.doc = np.zeros(0, np.int64) if doc is None else np.asarray(doc, np.int64)
        self.tf = np.zeros(0, np.float32) if tf is None else np.asarray(tf, np.float32)
        self.ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, np.int64)  # sorted
        self.lengths = np.zeros(0, np.float32) if lengths is None else np.asarray(lengths, np.float32)

    def add(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        term, doc, tf, lengths = [], [], [], []
        for pid, text in zip(np.asarray(ids, np.int64), texts):
            counted: dict[int, int] = {}
            words = terms(text)
            for word in words:
                column = self.vocabulary.get(word)
                if column is None:
                    column = self.vocabulary[word] = len(self.words)
                    self.words.append(word)
                counted[column] = counted.get(column, 0) + 1
            term.extend(counted)
            doc.extend([int(pid)] * len(counted))
            tf.extend(counted.values())
            lengths.append(len(words))
        all_term = np.concatenate([self.term, np.asarray(term, np.int64)])
        order = np.argsort(all_term, kind="stable")
        self.term = all_term[order]
        self.doc = np.concatenate([self.doc, np.asarray(doc, np.int64)])[order]
        self.tf = np.concatenate([self.tf, np.asarray(tf, np.float32)])[order]
        all_ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        by_id = np.argsort(all_ids, kind="stable")
        self.ids = all_ids[by_id]
        self.lengths = np.concatenate([self.lengths, np.asarray(lengths, np.float32)])[by_id]

    def remove(self, ids: np.ndarray) -> None:
        gone = np.asarray(ids, np.int64)
        keep = ~np.isin(self.doc, gone)
        self.term, self.doc, self.tf = self.term[keep], self.doc[keep], self.tf[keep]
        keep_ids = ~np.isin(self.ids, gone)
        self.ids, self.lengths = self.ids[keep_ids], self.lengths[keep_ids]

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.ids)
        scores: dict[int, float] = {}
        if n:
            average = max(float(self.lengths.mean()), 1e-9)
            allowed_ids = None if allowed is None else np.asarray(allowed, np.int64)
            for word in terms(query):  # a word said twice counts twice, as in index/lexical.py
                column = self.vocabulary.get(word)
                if column is None:
                    continue
                first, last = np.searchsorted(self.term, [column, column + 1])
                docs, tf = self.doc[first:last], self.tf[first:last]
                if not len(docs):
                    continue
                idf = np.log1p((n - len(docs) + 0.5) / (len(docs) + 0.5))
                if allowed_ids is not None:
                    mask = np.isin(docs, allowed_ids)
                    docs, tf = docs[mask], tf[mask]
                lengths = self.lengths[np.searchsorted(self.ids, docs)]
                norm = self.k1 * (1 - self.b + self.b * lengths / average)
                for pid, value in zip(docs.tolist(), (tf * (self.k1 + 1) / (tf + norm) * idf).tolist()):
                    scores[pid] = scores.get(pid, 0.0) + value
        ids = np.fromiter(scores.keys(), np.int64, len(scores))
        values = np.fromiter(scores.values(), np.float32, len(scores))
        return _top(values, ids, k)

    def save(self, path: Path) -> None:
        words = np.array(self.words, dtype=str) if self.words else np.zeros(0, dtype="<U1")
        with open(path, "wb") as handle:
            np.savez(handle, words=words, term=self.term, doc=self.doc, tf=self.tf, ids=self.ids,
                     lengths=self.lengths)

    def __len__(self) -> int:
        return len(self.ids)


def open_lexical_index(path: Path) -> ExactLexicalIndex:
    with np.load(path, allow_pickle=False) as data:
        return ExactLexicalIndex([str(w) for w in data["words"]], data["term"], data["doc"], data["tf"],
                                 data["ids"], data["lengths"])


def new_lexical_index(kind: str | None = None) -> ExactLexicalIndex:
    if kind not in (None, "bm25-exact"):
        raise ValueError(f"unknown lexical index kind {kind!r}; this build has 'bm25-exact' only")
    return ExactLexicalIndex()
