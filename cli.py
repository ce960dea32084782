"""The `article-qa` commands: their arguments, and which room does the work. Answering is in
`qa/`, articles and the cache in `index/`, batch files in `batch/`, what the terminal shows and how
the process behaves in `terminal/`, the web page in `web/`, `eval` in `evaluation/`.

Heavy modules (numpy, FAISS, ONNX Runtime, and torch when it is needed at all) are imported inside
the commands, so `--help` and argument errors answer at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from article_qa.terminal.messages import OneLineUsageError, UserError, user_errors

EXAMPLES = """

\b
Examples:
  article-qa ask Where were the peace talks held
  article-qa ask "Who is the U.S. envoy?" --article news.md --sources
  article-qa ask "Who is the U.S. envoy?" --article report.pdf --json
  article-qa ask "Who is buying Yahoo?" --article https://example.com/story.html
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


def _index_dir(value: str) -> Path:
    """--index-dir as a path; an empty one is an error (it would mean the current folder)."""
    if not value.strip():
        raise OneLineUsageError("--index-dir is empty; give the cache folder's path (or leave the option out)")
    return Path(value)


ArticleOpt = typer.Option(None, "--article", "-a", help="Article file: text, Markdown (.md), HTML (.html) or PDF; or a link (https://…); '-' reads stdin. Default: the shipped article.")
ArticlesOpt = typer.Option(None, "--article", "-a", help="Article file: text, Markdown (.md), HTML (.html) or PDF; or a link (https://…); '-' reads stdin. Default: the shipped article. "
                           "Several --article, a folder, a glob or a JSON Lines file (.jsonl) make a corpus: one index over all of them.")
WithinOpt = typer.Option(None, "--within", help="In a corpus: answer from this article only (its id or path).")
HtmlOpt = typer.Option("story", "--html", metavar="story|whole",
                       help="An HTML page (file or link) read as its story (headline and paragraphs; no menus, links or footers) or whole, as laid out.")
RefreshOpt = typer.Option(False, "--refresh", help="Fetch a link's page again even when the cache holds a fresh copy.")
IndexDirOpt = typer.Option(None, "--index-dir", envvar="ARTICLE_QA_INDEX_DIR", parser=_index_dir,
                           help="Where indexes are cached (default: your user cache folder).")
ModelOpt = typer.Option(None, "--model", help="Embedding model: sentence-transformers name or path (default: all-MiniLM-L6-v2, shipped).")
ReaderOpt = typer.Option(None, "--reader", help="Extractive QA model name or path (default: the shipped reader).")
EncodingOpt = typer.Option("utf-8", "--encoding", help="Text encoding of the article file.")
KOpt = typer.Option(3, "--k", "-k", min=1, max=50, help="How many passages to read for each question.")


def _json(value) -> str:
    """One JSON document; C1 and bidi controls escaped too (see index/printable.py)."""
    from article_qa.index.printable import json_dumps

    return json_dumps(value)


def _name(text: object) -> str:
    """A file name or path as shown on the terminal: escapes and bidi controls made visible."""
    from article_qa.index.printable import printable

    return printable(str(text))


