"""A batch answered on Dask: a local cluster started here, or an existing one joined by address.

The rules:

- Same records, same order: the input is planned into blocks (`batch.blocks`), each block is one
  Dask task answered by `batch.worker.answer_block` exactly as the local engine answers, and the
  records are handed back in input order as soon as every line before them is in (`InOrder`), so
  the caller writes them through the same `BatchOutput` (its lock, `--resume`, streaming).
- Models and index load once per worker: a warm-up task per worker opens the pipeline before any
  block is sent (a worker that cannot read the index folder fails the run with one line, naming
  the worker), and later blocks on that worker reuse it; the spec travels once (scattered).
- Faults are Dask's: a worker that dies mid-block has its block rescheduled by the scheduler on
  another worker (up to `distributed.scheduler.allowed-failures`, 3 by default; the local
  cluster's nanny also restarts the process). A block lost more often than that ends the run with
  one line; everything already written stays and `--resume` continues.
- Ctrl-C (or SIGTERM) stops at once: blocks not yet in are cancelled, a local cluster is shut
  down, and the records already handed out are all the caller has written.
- Blocks are submitted in input order with falling priority, so the first lines are answered
  first and the output grows from its start.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

from article_qa.batch.blocks import BLOCK_QUESTIONS, InOrder, plan_blocks
from article_qa.batch.engine import EngineChoice, EngineError
from article_qa.batch.input import BatchError, BatchQuestion
from article_qa.batch.run import Done
from article_qa.batch.worker import Loaded, WorkerSpec
from article_qa.index.printable import printable

CONNECT_TIMEOUT_S = 30
WORKERS_TIMEOUT_S = 120  # a scheduler with no workers: how long to wait for the first one


@dataclass
class Started:
    """What starting the engine cost (`python -m bench --rows engine` reports it)."""

    cluster_s: float = 0.0  # starting the local cluster, or connecting to the scheduler
    load_s: float = 0.0  # the warm-up: every worker opening the index and loading the models
    workers: int = 0
    ready_at: float = 0.0  # time.perf_counter() when the warm-up ended and the blocks were sent


def worker_spec(qa, model: str | None, reader: str | None, index_dir) -> WorkerSpec:
    """What the workers need to open the pipeline `qa` (opened here, its index built or refreshed):
    its saved index folder, as an absolute path. An index kept in memory (the cache folder cannot
    be used) cannot be shared, which is one line."""
    from article_qa.index.cache_layout import CacheLayout

    folder = qa.index.status.path
    if folder is None:
        why = qa.index.status.reason or "the cache folder cannot be used"
        raise EngineError(f"--engine dask needs the index saved in a folder the workers can read, and it is kept in "
                          f"memory ({why}); give --index-dir a folder of yours")
    return WorkerSpec(
        folder=os.path.abspath(folder), article=None if qa.is_corpus else qa.article, model=model, reader=reader,
        index_dir=os.path.abspath(CacheLayout.at(index_dir).root), chunking=qa.index.chunking,
        settings=qa.settings)


def default_workers() -> int:
    """A local cluster's workers when --workers is not given: one per 8 cores. A worker already
    answers on up to 8 cores at once (one reader batch a thread, `index.parallel.MAX_WORKERS`), and
    every worker holds its own copy of the models, so more workers than that would only crowd the
    cores and the memory (on 2 cores: one worker)."""
    from article_qa.index.parallel import MAX_WORKERS

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // MAX_WORKERS)


def _quiet_dask() -> None:
    """Dask's own log lines (a worker restarting, a connection closed at shutdown) are not the
    batch's output: errors only, here and in the workers started from here (they inherit it)."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    logging.getLogger("distributed").setLevel(logging.ERROR)


