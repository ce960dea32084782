"""Which engine answers a batch: `local` (this process, the default) or `dask` (a Dask cluster).

The rule: the local engine is the batch as it always was, and nothing here imports an engine; a
distributed engine is imported only when asked for, and a missing one is one line that says what
to install. The choice is checked before the output is touched or an index built.

Dask and not Ray, measured on this project's 2-core machine (Python 3.11, README "Batch on a
cluster"): `dask[distributed]` adds 35 MB to the environment and installs in 4 s, imports in
0.5-0.7 s and starts a local 2-worker cluster in 1.3 s; `ray[default]` adds 323 MB (a 79 MB
wheel), installs in 15 s and starts a local instance in 6.4-8.4 s. Both retry the work of a worker
that dies (Dask's scheduler reschedules its tasks, its nanny restarts the process), and a worker
that loads the models once is one cached loader per worker process, so Ray's actor pool brings
nothing this batch needs.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from dataclasses import dataclass

ENGINES = ("local", "dask")
ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"  # Dask's own variable: a scheduler to join
EXTRA = "pip install 'article-qa[dask]'"


class EngineError(Exception):
    """The engine cannot run this batch; str(err) is one line for the user."""


@dataclass(frozen=True)
class EngineChoice:
    """`--engine`, `--address` (or DASK_SCHEDULER_ADDRESS) and `--workers`, checked."""

    name: str = "local"
    address: str | None = None  # a scheduler to join; None: start a local cluster
    workers: int | None = None  # the local cluster's workers (None: one per core)

    @property
    def local(self) -> bool:
        return self.name == "local"


def choose_engine(name: str, address: str | None = None, workers: int | None = None) -> EngineChoice:
    """The engine to use, or EngineError. The address comes from `address`, else from Dask's own
    DASK_SCHEDULER_ADDRESS (only for `--engine dask`: the variable alone never moves a batch)."""
    name = name.strip().lower()
    if name == "ray":
        raise EngineError("--engine ray is not available: article-qa runs on Dask (measured lighter and faster to "
                          "start); use --engine dask")
    if name not in ENGINES:
        raise EngineError(f"--engine must be one of {', '.join(ENGINES)}, not {name!r}")
    if name == "local":
        if address:
            raise EngineError("--address names a Dask scheduler; give --engine dask too")
        if workers is not None:
            raise EngineError("--workers sizes a local Dask cluster; give --engine dask too")
        return EngineChoice()
    if address is not None and not address.strip():
        raise EngineError("--address is empty; give the Dask scheduler's address (tcp://host:8786)")
    address = address or os.environ.get(ADDRESS_ENV) or None
    if address is not None and workers is not None:
        raise EngineError("--workers sizes a local Dask cluster; a cluster at --address has its own workers")
    if workers is not None and workers < 1:
        raise EngineError("--workers must be at least 1")
    if not _installed("distributed"):
        raise EngineError(f"--engine dask needs Dask, which is not installed: {EXTRA}")
    return EngineChoice("dask", address, workers)


@contextmanager
def answerer(choice: EngineChoice, qa, model: str | None = None, reader: str | None = None, index_dir=None):
    """`answer(records, done)` → the output records in input order, for the chosen engine: the
    local engine is `batch.run.answer_records` itself, as it always was; Dask is imported here,
    only when chosen, and its cluster is shut down when the context ends."""
    if choice.local:
        from article_qa.batch.run import answer_records

        yield lambda records, done: answer_records(qa, records, done)
        return
    from article_qa.batch.distributed import answer_on_dask, dask_client, say, worker_spec

    spec = worker_spec(qa, model, reader, index_dir)
    say(f"joining the Dask scheduler at {choice.address}" if choice.address else "starting a local Dask cluster")
    with dask_client(choice) as client:
        yield lambda records, done: answer_on_dask(client, spec, records, done)


def _installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
