"""The `article-qa` command line: parses arguments and renders; the work happens in `qa/` and `index/`.

Heavy modules (numpy, FAISS, ONNX Runtime, and torch when it is needed at all) are imported inside
the commands, so `--help` and argument errors answer at once.
"""

from __future__ import annotations

import json
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
  article-qa serve --open
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
    except KeyboardInterrupt:
        typer.echo("article-qa: interrupted", err=True)
        raise typer.Exit(130)
    finally:
        warnings.showwarning = previous


def _quiet_libraries() -> None:
    """Keep third-party chatter off the user's terminal and the network off unless asked."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


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
    from index.article import load_article
    from qa.pipeline import ArticleQA

    _quiet_libraries()
    _offline_unless_hub(model, reader)
    text = load_article(article, encoding=encoding)
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
            typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
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
        save_history = _enable_line_editing() if interactive else None
        if interactive:
            typer.echo(
                f"article-qa chat · {qa.article.source} · {len(qa.index.passages)} passages\n"
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


def _enable_line_editing() -> Optional[Callable[[], None]]:
    """Line editing and a persistent history through the standard library's readline; returns
    what saves the history (called when the chat ends, not at exit: see `main`)."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return None
    from index.store import default_index_dir

    history = default_index_dir() / "chat_history"
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            history.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            readline.write_history_file(history)
        except OSError:
            pass

    return save


@app.command(epilog="Example: article-qa batch questions.jsonl --output answers.jsonl --resume")
def batch(
    input_path: str = typer.Argument("-", metavar="[INPUT|-]", help="JSON Lines or one question per line; '-' is stdin."),
    output: str = typer.Option("-", "--output", "-o", help="Where to write JSON Lines ('-' is stdout)."),
    resume: bool = typer.Option(False, "--resume", help="Skip ids already answered in --output and append the rest."),
    article: Optional[str] = ArticleOpt,
    k: int = KOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
) -> None:
    """Answer many questions: one JSON line out for every line in, in the same order.

    An input line is {"question": ..., "id": ..., "conversation": ...} (id and conversation
    optional; lines sharing a conversation are follow-ups, in order) or a plain-text question.
    A line that cannot be used gets {"id", "line", "error"} and the others still run. The exit
    status is 1 when any line failed.
    """
    with _user_errors():
        if article == "-" and input_path == "-":
            raise UserError("the questions come from stdin, so the article must be a file: --article PATH")
        if resume and output == "-":
            raise UserError("--resume needs --output FILE to know what was already answered")
        from qa.batch import answer_records
        from qa.batch_input import read_batch

        skip = _answered_ids(Path(output)) if resume else frozenset()
        source = _open_input(input_path)
        qa = _open_qa(article, encoding, index_dir, model, reader, k)
        sink = sys.stdout if output == "-" else _open_output(Path(output), append=resume)
        failed = done = 0
        update, progress = _progress_callback("Answering")
        try:
            for record in answer_records(qa, read_batch(source), skip):
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()  # an interrupted run keeps every finished line
                failed += "error" in record
                done += 1
                if update:
                    update(done, None)  # total unknown while streaming: a running count
        finally:
            if progress is not None:
                progress.stop()
            if sink is not sys.stdout:
                sink.close()
        if skip:
            typer.echo(f"article-qa: skipped {len(skip)} ids already in {output}", err=True)
        if failed:
            typer.echo(f"article-qa: {failed} of {done} lines failed (see their \"error\" records)", err=True)
            raise typer.Exit(1)


def _open_input(path: str):
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise UserError(f"input not found: {path}")
    if p.is_dir():
        raise UserError(f"{path} is a directory, not a question file")
    try:
        return open(p, "rb")
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from err


def _open_output(path: Path, append: bool):
    try:
        sink = open(path, "a" if append else "w", encoding="utf-8")
        if append and path.stat().st_size and not _ends_with_newline(path):
            sink.write("\n")  # a line cut by the interruption must not swallow the next record
        return sink
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror}") from err


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _answered_ids(path: Path) -> frozenset[str]:
    """Ids that already have an answer (not an error) in a previous run's output."""
    if not path.exists():
        return frozenset()
    ids = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by the interruption: answer it again
            if isinstance(record, dict) and "error" not in record and record.get("id") is not None:
                ids.add(str(record["id"]))
    return frozenset(ids)


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
        from web import server as web_server

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
            typer.echo(json.dumps(info))
            return
        why = f" ({status.reason})" if status.reason else ""
        where = f"\n  stored in {status.path}" if status.path else "\n  kept in memory only"
        typer.echo(
            f"{status.action}{why}: {info['passages']} passages of {info['article']} "
            f"with {info['model']} in {info['seconds']} s{where}"
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
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
) -> None:
    """Measure answer quality (SQuAD exact/F1, abstention, calibration, retrieval recall@k) on a
    question file and/or follow-up conversations."""
    with _user_errors():
        from evaluation.run import evaluate_chats, evaluate_file

        if file is None and chats is None:
            raise UserError("give a SQuAD question file, --chats FILE, or both")
        if article is not None and chats is None:
            raise UserError("--article names the article of --chats conversations; give --chats too")
        _quiet_libraries()
        _offline_unless_hub(model, reader)
        update, progress = _progress_callback("Evaluating")
        notes: list[str] = []
        try:
            if file is not None:
                result = evaluate_file(
                    file, k=k, limit=limit, article_id=article_id, chats=chats, chats_article=article,
                    index_dir=index_dir, model=model, reader=reader, progress=update,
                    answer_threshold=answer_threshold,
                )
                metrics, notes = result.metrics, result.notes
            else:
                metrics = evaluate_chats(chats, article=article, index_dir=index_dir, model=model, reader=reader,
                                         k=k, notes=notes, answer_threshold=answer_threshold)
        except FileNotFoundError as err:
            raise UserError(f"file not found: {err.filename}") from err
        except IsADirectoryError as err:
            raise UserError(f"{err.filename} is a directory, not a file") from err
        except (ValueError, OSError) as err:
            raise UserError(str(err).splitlines()[0]) from err
        finally:
            if progress is not None:
                progress.stop()
        if json_output:
            typer.echo(json.dumps(metrics))
        else:
            for key, value in metrics.items():
                typer.echo(f"{key:>28}  {value}")
        for line in notes:
            typer.echo(line, err=True)


def main() -> None:
    """The console script. Once a command is done, the process leaves without the interpreter's
    teardown: freeing two loaded models and a few hundred modules took 0.12-0.16 s of a 0.8 s
    `ask`. Output is flushed and exit handlers run first, so nothing is lost."""
    try:
        app()
        code: object = 0
    except SystemExit as done:
        code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    _leave(code)


def _leave(code: int) -> None:
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): the reader has what it wanted
            pass
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers:
        run_exit_handlers()
    os._exit(code)


if __name__ == "__main__":
    main()