@contextmanager
def dask_client(choice: EngineChoice, started: Started | None = None):
    """A connected `distributed.Client`: to `choice.address`, or to a local cluster of
    `choice.workers` single-threaded worker processes (default: `default_workers`) shut down after."""
    _quiet_dask()
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # installed but broken
        raise EngineError(f"--engine dask cannot import Dask ({err}); reinstall it: pip install 'article-qa[dask]'") \
            from None
    started = started if started is not None else Started()
    began = time.perf_counter()
    cluster = None
    if choice.address:
        try:
            client = Client(choice.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            raise EngineError(f"cannot reach the Dask scheduler at {printable(choice.address)}: "
                              f"{_one_line(err)}") from None
    else:
        workers = choice.workers or default_workers()
        try:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR, preload=["article_qa.batch.worker"])
            client = Client(cluster)
        except Exception as err:  # noqa: BLE001 - whatever stops the cluster is one line
            if cluster is not None:
                cluster.close()
            raise EngineError(f"cannot start a local Dask cluster: {_one_line(err)}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except TimeoutError:
            raise EngineError(f"no Dask worker joined the scheduler at {printable(choice.address or '')} "
                              f"in {WORKERS_TIMEOUT_S} s") from None
        started.cluster_s = time.perf_counter() - began
        yield client
    finally:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()


def warm_up(client, spec_future, started: Started | None = None) -> list[Loaded]:
    """Every worker opens the pipeline now, in parallel; EngineError names a worker that cannot."""
    from article_qa.batch.worker import load

    began = time.perf_counter()
    workers = sorted(client.scheduler_info()["workers"])
    futures = [client.submit(load, spec_future, workers=[w], allow_other_workers=False, pure=False) for w in workers]
    try:
        loaded = client.gather(futures)
    except Exception as err:  # noqa: BLE001 - a worker that died or failed to load the models: one line
        raise EngineError(f"a Dask worker could not open the pipeline: {_one_line(err)}") from None
    for worker, result in zip(workers, loaded):
        if result.error:
            raise EngineError(f"the Dask worker at {worker} {result.error}; every worker must read the index folder "
                              "at the same path (a shared file system; README \"Batch on a cluster\")")
    if started is not None:
        started.ready_at = time.perf_counter()
        started.load_s = started.ready_at - began
        started.workers = len(workers)
    return loaded


def answer_on_dask(client, spec: WorkerSpec, records: Iterable[BatchQuestion | BatchError],
                   done: Mapping[int, Done] | None = None, block_questions: int = BLOCK_QUESTIONS,
                   started: Started | None = None) -> Iterator[dict | Done]:
    """The output records of `records`, one per input record, in input order, answered on the
    cluster `client` is connected to (see the module's rules)."""
    from distributed import as_completed

    from article_qa.batch.worker import answer_block
    from article_qa.index.store import SavedIndexError

    plan = plan_blocks(records, done, block_questions)
    out = InOrder(plan.order, plan.ready)
    yield from out.ready()
    if not plan.blocks:
        return
    spec_future = client.scatter(spec, broadcast=True, hash=False)
    warm_up(client, spec_future, started)
    futures = [client.submit(answer_block, spec_future, block, pure=False, priority=-block.number)
               for block in plan.blocks]
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except SavedIndexError as err:  # a worker that joined after the warm-up
                raise EngineError(f"a Dask worker {err}; every worker must read the index folder at the same path") \
                    from None
            except Exception as err:  # noqa: BLE001 - KilledWorker and the like end the run in one line
                raise EngineError(f"a block of the batch failed on Dask: {_one_line(err)}; the lines written are "
                                  "kept, --resume continues") from None
            out.add(result)
            yield from out.ready()
    finally:
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            client.cancel(unfinished)
    if not out.finished:  # cannot happen: every block returns one record per line
        raise EngineError(f"the Dask run lost {out.missing} records; --resume answers them")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def say(message: str) -> None:
    """A line about the engine on a terminal's stderr (a pipe gets only the records and errors)."""
    if sys.stderr.isatty():
        print(f"article-qa: {message}", file=sys.stderr)
