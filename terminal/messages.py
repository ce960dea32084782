"""What the command line says when something is wrong: one line on stderr, `article-qa: error: …`
or `article-qa: warning: …`, and the exit status that goes with it.

Every problem a user can fix reaches the commands as one of the library's own errors (a bad
article, model, reader, batch input or output) or as `UserError`; `user_errors` turns each into its
line and status 2, Ctrl-C into status 130 and SIGTERM into 143. Warnings (a question read in part,
a cache folder not used) are shown the same way.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager

import typer

PREFIX = "article-qa"


class UserError(Exception):
    """A problem the user can fix; shown as one line, exit status 2."""


class OneLineUsageError(typer.BadParameter):
    """A bad option value, said in one line like the commands' own errors (exit 2)."""

    def show(self, file=None) -> None:
        error_line(self.message)


def error_line(message: str) -> None:
    typer.echo(f"{PREFIX}: error: {message}", err=True)


def fail(message: str, code: int = 2):
    """Say `message` as an error and leave with `code`."""
    error_line(message)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """`article-qa: warning: …` on stderr; on a terminal wrapped at word boundaries to its width,
    on a pipe one line, as logs want it."""
    line = f"{PREFIX}: warning: {message}"
    if sys.stderr.isatty():
        import shutil
        import textwrap

        width = shutil.get_terminal_size().columns
        line = "\n".join(textwrap.wrap(line, width=max(20, width - 1), subsequent_indent="  ",
                                       break_long_words=False, break_on_hyphens=False))
    typer.echo(line, err=True)


def user_facing_errors() -> tuple[type[Exception], ...]:
    """The library's errors whose message is meant for the user as it is."""
    from article_qa.batch.engine import EngineError
    from article_qa.batch.input import InputError
    from article_qa.batch.output import OutputError
    from article_qa.index.article import ArticleError
    from article_qa.index.embedding_model import ModelError
    from article_qa.qa.reader_loading import ReaderError

    return ArticleError, ModelError, ReaderError, InputError, OutputError, EngineError, UserError


@contextmanager
def user_errors():
    """Turn the library's user-facing errors into one line on stderr and a non-zero exit."""
    from article_qa.terminal.process import Terminated

    def show_warning(message, category, *args, **kwargs):
        warn(str(message))

    previous = warnings.showwarning
    warnings.showwarning = show_warning
    # Said for every question it concerns, not once per process as Python's default filter would.
    warnings.filterwarnings("always", message="(the question looks like|question is longer)")
    try:
        yield
    except user_facing_errors() as err:
        fail(str(err))
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)  # SIGTERM during a batch
        typer.echo(f"{PREFIX}: {'terminated' if terminated else 'interrupted'}", err=True)
        raise typer.Exit(143 if terminated else 130) from None
    finally:
        warnings.showwarning = previous
