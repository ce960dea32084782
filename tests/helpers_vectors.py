"""Vectors shaped like sentence embeddings for the vector-index tests: unit rows in clusters
(topics), and questions close to some of them."""

from __future__ import annotations

import numpy as np


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(seed: int, count: int, clusters: int, dim: int, questions: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` unit vectors around `clusters` random centres, and `questions` unit vectors each
    near one of them (the spreads keep a question's top ten inside its cluster, not identical)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((clusters, dim)))
    vectors = unit(centres[rng.integers(0, clusters, count)] + 0.35 * rng.standard_normal((count, dim)))
    near = vectors[rng.choice(count, questions, replace=False)]
    return vectors, unit(near + 0.2 * rng.standard_normal((questions, dim)))
