"""The `article-qa` command line: parses arguments and renders; the work happens in `qa/` and `index/`.

Heavy modules (numpy, FAISS, ONNX Runtime, and torch when it is needed at all) are imported inside
the commands, so `--help` and argument errors answer at once.
"""

from __future__ import annotations

import errno
import io
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, List, Optional

import typer

EXAMPLES = """

\b
Examples:
  article-qa ask Where were the peace talks held
  article-qa ask "Who is the U.S. envoy?" --article news.md --sources
  article-qa ask "Who is the U.S. envoy?" --article report.pdf --json
  article-qa chat
  printf '%s\\n' "Who is the president?" "What did he say?" | article-qa chat
  article-qa batch questions.jsonl --output answers.jsonl
  article-qa serve --open
  article-qa index --article news.md
  article-qa eval squad2_dev.json --limit 100
  article-qa cache
"""

app = typer.Typer(
    name="article-qa",
    help="Ask questions about an article; answers are spans of the article, shown with their evidence."
    + EXAMPLES,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("article-qa")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"article-qa {number}")
        raise typer.Exit()


@app.callback()
def _main(
    _: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    pass


ArticleOpt = typer.Option(None, "--article", "-a", help="Article file: text, Markdown (.md), HTML (.html) or PDF; '-' reads stdin. Default: the shipped article.")
IndexDirOpt = typer.Option(None, "--index-dir", envvar="ARTICLE_QA_INDEX_DIR", help="Where indexes are cached (default: your user cache folder).")
ModelOpt = typer.Option(None, "--model", help="Embedding model: sentence-transformers name or path (default: all-MiniLM-L6-v2, shipped).")
ReaderOpt = typer.Option(None, "--reader", help="Extractive QA model name or path (default: the shipped reader).")
EncodingOpt = typer.Option("utf-8", "--encoding", help="Text encoding of the article file.")
KOpt = typer.Option(3, "--k", "-k", min=1, max=50, help="How many passages to read for each question.")


class UserError(Exception):
    """A problem the user can fix; shown as one line, exit status 2."""


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _error(message: str, code: int = 2):
    typer.echo(f"article-qa: error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _user_errors():
    """Turn the library's user-facing errors into one line on stderr and a non-zero exit."""
    from article_qa.index.article import ArticleError
    from article_qa.index.embedding_model import ModelError
    from article_qa.qa.reader_loading import ReaderError

    def show_warning(message, category, *args, **kwargs):
        _warn(str(message))

    previous = warnings.showwarning
    warnings.showwarning = show_warning
    # Said for every question it concerns, not once per process as Python's default filter would.
    warnings.filterwarnings("always", message="(the question looks like|question is longer)")
    try:
        yield
    except (ArticleError, ModelError, ReaderError, UserError) as err:
        _error(str(err))
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)  # SIGTERM during a batch
        typer.echo(f"article-qa: {'terminated' if terminated else 'interrupted'}", err=True)
        raise typer.Exit(143 if terminated else 130)
    finally:
        warnings.showwarning = previous


def _warn(message: str) -> None:
    """`article-qa: warning: …` on stderr; on a terminal wrapped at word boundaries to its width
    (a long warning used to break words at the edge), on a pipe one line, as logs want it."""
    line = f"article-qa: warning: {message}"
    if sys.stderr.isatty():
        import shutil
        import textwrap

        width = shutil.get_terminal_size().columns
        line = "\n".join(textwrap.wrap(line, width=max(20, width - 1), subsequent_indent="  ",
                                       break_long_words=False, break_on_hyphens=False))
    typer.echo(line, err=True)


def _quiet_libraries() -> None:
    """Keep third-party chatter off the user's terminal and the network off unless asked."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # no "Retrying in 8s" lines before our error


def _offline_unless_hub(*names: Optional[str]) -> None:
    """Nothing reaches the network unless the user names a model that is not a local folder."""
    if all(n is None or Path(n).expanduser().exists() or n.lower() in {"all-minilm-l6-v2", "default"} for n in names):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


class _Activity:
    """Says what long work is going on, on stderr: a live line with a spinner or a bar on a
    terminal (gone when done), one plain line per step when stderr is a pipe or a file."""

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
                                      console=_stderr_console(), transient=True)
            self._progress.start()
        self._bars[label] = self._progress.add_task(label, total=total, count="")

    def advance(self, label: str, done: int, total: Optional[int]) -> None:
        if self._progress is not None and label in self._bars:
            count = f"{done}/{total}" if total else str(done)
            self._progress.update(self._bars[label], completed=done, total=total, count=count)

    def finish(self, label: str) -> None:
        if self._progress is not None and label in self._bars:
            self._progress.remove_task(self._bars.pop(label))

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _progress_callback(label: str):
    """A progress bar on stderr for long work, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None, None
    activity = _Activity()

    def update(done: int, total: Optional[int]) -> None:
        if label not in activity._bars:
            activity.step(label, total)
        activity.advance(label, done, total)

    return update, activity


PREPARING = "Preparing the models for first use (once, ~15 s)…"


def _open_qa(article, encoding, index_dir, model, reader, k, rebuild: bool = False, activity: Optional[_Activity] = None):
    """Open the article and its index, saying what takes time: preparing the models the first time
    and indexing an article not seen before (with a bar on a terminal, one line on a pipe)."""
    from article_qa.index.article import Article, load_article
    from article_qa.qa.pipeline import ArticleQA, first_use

    _quiet_libraries()
    _offline_unless_hub(model, reader)
    if article == "-" and sys.stdin.isatty():
        typer.echo("reading the article from standard input; end with Ctrl-D", err=True)
    text = article if isinstance(article, Article) else load_article(article, encoding=encoding)
    own = activity is None
    activity = activity or _Activity()
    name = _name(Path(text.source).name if text.source not in ("default article", "<stdin>") else text.source)
    indexing = {"said": False}

    def progress(done: int, total: int) -> None:
        label = f"Indexing {name}: {total} passage{'' if total == 1 else 's'}"
        if not indexing["said"]:
            indexing["said"] = True
            activity.step(label, total)
        activity.advance(label, done, total)

    try:
        preparing = first_use(model, reader, index_dir)
        if preparing:
            activity.step(PREPARING)
        qa = ArticleQA.open(text, model=model, reader=reader, index_dir=index_dir, progress=progress, rebuild=rebuild)
        if preparing:
            qa.prepare()
    finally:
        if own:
            activity.stop()
    return qa.with_settings(k=k)


def _use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _print_lines(lines) -> None:
    """Render `qa.render` lines: on a terminal through rich, wrapped at word boundaries (styled
    unless NO_COLOR or TERM=dumb); elsewhere as plain text with the span marked ⟦like this⟧."""
    from article_qa.terminal.render import plain_text, rich_lines

    if sys.stdout.isatty():
        from rich.console import Console

        color = _use_color()
        Console(highlight=False, no_color=not color, emoji=False, markup=False).print(rich_lines(lines, color))
    else:
        typer.echo(plain_text(lines))


def _show(answer, qa, view) -> None:
    from article_qa.terminal.render import answer_lines

    _print_lines(answer_lines(answer, qa.article.text, view))


def _json(value) -> str:
    """One JSON document; C1 and bidi controls escaped too (see index/printable.py)."""
    from article_qa.index.printable import json_dumps

    return json_dumps(value)


def _name(text: object) -> str:
    """A file name or path as shown on the terminal: escapes and bidi controls made visible."""
    from article_qa.index.printable import printable

    return printable(str(text))


def _clean(question: str) -> str:
    from article_qa.qa.question import clean_question

    try:
        return clean_question(question)
    except ValueError as err:
        raise UserError(str(err)) from err


@app.command(epilog="Example: article-qa ask Where were the peace talks held --sources")
def ask(
    question: List[str] = typer.Argument(..., metavar="QUESTION", help="The question; quotes are optional (the words are joined)."),
    article: Optional[str] = ArticleOpt,
    k: int = KOpt,
    sources: bool = typer.Option(False, "--sources", "-s", help="Also show the passages the answer was read from."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Answer one question about the article: the answer, and the sentence it stands in."""
    from article_qa.terminal.render import View

    with _user_errors():
        question_text = _clean(" ".join(question))
        qa = _open_qa(article, encoding, index_dir, model, reader, k)
        answer = qa.ask(question_text)
        if json_output:
            typer.echo(_json(answer.to_dict()))
        else:
            _show(answer, qa, View(sources=sources, weak_ratio=qa.settings.read_ratio))


CHAT_HELP = """Commands (the colon is optional for help, quit and exit; Tab completes them):
  :help        this help
  :sources     show or hide the passages under each answer (now {sources})
  :show N      show passage N of the last answer whole
  :open FILE   ask about another article (text, Markdown, HTML or PDF)
  :k N         read N passages per question (now {k})
  :reset       forget the conversation so far (follow-ups start afresh)
  :quit        leave (Ctrl-D works too; Ctrl-C cancels the current line or answer)
Anything else is a question about the article. Follow-ups such as "What did he say?" are read
in the light of the previous answers."""

CHAT_COMMANDS = (":help", ":sources", ":show", ":open", ":k", ":reset", ":quit")
_BARE_COMMANDS = {"exit": "quit", "quit": "quit", "help": "help"}


@app.command(epilog="Example: printf 'Who is the president?\\nWhat did he say?\\n' | article-qa chat")
def chat(
    article: Optional[str] = ArticleOpt,
    k: int = KOpt,
    sources: bool = typer.Option(False, "--sources", "-s", help="Show the passages under each answer (:sources toggles)."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Chat about the article: ask questions and follow-ups in a prompt (or one per line on stdin)."""
    with _user_errors():
        if article == "-":
            raise UserError("chat reads questions from stdin, so the article must be a file: --article PATH")
        opener = lambda path, k: _open_qa(path, encoding, index_dir, model, reader, k)  # noqa: E731
        qa = opener(article, k)
        qa.start_loading()  # the models load while the user reads the banner and types
        interactive = sys.stdin.isatty()
        if interactive:
            _ctrl_c_interrupts()
        save_history = _enable_line_editing(index_dir) if interactive else None
        if interactive:
            typer.echo(_banner(qa) + "\nAsk a question about the article. help for commands, quit or Ctrl-D to leave.",
                       err=True)
        try:
            _Chat(qa, opener, interactive, sources).run()
        finally:
            if save_history:
                save_history()


def _ctrl_c_interrupts() -> None:
    """Ctrl-C cancels the line or the question even when the chat was started from something that
    ignores SIGINT (a shell's background job, nohup, some CI runners): Python then leaves SIGINT
    ignored at startup and Ctrl-C would do nothing at the prompt."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _banner(qa) -> str:
    return f"article-qa chat · {_name(qa.article.source)} · {len(qa.index.passages)} passages"


class _Chat:
    """The chat loop: questions go to the conversation, commands change what is shown or read."""

    def __init__(self, qa, opener, interactive: bool, sources: bool):
        self.conversation = qa.conversation()
        self.opener = opener
        self.interactive = interactive
        self.sources = sources
        self.last = None  # the last answer, for :show

    @property
    def qa(self):
        return self.conversation.qa

    def say(self, message: str) -> None:
        """Replies to commands: on stdout in a terminal, on stderr when stdout is the answers."""
        typer.echo(message, err=not self.interactive)

    def view(self):
        from article_qa.terminal.render import PASSAGE_LIMIT, View

        return View(sources=self.sources, clip=PASSAGE_LIMIT if self.interactive else None,
                    weak_ratio=self.qa.settings.read_ratio)

    def run(self) -> None:
        while True:
            try:
                line = input("> " if self.interactive else "")
            except EOFError:
                if self.interactive:
                    typer.echo("", err=True)
                return
            except KeyboardInterrupt:
                typer.echo("^C" if self.interactive else "", err=True)
                continue
            text = line.strip()
            if not text:
                continue
            bare = _BARE_COMMANDS.get(text.lower())
            if bare:
                text = ":" + bare
            if text.startswith(":"):
                if self.command(text) == "quit":
                    return
                continue
            self.answer(text)

    def answer(self, text: str) -> None:
        try:
            answer = self.conversation.ask(_clean(text))
        except KeyboardInterrupt:
            typer.echo("(cancelled)", err=True)
            return
        except UserError as err:
            typer.echo(f"article-qa: error: {err}", err=True)
            return
        except Exception as err:  # noqa: BLE001 - one failed answer must not end the chat
            typer.echo(f"article-qa: error: {err}", err=True)
            return
        self.last = answer
        if not self.interactive:
            typer.echo(f"Q: {answer.question}")
        _show(answer, self.qa, self.view())
        typer.echo("")

    def command(self, text: str) -> Optional[str]:
        command, _, argument = text[1:].partition(" ")
        command, argument = command.lower(), argument.strip()
        if command in ("quit", "q", "exit"):
            return "quit"
        if command in ("help", "h", "?"):
            self.say(CHAT_HELP.format(k=self.qa.settings.k, sources="shown" if self.sources else "hidden"))
        elif command == "k":
            try:
                k = int(argument)
                if not 1 <= k <= 50:
                    raise ValueError
            except ValueError:
                typer.echo("article-qa: :k takes a whole number from 1 to 50", err=True)
                return None
            self.conversation.qa = self.qa.with_settings(k=k)
            self.say(f"reading {k} passages per question")
        elif command == "sources":
            self.sources = not self.sources
            self.say(f"passages {'shown' if self.sources else 'hidden'}")
        elif command == "show":
            self.show(argument)
        elif command == "open":
            self.open(argument)
        elif command == "reset":
            self.conversation.reset()
            self.say("conversation forgotten")
        else:
            typer.echo(f"article-qa: unknown command :{command} (try help)", err=True)
        return None

    def show(self, argument: str) -> None:
        from article_qa.terminal.render import passage_lines, shown_hits

        hits = shown_hits(self.last, self.qa.settings.read_ratio) if self.last else []
        if not hits:
            typer.echo("article-qa: no passages to show yet: ask a question first", err=True)
            return
        try:
            number = int(argument or "1")
            if not 1 <= number <= len(hits):
                raise ValueError
        except ValueError:
            typer.echo(f"article-qa: :show takes a passage number from 1 to {len(hits)}", err=True)
            return
        _print_lines(passage_lines(self.last, self.qa.article.text, hits[number - 1], number))
        typer.echo("")

    def open(self, argument: str) -> None:
        """Switch to another article in the same chat; on any problem the current one stays."""
        from article_qa.index.article import ArticleError

        if not argument:
            typer.echo("article-qa: :open takes a file name", err=True)
            return
        path = os.path.expanduser(argument.strip("'\""))
        if path == "-":
            typer.echo("article-qa: :open needs a file (stdin holds the questions)", err=True)
            return
        try:
            qa = self.opener(path, self.qa.settings.k)
        except (ArticleError, UserError) as err:
            typer.echo(f"article-qa: error: {err}", err=True)
            return
        except KeyboardInterrupt:
            typer.echo("(cancelled)", err=True)
            return
        if qa.reader_name == self.qa.reader_name and self.qa._reader.loaded is not None:
            qa.use_reader(self.qa._reader.loaded)  # the same reader: no need to load it again
        qa.start_loading()
        self.conversation = qa.conversation()
        self.last = None
        self.say(_banner(qa))


def _enable_line_editing(index_dir: Optional[Path] = None) -> Optional[Callable[[], None]]:
    """Line editing, Tab completion of the colon commands (and of file names after :open) and a
    persistent history through the standard library's readline; returns what saves the history
    (called when the chat ends, not at exit: see `main`). The history is kept in the cache folder
    (`--index-dir`), under the same rules as the index."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return None
    from article_qa.index.private_files import load_private, save_private
    from article_qa.index.store import cache_problem, default_index_dir

    root = Path(index_dir) if index_dir else default_index_dir()
    history = None if cache_problem(root) else root / "chat_history"
    if history is not None:
        load_private(history, readline.read_history_file)
    readline.set_history_length(1000)
    readline.set_completer(_complete)
    readline.set_completer_delims(" \t\n")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")

    def save() -> None:
        if history is not None:
            save_private(history, readline.write_history_file)

    return save


def _complete(text: str, state: int) -> Optional[str]:
    import readline

    matches = chat_completions(readline.get_line_buffer(), text)
    return matches[state] if state < len(matches) else None


def chat_completions(line: str, word: str) -> list[str]:
    """What Tab offers: colon commands at the start of the line, file names after :open."""
    if line.lstrip().startswith(":open "):
        import glob

        found = sorted(glob.glob(os.path.expanduser(word) + "*"))
        return [f + "/" if os.path.isdir(f) else f for f in found]
    if line.strip() == word and word.startswith(":"):
        return [c + " " if c in (":show", ":open", ":k") else c for c in CHAT_COMMANDS if c.startswith(word.lower())]
    return []


@app.command(epilog="Example: article-qa batch questions.jsonl --output answers.jsonl --resume")
def batch(
    input_path: str = typer.Argument("-", metavar="[INPUT|-]", help="JSON Lines or one question per line; '-' is stdin."),
    output: str = typer.Option("-", "--output", "-o", help="Where to write the answers ('-' is stdout)."),
    resume: bool = typer.Option(False, "--resume", help="Keep the lines --output already answers, answer the rest, and rewrite it in input order."),
    input_format: str = typer.Option("auto", "--format", help="Input format: jsonl, text (one question per line) or auto (the first line decides)."),
    csv_output: bool = typer.Option(False, "--csv", help="Write CSV (one row per question) instead of JSON Lines."),
    article: Optional[str] = ArticleOpt,
    k: int = KOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Answer many questions: one record out for every question line in, in the same order.

    An input line is {"question": ..., "id": ..., "conversation": ...} (id and conversation
    optional; lines sharing a conversation are follow-ups, in order) or a plain-text question;
    the first line that is not blank decides which (or --format). Blank lines are skipped. A line
    that cannot be used gets {"id", "line", "error"} and the others still run. The exit status is
    1 when any line failed.
    """
    with _user_errors(), _terminated_as_interrupted():
        from article_qa.index.article import default_article_path, load_article
        from article_qa.batch.run import answer_records
        from article_qa.batch.input import FORMATS, read_batch
        from article_qa.batch.output import BatchOutput, OutputError, protect

        if input_format not in FORMATS:
            raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {_name(input_format)!r}")
        if article == "-" and input_path == "-":
            raise UserError("the questions come from stdin, so the article must be a file: --article PATH")
        if resume and output == "-":
            raise UserError("--resume needs --output FILE to know what was already answered")
        source = _open_input(input_path)
        text = load_article(article, encoding=encoding)  # its errors come before the output is touched
        protected = [
            protect("the questions", None, 0) if input_path == "-" else protect("the questions", input_path),
            protect("the article", None, 0) if article == "-" else
            protect("the article", default_article_path() if article is None else article),
        ]
        try:
            out = BatchOutput.open(output, csv=csv_output, resume=resume, protected=protected)
        except OutputError as err:
            raise UserError(str(err)) from err
        complete = False
        try:
            total = _count_questions(input_path) if sys.stderr.isatty() else None
            qa = _open_qa(text, encoding, index_dir, model, reader, k)
            failed = 0
            with _batch_progress(total) as advance:
                for record in answer_records(qa, read_batch(source, input_format), out.previous):
                    out.write(record)  # flushed: an interrupted run keeps every finished line
                    failed += isinstance(record, dict) and "error" in record
                    advance()
            complete = True
        finally:
            out.close(complete)
        if out.kept:
            typer.echo(f"article-qa: kept {out.kept} answers already in {_name(output)}; "
                       f"answered {out.written} lines", err=True)
        if failed:
            typer.echo(f"article-qa: {failed} of {out.kept + out.written} lines failed "
                       "(see their \"error\" records)", err=True)
            raise typer.Exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that a batch finishes its output file on the way out."""


@contextmanager
def _terminated_as_interrupted():
    import signal

    def terminate(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except (ValueError, OSError):  # not the main thread (a test runner): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _count_questions(path: str) -> int | None:
    """Lines that are not blank, for the progress bar's total (a file only; stdin is read once)."""
    if path == "-":
        return None
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return None


@contextmanager
def _batch_progress(total: int | None):
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
                        TimeRemainingColumn(), console=_stderr_console(), transient=True)
    task = progress.add_task("Answering", total=total)
    progress.start()
    try:
        yield lambda: progress.advance(task)
    finally:
        progress.stop()


def _open_input(path: str):
    if path == "-":
        if getattr(sys.stdin, "closed_stream", False):
            raise UserError("standard input is closed; give the questions as a file")
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise UserError(f"input not found: {_name(path)}")
    if p.is_dir():
        raise UserError(f"{_name(path)} is a directory, not a question file")
    try:
        return open(p, "rb")
    except OSError as err:
        raise UserError(f"cannot read {_name(path)}: {err.strerror}") from err


@app.command(epilog="Example: article-qa serve --article news.md --open")
def serve(
    article: Optional[str] = ArticleOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback lets other machines in (with a warning)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in your web browser."),
    k: int = KOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Show the article on a local web page and answer there (answers highlighted in place); also a
    JSON API for scripts: POST /api/ask, GET /api/article, GET /api/health. Ctrl-C stops it."""
    with _user_errors():
        from article_qa.web import server as web_server

        try:
            listener = web_server.listen(host, port)  # a taken port fails before any model loads
        except web_server.ServeError as err:
            raise UserError(str(err)) from err
        try:
            qa = _open_qa(article, encoding, index_dir, model, reader, k)
            web_server.serve(
                qa, listener, open_browser=open_browser,
                announce=lambda url: typer.echo(f"article-qa: serving {qa.article.source} at {url} (Ctrl-C stops)"),
            )
        finally:
            listener.close()
        typer.echo("article-qa: stopped", err=True)


@app.command(name="index", epilog="Example: article-qa index --article news.md")
def index_command(
    article: Optional[str] = ArticleOpt,
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if the saved index is valid."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    encoding: str = EncodingOpt,
    json_output: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Build or refresh the article's index (and the fast ONNX encoder) and say what was done."""
    with _user_errors():
        qa = _open_qa(article, encoding, index_dir, model, None, 3, rebuild=rebuild)
        status = qa.index.status
        info = {
            "action": status.action,
            "reason": status.reason,
            "article": qa.article.source,
            "passages": len(qa.index.passages),
            "model": qa.index.embedder.model.name,
            "path": str(status.path) if status.path else None,
            "seconds": round(status.seconds, 2),
        }
        if json_output:
            typer.echo(_json(info))
            return
        why = f" ({status.reason})" if status.reason else ""
        where = f"\n  stored in {_name(status.path)}" if status.path else "\n  kept in memory only"
        typer.echo(
            f"{status.action}{why}: {info['passages']} passages of {_name(info['article'])} "
            f"with {_name(info['model'])} in {info['seconds']} s{where}"
        )


@app.command(name="eval", epilog="Examples: article-qa eval squad2_dev.json --json\n"
                                  "          article-qa eval --chats chats.jsonl --article notes.md")
def eval_command(
    file: Optional[Path] = typer.Argument(None, help="SQuAD 1.1/2.0 JSON file (each article is one document)."),
    json_output: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N questions."),
    k: int = KOpt,
    article_id: Optional[str] = typer.Option(None, "--article-id", help="Only the article with this title."),
    chats: Optional[Path] = typer.Option(None, "--chats", help="Also score follow-up conversations (JSON Lines: id, conversation, question, answers)."),
    article: Optional[Path] = typer.Option(None, "--article", "-a", help="The article the --chats conversations are about (default: the shipped one)."),
    answer_threshold: Optional[float] = typer.Option(None, "--answer-threshold", min=0.0, max=1.0,
                                                     help="Answer at this confidence instead of the reader's own threshold (to see the trade-off)."),
    details: Optional[Path] = typer.Option(None, "--details", help="Write one JSON line per question or turn: how it was read, what came back, how it scored."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
) -> None:
    """Measure answer quality (SQuAD exact/F1, abstention, calibration, retrieval recall@k) on a
    question file and/or follow-up conversations."""
    with _user_errors():
        from article_qa.evaluation.run import evaluate_chats, evaluate_file

        if file is None and chats is None:
            raise UserError("give a SQuAD question file, --chats FILE, or both")
        if article is not None and chats is None:
            raise UserError("--article names the article of --chats conversations; give --chats too")
        _quiet_libraries()
        _offline_unless_hub(model, reader)
        update, progress = _progress_callback("Evaluating")
        notes: list[str] = []
        records: list[dict] | None = [] if details is not None else None
        if details is not None and (details.is_dir() or not details.parent.is_dir()):
            raise UserError(f"cannot write --details to {_name(details)}: "
                            + ("it is a directory" if details.is_dir() else "no such folder"))
        try:
            if file is not None:
                result = evaluate_file(
                    file, k=k, limit=limit, article_id=article_id, chats=chats, chats_article=article,
                    index_dir=index_dir, model=model, reader=reader, progress=update,
                    answer_threshold=answer_threshold, details=records,
                )
                metrics, notes = result.metrics, result.notes
            else:
                metrics = evaluate_chats(chats, article=article, index_dir=index_dir, model=model, reader=reader,
                                         k=k, notes=notes, answer_threshold=answer_threshold, details=records)
            if details is not None:
                details.write_text("".join(_json(r) + "\n" for r in records), encoding="utf-8")
        except OSError as err:
            raise UserError(_os_error(err)) from err
        except ValueError as err:
            raise UserError(str(err).splitlines()[0]) from err
        finally:
            if progress is not None:
                progress.stop()
        if json_output:
            typer.echo(_json(metrics))
        else:
            for key, value in metrics.items():
                typer.echo(f"{key:>28}  {value}")
        for line in notes:
            typer.echo(line, err=True)


def _os_error(err: OSError) -> str:
    """A file error in the words the other commands use, not Python's `[Errno 2] …`."""
    name = _name(err.filename) if err.filename is not None else "file"
    if isinstance(err, FileNotFoundError):
        return f"file not found: {name}"
    if isinstance(err, IsADirectoryError):
        return f"{name} is a directory, not a file"
    if isinstance(err, PermissionError):
        return f"cannot read {name}: permission denied"
    return f"cannot read {name}: {err.strerror or err}"


cache_app = typer.Typer(help="Where the cache of indexes and model exports is, and how big; 'cache clear' empties it.",
                        invoke_without_command=True, no_args_is_help=False, add_completion=False,
                        rich_markup_mode=None)
app.add_typer(cache_app, name="cache")


@cache_app.callback(invoke_without_command=True)
def cache_command(
    ctx: typer.Context,
    index_dir: Optional[Path] = IndexDirOpt,
    json_output: bool = typer.Option(False, "--json", help="Print it as JSON."),
) -> None:
    """Show where the cache is and how big it is (article indexes, model exports)."""
    ctx.obj = index_dir
    if ctx.invoked_subcommand is not None:
        return
    from article_qa.index.cache import cache_folder, cache_usage, human_size, kind_name

    usage = cache_usage(cache_folder(index_dir))
    kinds = usage.by_kind()
    if json_output:
        typer.echo(_json({"path": str(usage.path), "bytes": usage.size,
                          "kinds": {k: {"count": n, "bytes": b} for k, (n, b) in kinds.items()}}))
        return
    typer.echo(f"{_name(usage.path)}: {human_size(usage.size)}" + ("" if usage.entries else " (empty)"))
    for kind, (count, size) in kinds.items():
        typer.echo(f"  {human_size(size):>9}  {kind_name(kind)}" + (f" ({count})" if kind == "index" else ""))
    if usage.entries:
        typer.echo("article-qa cache clear empties it; the next question prepares the models again (once).")


@cache_app.command(name="clear")
def cache_clear(ctx: typer.Context, index_dir: Optional[Path] = IndexDirOpt) -> None:
    """Remove the cached indexes and model exports (the chat history and files not made by article-qa stay)."""
    from article_qa.index.cache import cache_folder, clear_cache, human_size, kind_name

    with _user_errors():
        folder = cache_folder(index_dir or ctx.obj)
        try:
            freed, left = clear_cache(folder)
        except OSError as err:
            raise UserError(f"cannot clear {_name(folder)}: {err.strerror or err}") from err
        typer.echo(f"removed {human_size(freed)} from {_name(folder)}")
        for kind, (count, size) in left.by_kind().items():
            typer.echo(f"  kept {human_size(size)}: {kind_name(kind)}")


@app.command(name="text", epilog="Example: article-qa text --article report.pdf | less")
def text_command(
    article: Optional[str] = ArticleOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Print the article's text as article-qa reads it: the text every offset counts in (for
    Markdown, HTML and PDF, the text a person sees, not the file's markup)."""
    from article_qa.index.article import load_article

    with _user_errors():
        if article == "-" and sys.stdin.isatty():
            typer.echo("reading the article from standard input; end with Ctrl-D", err=True)
        sys.stdout.write(load_article(article, encoding=encoding).text)


def main() -> None:
    """The console script. Once a command is done, the process leaves without the interpreter's
    teardown: freeing two loaded models and a few hundred modules took 0.12-0.16 s of a 0.8 s
    `ask`. Output is flushed and exit handlers run first, so nothing is lost."""
    _guard_standard_streams()
    try:
        app()
        code: object = 0
    except SystemExit as done:
        code = done.code
    except OSError as err:  # the output cannot be written: /dev/full, a closed stdout, a disk error
        code = _output_failed(err)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    _leave(code)


class _ClosedStream(io.RawIOBase):
    """Stands for a standard stream the shell closed (`<&-`, `>&-`): using it raises EBADF with
    words, so the user gets one line instead of a traceback or an answer silently lost."""

    def __init__(self, name: str):
        super().__init__()
        self.name_in_words = name

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise OSError(errno.EBADF, f"{self.name_in_words} is closed")

    def write(self, data) -> int:
        raise OSError(errno.EBADF, f"{self.name_in_words} is closed")


def _guard_standard_streams() -> None:
    """Make closed standard streams safe. A closed descriptor 0-2 would be handed to the next file
    the tool opens (an index, an output file), and whatever writes to "stderr" would then write
    into it; each is held by /dev/null instead. A closed stdin or stdout reads or writes as an
    error ("standard output is closed"); a closed stderr discards messages, as the user asked."""
    for fd, name in ((0, "standard input"), (1, "standard output"), (2, "standard error")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if fd == 2:
            sys.stderr = open(os.devnull, "w", encoding="utf-8")
            continue
        raw = _ClosedStream(name)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(buffered, encoding="utf-8", line_buffering=fd == 1)
        stream.closed_stream = True  # type: ignore[attr-defined]
        if fd == 0:
            sys.stdin = stream
        else:
            sys.stdout = stream


def _output_failed(err: OSError) -> int:
    """One line for an output that cannot be written; status 1. A reader that left (`| head`)
    is not an error worth a line."""
    if err.errno == errno.EPIPE:
        return 1
    reason = str(err.strerror or err)
    if _stdout_broken():
        line = f"cannot write the output: {reason}"
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # drop what is buffered: said once
    elif err.filename:
        line = f"{_name(err.filename)}: {reason}"
    else:
        line = reason  # e.g. "standard input is closed"
    try:
        typer.echo(f"article-qa: error: {line}", err=True)
    except OSError:
        pass
    return 1


def _stdout_broken() -> bool:
    if getattr(sys.stdout, "closed_stream", False):
        return True
    try:
        os.write(sys.stdout.fileno(), b"")  # a 0-byte write still fails on /dev/full or a bad fd
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return True
    return False


def _leave(code: int) -> None:
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError) as err:  # a closed pipe (`| head`): the reader has what it wanted
            if stream is sys.stdout and isinstance(err, OSError) and err.errno != errno.EPIPE:
                code = code or _output_failed(err)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers:
        run_exit_handlers()
    os._exit(code)


if __name__ == "__main__":
    main()