@app.command(epilog="Example: article-qa ask Where were the peace talks held --sources")
def ask(
    question: List[str] = typer.Argument(..., metavar="QUESTION", help="The question; quotes are optional (the words are joined)."),
    article: Optional[List[str]] = ArticlesOpt,
    within: Optional[str] = WithinOpt,
    k: int = KOpt,
    sources: bool = typer.Option(False, "--sources", "-s", help="Also show the passages the answer was read from."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
    html: str = HtmlOpt,
    refresh: bool = RefreshOpt,
) -> None:
    """Answer one question about the article: the answer, and the sentence it stands in (on a
    terminal, a dim line over it says which article answered)."""
    from article_qa.terminal.chat import clean
    from article_qa.terminal.progress import open_article_qa, skipped_articles
    from article_qa.terminal.render import View, show_answer

    with user_errors():
        question_text = clean(" ".join(question))
        qa = open_article_qa(article, encoding, index_dir, model, reader, k, within=within, html=html, refresh=refresh)
        answer = qa.ask(question_text)
        if json_output:
            typer.echo(_json(answer.to_dict()))
        else:
            if sys.stdout.isatty() and not qa.is_corpus:  # a corpus's answers name their article
                from article_qa.terminal.naming import show_from_line

                show_from_line(qa.article)
            show_answer(qa, answer, View(sources=sources, weak_ratio=qa.settings.read_ratio))
        if skipped_articles(qa):  # named on stderr when the corpus was opened; the answer still stands
            raise typer.Exit(1)


@app.command(epilog="Example: printf 'Who is the president?\\nWhat did he say?\\n' | article-qa chat")
def chat(
    article: Optional[List[str]] = ArticlesOpt,
    within: Optional[str] = WithinOpt,
    k: int = KOpt,
    sources: bool = typer.Option(False, "--sources", "-s", help="Show the passages under each answer (:sources toggles)."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
    html: str = HtmlOpt,
    refresh: bool = RefreshOpt,
) -> None:
    """Chat about the article: ask questions and follow-ups in a prompt (or one per line on stdin)."""
    from article_qa.index.cache_layout import CacheLayout
    from article_qa.terminal.chat import Chat, banner, enable_line_editing
    from article_qa.terminal.process import ctrl_c_interrupts
    from article_qa.terminal.progress import open_article_qa

    with user_errors():
        if article and "-" in article:
            raise UserError("chat reads questions from stdin, so the article must be a file: --article PATH")

        def opener(path, k):
            return open_article_qa(path, encoding, index_dir, model, reader, k, html=html, refresh=refresh)

        qa = open_article_qa(article, encoding, index_dir, model, reader, k, within=within, html=html, refresh=refresh)
        qa.start_loading()  # the models load while the user reads the banner and types
        interactive = sys.stdin.isatty()
        save_history = None
        if interactive:
            ctrl_c_interrupts()
            # The history is kept in the cache folder, under the same rules as the index.
            cache = CacheLayout.at(index_dir)
            save_history = enable_line_editing(None if cache.problem() else cache.chat_history)
            typer.echo(banner(qa) + "\nAsk a question about the article. help for commands, quit or Ctrl-D to leave.",
                       err=True)
        try:
            Chat(qa, opener, interactive, sources).run()
        finally:
            if save_history:
                save_history()


@app.command(epilog="Example: article-qa batch questions.jsonl --output answers.jsonl --resume")
def batch(
    input_path: str = typer.Argument("-", metavar="[INPUT|-]", help="JSON Lines or one question per line; '-' is stdin."),
    output: str = typer.Option("-", "--output", "-o", help="Where to write the answers ('-' is stdout)."),
    resume: bool = typer.Option(False, "--resume", help="Keep the lines --output already answers, answer the rest, and rewrite it in input order."),
    input_format: str = typer.Option("auto", "--format", help="Input format: jsonl, text (one question per line) or auto (the first line decides)."),
    csv_output: bool = typer.Option(False, "--csv", help="Write CSV (one row per question) instead of JSON Lines."),
    article: Optional[List[str]] = ArticlesOpt,
    within: Optional[str] = WithinOpt,
    k: int = KOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
    html: str = HtmlOpt,
    refresh: bool = RefreshOpt,
    engine: str = typer.Option("local", "--engine", metavar="local|dask",
                               help="Who answers: this process (local), or a Dask cluster (dask; pip install 'article-qa[dask]'). Same records either way."),
    address: Optional[str] = typer.Option(None, "--address", metavar="tcp://HOST:PORT",
                                          help="With --engine dask: join this scheduler (default: $DASK_SCHEDULER_ADDRESS, else start a cluster here)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="With --engine dask and no address: worker processes of the local cluster (default: one per 8 cores; each answers on up to 8)."),
) -> None:
    """Answer many questions: one record out for every question line in, in the same order.

    An input line is {"question": ..., "id": ..., "conversation": ...} (id and conversation
    optional; lines sharing a conversation are follow-ups, in order) or a plain-text question;
    the first line that is not blank decides which (or --format). Blank lines are skipped. A line
    that cannot be used gets {"id", "line", "error"} and the others still run. The exit status is
    1 when any line failed. Over a corpus a line may name its own "article" (an id or a path).
    With --engine dask the lines are answered in blocks on a Dask cluster, each worker loading the
    models and the index once; the index folder must be readable by every worker at its path.
    """
    from article_qa.terminal.process import closed, terminated_as_interrupted

    with user_errors(), terminated_as_interrupted():
        from article_qa.batch.engine import answerer, choose_engine
        from article_qa.batch.input import FORMATS, count_questions, input_line_ids, open_questions, read_batch
        from article_qa.batch.output import BatchOutput, protect
        from article_qa.index.article import default_article_path
        from article_qa.index.corpus_kind import is_corpus
        from article_qa.index.printable import quoted
        from article_qa.terminal.progress import (
            article_specs,
            batch_progress,
            open_article_qa,
            read_article,
            skipped_articles,
        )

        if input_format not in FORMATS:
            raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {quoted(input_format)}")
        chosen = choose_engine(engine, address, workers)  # a missing extra is said before anything is touched
        specs = article_specs(article)
        corpus = is_corpus(specs)
        single = None if specs is None else specs[0]
        if specs and "-" in specs and input_path == "-":
            raise UserError("the questions come from stdin, so the article must be a file: --article PATH")
        if resume and output == "-":
            raise UserError("--resume needs --output FILE to know what was already answered")
        source = open_questions(input_path, stdin_closed=closed("stdin"))
        protected = [
            protect("the questions", None, 0) if input_path == "-" else protect("the questions", input_path),
        ]
        if corpus:  # listed (its errors come before the output is touched); each file protected
            from article_qa.index.corpus_sources import list_corpus

            listing = list_corpus(specs)
            loaded_article = specs
            protected += [protect("an article of the corpus", str(e.path)) for e in listing.entries
                          if e.path is not None and os.path.exists(e.path)]
        else:
            # its errors come before the output is touched
            loaded_article = read_article(single, encoding, index_dir, html, refresh)
            protected.append(protect("the article", None, 0) if single == "-" else
                             protect("the article", default_article_path() if single is None else single))
        resuming = resume and os.path.lexists(os.path.expanduser(output))  # an output to check against the input
        input_ids = input_line_ids(input_path, input_format) if resuming else None
        out = BatchOutput.open(output, csv=csv_output, resume=resume, protected=protected, input_ids=input_ids,
                               stdout_closed=closed("stdout"))
        complete = False
        try:
            total = count_questions(input_path) if sys.stderr.isatty() else None
            qa = open_article_qa(loaded_article, encoding, index_dir, model, reader, k, within=within)
            failed = 0
            with answerer(chosen, qa, model, reader, index_dir) as answer, batch_progress(total) as advance:
                for record in answer(read_batch(source, input_format), out.previous):
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
        unread = skipped_articles(qa)
        if unread:
            typer.echo(f"article-qa: {unread} article{'' if unread == 1 else 's'} of the corpus could not be read "
                       "and {} skipped (named above); the others answered".format("was" if unread == 1 else "were"),
                       err=True)
        if failed or unread:
            raise typer.Exit(1)


@app.command(epilog="Example: article-qa serve --article news.md --open")
def serve(
    article: Optional[List[str]] = ArticlesOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback lets other machines in (with a warning)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in your web browser."),
    k: int = KOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
    encoding: str = EncodingOpt,
    html: str = HtmlOpt,
    refresh: bool = RefreshOpt,
) -> None:
    """Show the article (or a corpus: its list of articles) on a local web page and answer there
    (answers highlighted in place, in their article); also a JSON API for scripts: POST /api/ask,
    GET /api/articles, GET /api/article/{id}, GET /api/health. Ctrl-C stops it. The articles (files
    or links) are the ones named here: the server never opens one a request names."""
    with user_errors():
        from article_qa.terminal.progress import open_article_qa
        from article_qa.web import server as web_server

        try:
            listener = web_server.listen(host, port)  # a taken port fails before any model loads
        except web_server.ServeError as err:
            raise UserError(str(err)) from err
        try:
            qa = open_article_qa(article, encoding, index_dir, model, reader, k, html=html, refresh=refresh)
            web_server.serve(
                qa, listener, open_browser=open_browser,
                announce=lambda url: typer.echo(f"article-qa: serving {_served(qa)} at {url} (Ctrl-C stops)"),
            )
        finally:
            listener.close()
        typer.echo("article-qa: stopped", err=True)


def _served(qa) -> str:
    """What `serve` says it serves: the article's source, or how many articles a corpus holds."""
    if getattr(qa, "is_corpus", False):
        return f"{qa.article_count:,} article{'' if qa.article_count == 1 else 's'}"
    return qa.article.source


@app.command(name="index", epilog="Example: article-qa index --article news.md")
def index_command(
    article: Optional[List[str]] = ArticlesOpt,
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if the saved index is valid."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    encoding: str = EncodingOpt,
    json_output: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
    html: str = HtmlOpt,
    refresh: bool = RefreshOpt,
) -> None:
    """Build or refresh the article's index (and the fast ONNX encoder) and say what was done.
    Over a corpus: how many articles were added, changed, removed and unchanged (only those added
    or changed are embedded); an article that cannot be read is named, skipped, and makes the exit
    status 1."""
    from article_qa.terminal.progress import open_article_qa

    with user_errors():
        qa = open_article_qa(article, encoding, index_dir, model, None, 3, rebuild=rebuild, html=html, refresh=refresh)
        if qa.is_corpus:
            _say_corpus_index(qa, json_output)
            return
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


def _say_corpus_index(qa, json_output: bool) -> None:
    status = qa.index.status
    counts = status.changes.counts()
    info = {
        "action": status.action,
        "reason": status.reason,
        "articles": len(qa.index),
        "passages": qa.index.passage_count,
        **counts,
        "skipped_articles": [{"source": s.source, "error": s.reason} for s in status.changes.skipped],
        "vectors": qa.index.vectors.kind,
        "lexical": qa.index.lexical.kind,
        "model": qa.index.embedder.model.name,
        "path": str(status.path) if status.path else None,
        "seconds": round(status.seconds, 2),
    }
    if json_output:
        typer.echo(_json(info))
    else:
        why = f" ({status.reason})" if status.reason else ""
        where = f"\n  stored in {_name(status.path)}" if status.path else "\n  kept in memory only"
        skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
        typer.echo(
            f"{status.action}{why}: {info['articles']} articles, {info['passages']} passages with "
            f"{_name(info['model'])} in {info['seconds']} s\n"
            f"  {counts['added']} added, {counts['changed']} changed, {counts['removed']} removed, "
            f"{counts['unchanged']} unchanged{skipped}{where}"
        )
    if counts["skipped"]:
        raise typer.Exit(1)


@app.command(name="eval", epilog="Examples: article-qa eval squad2_dev.json --json\n"
                                  "          article-qa eval --chats chats.jsonl --article notes.md")
def eval_command(
    file: Optional[Path] = typer.Argument(None, help="SQuAD 1.1/2.0 JSON file (each article is one document)."),
    json_output: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N questions."),
    k: int = KOpt,
    article_id: Optional[str] = typer.Option(None, "--article-id", help="Only the article with this title."),
    corpus: bool = typer.Option(False, "--corpus", help="All the file's articles as one corpus: each question searched across all of them (adds article_recall@k)."),
    chats: Optional[Path] = typer.Option(None, "--chats", help="Also score follow-up conversations (JSON Lines: id, conversation, question, answers)."),
    article: Optional[Path] = typer.Option(None, "--article", "-a", help="The article the --chats conversations are about (default: the shipped one); a folder, glob or JSON Lines file is a corpus: every turn is asked across it (a line's \"article\" limits it to one)."),
    answer_threshold: Optional[float] = typer.Option(None, "--answer-threshold", min=0.0, max=1.0,
                                                     help="Answer at this confidence instead of the reader's own threshold (to see the trade-off)."),
    details: Optional[Path] = typer.Option(None, "--details", help="Write one JSON line per question or turn: how it was read, what came back, how it scored."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    reader: Optional[str] = ReaderOpt,
) -> None:
    """Measure answer quality (SQuAD exact/F1, abstention, calibration, retrieval recall@k) on a
    question file and/or follow-up conversations."""
    with user_errors():
        from article_qa.evaluation.run import evaluate_chats, evaluate_corpus, evaluate_file
        from article_qa.index.printable import os_error
        from article_qa.terminal.process import offline_unless_hub, quiet_libraries
        from article_qa.terminal.progress import progress_bar

        if file is None and chats is None:
            raise UserError("give a SQuAD question file, --chats FILE, or both")
        if article is not None and chats is None:
            raise UserError("--article names the article of --chats conversations; give --chats too")
        if corpus and (file is None or chats is not None or article_id is not None):
            raise UserError("--corpus evaluates a SQuAD file's articles as one corpus; give the file, "
                            "without --chats or --article-id")
        quiet_libraries()
        offline_unless_hub(model, reader)
        update, progress = progress_bar("Evaluating")
        notes: list[str] = []
        records: list[dict] | None = [] if details is not None else None
        if details is not None and (details.is_dir() or not details.parent.is_dir()):
            raise UserError(f"cannot write --details to {_name(details)}: "
                            + ("it is a directory" if details.is_dir() else "no such folder"))
        try:
            if corpus:
                result = evaluate_corpus(file, k=k, limit=limit, index_dir=index_dir, model=model, reader=reader,
                                         progress=update, answer_threshold=answer_threshold, details=records)
                metrics, notes = result.metrics, result.notes
            elif file is not None:
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
            raise UserError(os_error(err)) from err
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
    from article_qa.index.cache import cache_folder, cache_usage, kind_name
    from article_qa.index.sizes import human_size

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
    """Remove the cached indexes and model exports article-qa recorded making (the chat history,
    files not made by article-qa and an index being built stay)."""
    from article_qa.index.cache import KEPT, cache_folder, clear_cache
    from article_qa.index.printable import os_error
    from article_qa.index.sizes import human_size

    with user_errors():
        folder = cache_folder(index_dir or ctx.obj)
        try:
            cleared = clear_cache(folder)
        except OSError as err:
            raise UserError(f"{os_error(err, folder, verb='clear')}; nothing was removed") from err
        typer.echo(f"removed {human_size(cleared.freed)} from {_name(folder)}")
        for reason, count, size in cleared.by_reason():
            typer.echo(f"  kept {human_size(size)}: {KEPT[reason]}" + (f" ({count})" if count > 1 else ""))


@app.command(name="text", epilog="Example: article-qa text --article report.pdf | less")
def text_command(
    article: Optional[str] = ArticleOpt,
    encoding: str = EncodingOpt,
    html: str = HtmlOpt,
    refresh: bool = RefreshOpt,
    index_dir: Optional[Path] = IndexDirOpt,
) -> None:
    """Print the article's text as article-qa reads it: the text every offset counts in (for
    Markdown and PDF, the text a person sees, not the file's markup; for an HTML page, its story,
    or with --html whole the whole page). On a terminal, control characters and escape sequences
    are shown as `\\x1b` escapes, as everywhere else."""
    from article_qa.terminal.progress import read_article

    with user_errors():
        text = read_article(article, encoding, index_dir, html, refresh).text
        if sys.stdout.isatty():
            from article_qa.terminal.render import visible

            text = visible(text)  # a pipe gets the exact text; a terminal must not obey it
        sys.stdout.write(text)


def main() -> None:
    """The console script (`article-qa`, `python -m article_qa`)."""
    from article_qa.terminal.process import run

    run(app)


if __name__ == "__main__":
    main()
