"""Concurrency for the models: independent batches on all cores at once (one thread each), a
model loaded in the background (`Loading`), and torch work in turn (`TORCH_WORK`).

Why batches and not ONNX Runtime's own threads: splitting each matrix product across cores pays a
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
from typing import Callable, Generic, Iterable, Iterator, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
T = TypeVar("T")

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


class Loading(Generic[T]):
    """A value loaded once, on first use or ahead of it in a background thread.

    Used for the models: loading the reader (0.15-0.3 s, mostly ONNX Runtime building its session,
    which releases the GIL) overlaps with loading the encoder and searching when it starts before
    the search, so a cold `ask` is that much shorter on two cores; a chat loads both while its user
    types. Errors surface where the value is used.
    """

    def __init__(self, load: Callable[[], T]):
        self._load = load
        self._lock = threading.Lock()
        self._value: T | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def loaded(self) -> T | None:
        """The value if it is loaded; never waits or loads."""
        return self._value

    def start(self) -> None:
        with self._lock:
            if self._value is None and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="article-qa-loading", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            value = self._load()
        except BaseException as error:  # noqa: BLE001 - re-raised in the thread that uses the value
            self._error = error
        else:
            with self._lock:
                if self._value is None:  # a value set meanwhile (use_reader) wins
                    self._value = value

    def get(self) -> T:
        thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            if self._error is not None:
                error, self._error, self._thread = self._error, None, None
                raise error
            if self._value is None:
                self._value = self._load()
            return self._value

    def set(self, value: T) -> None:
        with self._lock:
            self._value = value
