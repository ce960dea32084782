"""Passage ids as the search backends take them: a one-dimensional int64 array of non-negative ids."""

from __future__ import annotations

import numpy as np


def checked_ids(ids, error: type[Exception]) -> np.ndarray:
    """`ids` as a contiguous int64 array; `error` (the backend's own error class) for anything else."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or (len(ids) and not np.issubdtype(ids.dtype, np.integer)):
        raise error("passage ids must be a one-dimensional array of integers")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids) and ids.min() < 0:
        raise error(f"passage ids must not be negative (got {int(ids.min())})")
    return ids
