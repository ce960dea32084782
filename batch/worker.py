"""What a distributed engine's worker runs: open the pipeline once, then answer blocks with it.

The rule: a worker process loads the models and opens the index once (`worker_qa`, cached by the
`WorkerSpec` it was given) and answers every block it gets with that one pipeline, exactly as the
local engine answers (`batch.run.answer_records`), so a block's records are byte for byte the
local ones. The index is opened read-only from the folder the driver built (`ArticleQA.open_saved`):
a worker never builds or updates an index, and one that cannot read the folder raises
`SavedIndexError`, which the driver shows as one line. A worker answers one block at a time (a
lock), so a worker given several threads still uses the pipeline from one thread at a time.

Nothing here imports the engine: these functions are sent to the workers by reference
(`article_qa.batch.worker.answer_block`), so article-qa must be installed on every worker.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from article_qa.batch.blocks import Block
from article_qa.batch.run import MAX_CHUNK, Done, answer_records
from article_qa.index.article import Article
from article_qa.index.passages import Chunking


@dataclass(frozen=True)
class WorkerSpec:
    """How a worker opens the pipeline the driver opened: the saved index folder (an absolute
    path every worker must be able to read), the article for a one-article index (None: a corpus),
    the models, the cache holding their exports, and the answering settings."""

    folder: str
    article: Article | None
    model: str | None
    reader: str | None
    index_dir: str
    chunking: Chunking
    settings: object  # qa.pipeline.Settings

    def key(self) -> tuple:
        return (self.folder, None if self.article is None else self.article.sha256, self.model, self.reader,
                self.index_dir, repr(self.chunking), repr(self.settings))


@dataclass(frozen=True)
class Loaded:
    """A worker's answer to the driver's warm-up: which process, and how long opening took."""

    pid: int
    seconds: float
    error: str | None = None


_lock = threading.Lock()
_loaded: dict[tuple, object] = {}  # spec key → ArticleQA; one pipeline per worker process


def worker_qa(spec: WorkerSpec):
    """This process's pipeline for `spec`, opened (and both models loaded) the first time. A new
    spec replaces the old pipeline: a worker of a long-lived cluster holds one set of models."""
    key = spec.key()
    qa = _loaded.get(key)
    if qa is not None:
        return qa
    from article_qa.qa.pipeline import ArticleQA
    from article_qa.terminal.process import offline_unless_hub, quiet_libraries

    quiet_libraries()
    offline_unless_hub(spec.model, spec.reader)
    qa = ArticleQA.open_saved(spec.folder, spec.article, model=spec.model, reader=spec.reader,
                              index_dir=spec.index_dir, chunking=spec.chunking, settings=spec.settings)
    qa.prepare()
    _loaded.clear()
    _loaded[key] = qa
    return qa


def load(spec: WorkerSpec) -> Loaded:
    """Open the pipeline now (the driver's warm-up, once per worker); an unreadable index folder
    comes back as the error's one line instead of failing the task."""
    from article_qa.index.store import SavedIndexError

    started = time.perf_counter()
    try:
        with _lock:
            worker_qa(spec)
    except SavedIndexError as err:
        return Loaded(os.getpid(), time.perf_counter() - started, str(err))
    return Loaded(os.getpid(), time.perf_counter() - started)


def answer_block(spec: WorkerSpec, block: Block) -> list[dict | Done]:
    """The records of the block's lines, as the local engine writes them (one per line)."""
    with _lock:
        qa = worker_qa(spec)
        return list(answer_records(qa, block.records, block.done, chunk_size=MAX_CHUNK))


def dask_setup(worker) -> None:
    """Run by Dask in every worker process of a local cluster started by `batch --engine dask`
    (this module is its preload, restarted workers included): Ctrl-C at a terminal reaches the
    whole process group, workers too, and the driver shuts them down itself, so a worker ignores
    SIGINT instead of printing a traceback over the batch's one line."""
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
