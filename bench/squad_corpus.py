"""Synthetic corpora of any size from SQuAD 1.0 training paragraphs, for the corpus benchmark.

SQuAD 1.0's training set has 440 articles and 18,746 paragraphs (~736 characters each). A corpus of
n passages takes them in order, one passage a paragraph, one article a SQuAD article; past the
end it repeats them with their names changed: in copy c (c ≥ 1) every capitalised word of three
or more letters that is not a stopword gets a suffix made for c ("Notre Dame" → "Notreka Dameka"),
in the paragraph and in its questions alike, so copies are different articles to a lexical index
and a question still matches its own copy's names. Nothing is stored: passage i's text is made when
asked for, so a million passages cost no memory until read.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from article_qa.index.lexical import STOPWORDS

_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
_SYLLABLES = ["ka", "lo", "mi", "ru", "se", "ta", "vo", "ne", "pi", "zu", "bo", "de", "fa", "gi", "ho", "ju"]


@dataclass(frozen=True)
class Squad:
    """The paragraphs of a SQuAD file in order, the article of each, and its questions."""

    titles: list[str]
    paragraphs: list[str]
    article_of: np.ndarray  # paragraph -> article number
    questions: list[tuple[int, str]]  # (paragraph, question)


def load_squad(path: Path) -> Squad:
    """Read a SQuAD 1.x/2.0 JSON file (gzipped or not)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    titles, paragraphs, article_of, questions = [], [], [], []
    for number, article in enumerate(data["data"]):
        titles.append(article.get("title", f"article {number}"))
        for paragraph in article["paragraphs"]:
            for qa in paragraph.get("qas", []):
                questions.append((len(paragraphs), qa["question"]))
            paragraphs.append(paragraph["context"])
            article_of.append(number)
    return Squad(titles, paragraphs, np.array(article_of, dtype=np.int64), questions)


def suffix(copy: int) -> str:
    """The name suffix of copy `copy` (empty for the original, copy 0)."""
    out = ""
    while copy > 0:
        copy, digit = divmod(copy - 1, len(_SYLLABLES))
        out = _SYLLABLES[digit] + out
    return out


def rename(text: str, copy: int) -> str:
    """`text` with its names changed for copy `copy` (unchanged for copy 0)."""
    if copy == 0:
        return text
    end = suffix(copy)
    return _NAME.sub(lambda m: m.group(0) if m.group(0).lower() in STOPWORDS else m.group(0) + end, text)


@dataclass(frozen=True)
class Corpus:
    """n passages: passage i is paragraph `base[i]` of the SQuAD file, copy `copy[i]`; passage ids
    are 0..n-1 and article ids `article[i]` (a copy of a SQuAD article is an article of its own)."""

    squad: Squad
    base: np.ndarray
    copy: np.ndarray
    article: np.ndarray

    def __len__(self) -> int:
        return len(self.base)

    def text(self, i: int) -> str:
        return rename(self.squad.paragraphs[int(self.base[i])], int(self.copy[i]))

    def texts(self, first: int, last: int) -> list[str]:
        return [self.text(i) for i in range(first, min(last, len(self)))]

    def passages_of(self, article: int) -> np.ndarray:
        return np.flatnonzero(self.article == article)


def make_corpus(squad: Squad, n: int, bases: int | None = None) -> Corpus:
    """n passages from the first `bases` paragraphs (all by default), repeated with names changed."""
    bases = min(bases or len(squad.paragraphs), len(squad.paragraphs))
    i = np.arange(n, dtype=np.int64)
    base, copy = i % bases, i // bases
    articles = int(squad.article_of[:bases].max()) + 1
    return Corpus(squad, base, copy, copy * articles + squad.article_of[base])


def perturbed_vectors(base_vectors: np.ndarray, corpus: Corpus, first: int, last: int, noise: float,
                      seed: int = 19) -> np.ndarray:
    """Vectors of passages first..last-1: each copy's base paragraph vector plus a random
    direction of relative length `noise` (fixed per passage), L2-normalized; the original (copy 0)
    keeps its real vector. cos(copy, base) = 1/√(1 + noise²)."""
    last = min(last, len(corpus))
    base = base_vectors[corpus.base[first:last]]
    rng = np.random.default_rng([seed, first])
    direction = rng.standard_normal(base.shape).astype(np.float32)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    out = base + noise * direction * (corpus.copy[first:last, None] > 0)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def noise_for_cosine(cosine: float) -> float:
    """The `noise` of `perturbed_vectors` that gives copies this cosine to their base."""
    cosine = min(max(cosine, 1e-3), 0.999999)
    return float(np.sqrt(1 / cosine**2 - 1))
