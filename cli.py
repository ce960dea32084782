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
from typing import Callable, Optional

import typer

EXAMPLES = """

\b
Examples:
  article-qa ask "Where were the peace talks held?"
  article-qa ask "Who is the U.S. envoy?" --article news.md --json
  article-qa chat
  printf '%s\\n' "Who is the president?" "What did he say?" | article-qa chat
  article-qa batch questions.jsonl --output answers.jsonl
  article-qa index --article news.md
  article-qa eval squad2_dev.json --limit 100
"""

app = typer.Typer(
    name="article-qa",
    help="Ask questions about an article; answers are spans of the article, shown with their evidence."
    + EXAMPLES,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

ArticleOpt = typer.Option(None, "--article", "-a", help="Article file (UTF-8 text or Markdown); '-' reads stdin. Default: the shipped article.")
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
    from index.article import ArticleError
    from index.embedding_model import ModelError
    from qa.reader_models import ReaderError

    def show_warning(message, category, *args, **kwargs):
        typer.echo(f"article-qa: warning: {message}", err=True)

    previous = warnings.showwarning
    warnings.showwarning = show_warning
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


def _progress_callback(label: str):
    """A progress bar on stderr for long work, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=_stderr_console(), transient=True)
    task = progress.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        if not progress.live.is_started:
            progress.start()
        progress.update(task, completed=done, total=total)

    return update, progress


def _open_qa(article, encoding, index_dir, model, reader, k, rebuild: bool = False):
    from index.article import Article, load_article
    from qa.pipeline import ArticleQA

    _quiet_libraries()
    _offline_unless_hub(model, reader)
    text = article if isinstance(article, Article) else load_article(article, encoding=encoding)
    update, progress = _progress_callback("Indexing passages")
    try:
        qa = ArticleQA.open(text, model=model, reader=reader, index_dir=index_dir, progress=update, rebuild=rebuild)
    finally:
        if progress is not None:
            progress.stop()
    return qa.with_settings(k=k)


def _use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _show(answer, show_passages: bool = True) -> None:
    from qa.render import plain, rich_renderable

    if _use_color():
        from rich.console import Console

        Console(highlight=False).print(rich_renderable(answer, show_passages))
    else:
        typer.echo(plain(answer, show_passages))


def _json(value) -> str:
    """One JSON document; C1 and bidi controls escaped too (see index/printable.py)."""
    from index.printable import json_dumps

    return json_dumps(value)


def _name(text: object) -> str:
    """A file name or path as shown on the terminal: escapes and bidi controls made visible."""
    from index.printable import printable

    return printable(str(text))


def _clean(question: str) -> str:
    from qa.batch_input import clean_question

    try:
        return clean_question(question)
    except ValueError as err:
        raise UserError(str(err)) from err


@app.command(epilog='Example: article-qa ask "Where were the peace talks held?" --json')
def ask(
    question: str = typer.Argument(..., help="The question, in quotes."),
    article: Optional[str] = ArticleOpt,
    k: int = KOpt,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Answer one question about the article."""
    with _user_errors():
        question = _clean(question)
        qa = _open_qa(article, encoding, index_dir, model, reader, k)
        answer = qa.ask(question)
        if json_output:
            typer.echo(_json(answer.to_dict()))
        else:
            _show(answer)


CHAT_HELP = """Commands:
  :help        this help
  :k N         read N passages per question (now {k})
  :sources     show or hide the passages under each answer
  :reset       forget the conversation so far (follow-ups start afresh)
  :quit        leave (Ctrl-D works too; Ctrl-C cancels the current line)
Anything else is a question about the article. Follow-ups such as "What did he say?" are read
in the light of the previous answers."""


@app.command(epilog="Example: printf 'Who is the president?\\nWhat did he say?\\n' | article-qa chat")
def chat(
    article: Optional[str] = ArticleOpt,
    k: int = KOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Chat about the article: ask questions and follow-ups in a prompt (or one per line on stdin)."""
    with _user_errors():
        if article == "-":
            raise UserError("chat reads questions from stdin, so the article must be a file: --article PATH")
        qa = _open_qa(article, encoding, index_dir, model, reader, k)
        qa.start_loading()  # the models load while the user reads the banner and types
        interactive = sys.stdin.isatty()
        save_history = _enable_line_editing(index_dir) if interactive else None
        if interactive:
            typer.echo(
                f"article-qa chat · {_name(qa.article.source)} · {len(qa.index.passages)} passages\n"
                "Ask a question about the article. :help for commands, :quit or Ctrl-D to leave.",
                err=True,
            )
        try:
            _chat_loop(qa, interactive)
        finally:
            if save_history:
                save_history()


def _chat_loop(qa, interactive: bool) -> None:
    conversation = qa.conversation()
    show_sources = True
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            if interactive:
                typer.echo("", err=True)
            return
        except KeyboardInterrupt:
            typer.echo("^C" if interactive else "", err=True)
            continue
        text = line.strip()
        if not text:
            continue
        if text.startswith(":"):
            command, _, argument = text[1:].partition(" ")
            command = command.lower()
            if command in ("quit", "q", "exit"):
                return
            if command in ("help", "h", "?"):
                typer.echo(CHAT_HELP.format(k=conversation.qa.settings.k), err=not interactive)
            elif command == "k":
                try:
                    k = int(argument)
                    if not 1 <= k <= 50:
                        raise ValueError
                except ValueError:
                    typer.echo("article-qa: :k takes a whole number from 1 to 50", err=True)
                    continue
                conversation.qa = conversation.qa.with_settings(k=k)
                typer.echo(f"reading {k} passages per question", err=True)
            elif command == "sources":
                show_sources = not show_sources
                typer.echo(f"passages {'shown' if show_sources else 'hidden'}", err=True)
            elif command == "reset":
                conversation.reset()
                typer.echo("conversation forgotten", err=True)
            else:
                typer.echo(f"article-qa: unknown command :{command} (try :help)", err=True)
            continue
        try:
            answer = conversation.ask(_clean(text))
        except KeyboardInterrupt:
            typer.echo("(cancelled)", err=True)
            continue
        except Exception as err:  # noqa: BLE001 - one failed answer must not end the chat
            typer.echo(f"article-qa: error: {err}", err=True)
            continue
        if interactive:
            _show(answer, show_sources)
            typer.echo("")
        else:
            typer.echo(f"Q: {answer.question}")
            _show(answer, show_sources)
            typer.echo("")


def _enable_line_editing(index_dir: Optional[Path] = None) -> Optional[Callable[[], None]]:
    """Line editing and a persistent history through the standard library's readline; returns
    what saves the history (called when the chat ends, not at exit: see `main`). The history is
    kept in the cache folder (`--index-dir`), under the same rules as the index."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return None
    from index.cache_files import load_private, save_private
    from index.store import cache_problem, default_index_dir

    root = Path(index_dir) if index_dir else default_index_dir()
    history = None if cache_problem(root) else root / "chat_history"
    if history is not None:
        load_private(history, readline.read_history_file)
    readline.set_history_length(1000)

    def save() -> None:
        if history is not None:
            save_private(history, readline.write_history_file)

    return save


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
        from index.article import default_article_path, load_article
        from qa.batch import answer_records
        from qa.batch_input import FORMATS, read_batch
        from qa.batch_output import BatchOutput, OutputError, protect

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


@app.command(name="eval", epilog="Example: article-qa eval squad2_dev.json --json")
def eval_command(
    file: Path = typer.Argument(..., help="SQuAD 1.1/2.0 JSON file (each article is one document)."),
    json_output: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N questions."),
    k: int = KOpt,
    article_id: Optional[str] = typer.Option(None, "--article-id", help="Only the article with this title."),
    chats: Optional[Path] = typer.Option(None, "--chats", help="Also score follow-up conversations (JSON Lines) over the default article."),
    tune: bool = typer.Option(False, "--tune", help="Also report the no-answer threshold that maximises F1."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
) -> None:
    """Measure answer quality (SQuAD exact/F1, abstention, retrieval recall@k) on a question file."""
    with _user_errors():
        from evaluation.run import evaluate_file

        _quiet_libraries()
        _offline_unless_hub(model, reader)
        update, progress = _progress_callback("Evaluating")
        try:
            result = evaluate_file(
                file, k=k, limit=limit, article_id=article_id, chats=chats, index_dir=index_dir,
                model=model, reader=reader, progress=update, tune=tune,
            )
        except (ValueError, OSError) as err:
            raise UserError(str(err).splitlines()[0]) from err
        finally:
            if progress is not None:
                progress.stop()
        if json_output:
            typer.echo(_json(result.metrics))
        else:
            for key, value in result.metrics.items():
                typer.echo(f"{key:>28}  {value}")
        for line in result.notes:
            typer.echo(line, err=True)


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
