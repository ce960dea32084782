"""Run independent model batches on all cores at once, one thread each.

Why not ONNX Runtime's own threads: splitting each matrix product across cores pays a
synchronisation per operator, which a short chat window or a 100-piece batch cannot amortise, and
two sessions' worker threads (encoder, reader) fight over the cores when they take turns. Batches
are independent, so running one single-threaded batch per core keeps every core busy with no
synchronisation inside a run: measured on 2 cores, 12 reader batches of 16 x 100 pieces took
3.35 s this way against 4.07 s with two intra-op threads per run. ONNX Runtime releases the GIL
while it runs, so Python threads are enough.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_WORKERS = 8  # past this, memory for activations grows faster than throughput

# torch and transformers are imported, and models built or exported with them, under this lock.
# The reader may load in a background thread while the encoder loads in the main one, and
# transformers' lazy module answered "cannot import name 'AutoModel'" when two threads imported it
# at once (both ONNX exports missing, e.g. after a cache was cleared). torch work is one-time and
# slow either way; running it in turn costs nothing that matters.
TORCH_WORK = threading.RLock()


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, count))


def map_in_threads(work: Callable[[Item], Result], items: Iterable[Item], workers: int) -> Iterator[Result]:
    """`map(work, items)` on up to `workers` threads; results come back in the order of `items`."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        yield from map(work, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="article-qa") as pool:
        yield from pool.map(work, items)
