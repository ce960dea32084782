"""What long work is going on, said on stderr: opening an article (preparing the models the first
time, indexing an article not seen before), evaluating, answering a batch.

On a terminal a live line with a spinner or a bar (gone when done); when stderr is a pipe or a file,
one plain line per step, as logs want it, and no bars at all.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import typer

PREPARING = "Preparing the models for first use (once, ~15 s)…"


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


class Activity:
    """Steps of long work: a spinner (no total) or a bar of a total, each shown until stopped."""

    def __init__(self):
        self.live = sys.stderr.isatty()
        self._progress = None
        self._bars: dict[str, object] = {}

    def step(self, label: str, total: Optional[int] = None) -> None:
        """Start a step: a spinner (total None) or a bar of `total` units."""
        if not self.live:
            typer.echo(label, err=True)
            return
        if self._progress is None:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), "[progress.description]{task.description}", BarColumn(),
                                      TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                                      console=stderr_console(), transient=True)
            self._progress.start()
        self._bars[label] = self._progress.add_task(label, total=total, count="")

    def has(self, label: str) -> bool:
        """Whether the step `label` was started (and so is shown, on a terminal)."""
        return label in self._bars

    def advance(self, label: str, done: int, total: Optional[int]) -> None:
        if self._progress is not None and label in self._bars:
            count = f"{done}/{total}" if total else str(done)
            self._progress.update(self._bars[label], completed=done, total=total, count=count)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def progress_bar(label: str) -> tuple[Optional[Callable[[int, Optional[int]], None]], Optional[Activity]]:
    """A (done, total) callback drawing a bar on stderr and the activity to stop when done; both
    None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None, None
    activity = Activity()

    def update(done: int, total: Optional[int]) -> None:
        if not activity.has(label):
            activity.step(label, total)
        activity.advance(label, done, total)

    return update, activity


def read_article(article, encoding: str = "utf-8", index_dir=None, html: str = "story", refresh: bool = False):
    """The `Article` named on the command line (a path, a link, "-" or None), a link's page kept
    in the cache folder of `index_dir`; on a terminal a spinner while a link is fetched."""
    from article_qa.index.article import is_url, load_article
    from article_qa.index.cache_layout import CacheLayout
    from article_qa.index.printable import printable

    if article == "-" and sys.stdin.isatty():
        typer.echo("reading the article from standard input; end with Ctrl-D", err=True)
    activity = Activity()
    if is_url(article) and activity.live:
        activity.step(f"Opening {printable(article)}")
    try:
        return load_article(article, encoding=encoding, html=html, cache=CacheLayout.at(index_dir), refresh=refresh)
    finally:
        activity.stop()


def article_specs(article) -> list[str] | None:
    """The `--article` values as a list (None: the shipped article); one `Article` stays one."""
    if article is None or isinstance(article, (str, os.PathLike)):
        return None if article is None else [os.fspath(article)]
    if isinstance(article, (list, tuple)):
        return [os.fspath(a) for a in article] or None
    return None


def open_article_qa(article, encoding, index_dir, model, reader, k, rebuild: bool = False,
                    within: str | None = None, html: str = "story", refresh: bool = False):
    """The pipeline for `article` (a path, a link, "-", None, an `Article`, or several `--article`
    values: a corpus, `index.corpus_sources`), saying what takes time: fetching a link, preparing
    the models the first time and indexing an article (or a corpus's new and changed articles) not
    seen before. `within` limits every question to one article of a corpus (an id or a path)."""
    from article_qa.index.article import DEFAULT_ARTICLE_NAME, Article, is_url
    from article_qa.index.corpus_kind import is_corpus
    from article_qa.index.printable import printable
    from article_qa.qa.pipeline import ArticleQA
    from article_qa.terminal.process import offline_unless_hub, quiet_libraries

    quiet_libraries()
    offline_unless_hub(model, reader)
    specs = article_specs(article)
    if is_corpus(specs):
        return _open_corpus(specs, encoding, index_dir, model, reader, k, rebuild, within)
    if specs is not None:
        article = specs[0]
    if not isinstance(article, Article):
        article = read_article(article, encoding, index_dir, html, refresh)
    source = article.source
    shown = source if source in (DEFAULT_ARTICLE_NAME, "<stdin>") or is_url(source) else Path(source).name
    name = printable(shown)
    qa = _opened_with_activity(
        lambda total: f"Indexing {name}: {total} passage{'' if total == 1 else 's'}",
        lambda progress: ArticleQA.open(article, model=model, reader=reader, index_dir=index_dir,
                                        progress=progress, rebuild=rebuild),
        model, reader, index_dir)
    if within is not None:
        from article_qa.terminal.messages import UserError

        try:
            qa.resolve_within(within)
        except ValueError as err:
            raise UserError(str(err)) from None
    return qa.with_settings(k=k)


def _opened_with_activity(label: Callable[[int], str], open_with: Callable, model, reader, index_dir):
    """`open_with(progress)`, its indexing shown as a bar under `label(total passages)`, and on first
    use the models prepared under PREPARING; the activity line is gone when it returns or fails."""
    from article_qa.qa.pipeline import first_use

    activity = Activity()

    def progress(done: int, total: int) -> None:
        step = label(total)
        if not activity.has(step):
            activity.step(step, total)
        activity.advance(step, done, total)

    try:
        preparing = first_use(model, reader, index_dir)
        if preparing:
            activity.step(PREPARING)
        qa = open_with(progress)
        if preparing:
            qa.prepare()
    finally:
        activity.stop()
    return qa


def _open_corpus(specs, encoding, index_dir, model, reader, k, rebuild, within):
    """A corpus's pipeline; each article that could not be read is said by name, on stderr."""
    from article_qa.index.corpus_sources import list_corpus
    from article_qa.index.printable import printable
    from article_qa.qa.pipeline import ArticleQA
    from article_qa.terminal.messages import UserError, warn

    listing = list_corpus(specs)
    qa = _opened_with_activity(
        # counted in articles: a corpus is read and embedded in batches, its passages not known ahead
        lambda total: f"Indexing {len(listing.entries)} articles: {total} new or changed to read",
        lambda progress: ArticleQA.open_corpus(listing, model=model, reader=reader, index_dir=index_dir,
                                               progress=progress, rebuild=rebuild, encoding=encoding),
        model, reader, index_dir)
    for skipped in qa.index.status.changes.skipped:
        named = skipped.reason if printable(skipped.source) in skipped.reason else \
            f"{printable(skipped.source)}: {skipped.reason}"
        warn(f"{named} (skipped; the other articles are indexed)")
    try:
        limit = qa.resolve_within(within)
    except ValueError as err:
        raise UserError(str(err)) from None
    return qa.with_settings(k=k, within=limit)


def skipped_articles(qa) -> int:
    """How many articles of a corpus could not be read (each named on stderr when it was opened):
    `ask` and `batch` exit 1 when there are any, as `index` does; 0 for a single article."""
    if not getattr(qa, "is_corpus", False):
        return 0
    return len(qa.index.status.changes.skipped)


@contextmanager
def batch_progress(total: int | None):
    """done/total, answers per second and time left, on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} q/s" if speed else "- q/s", style="progress.data.speed")

    progress = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), Rate(),
                        TimeRemainingColumn(), console=stderr_console(), transient=True)
    task = progress.add_task("Answering", total=total)
    progress.start()
    try:
        yield lambda: progress.advance(task)
    finally:
        progress.stop()
