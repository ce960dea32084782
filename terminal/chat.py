"""`article-qa chat`: the prompt loop, its colon commands, Tab completion and the saved history.

Questions go to one `Conversation`, so follow-ups are read in the light of the previous answers;
commands change what is shown or read. On a terminal replies to commands go to stdout and answers
are shown in the clipped view; when stdin is not a terminal (questions piped in, one per line) the
answers are the output and everything else goes to stderr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import typer

from article_qa.terminal.messages import UserError, error_line

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
HISTORY_LENGTH = 1000


def banner(qa) -> str:
    from article_qa.index.printable import printable

    if getattr(qa, "is_corpus", False):
        return f"article-qa chat · {qa.article_count} articles · {qa.index.passage_count} passages"
    return f"article-qa chat · {printable(qa.article.source)} · {len(qa.index.passages)} passages"


def clean(question: str) -> str:
    """The question as every front end takes it (`qa.question.clean_question`), or UserError."""
    from article_qa.qa.question import clean_question

    try:
        return clean_question(question)
    except ValueError as err:
        raise UserError(str(err)) from err


class Chat:
    """The chat loop: questions go to the conversation, commands change what is shown or read."""

    def __init__(self, qa, opener: Callable, interactive: bool, sources: bool):
        self.conversation = qa.conversation()
        self.opener = opener  # (path, k) -> the pipeline for another article (:open)
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
        from article_qa.terminal.render import show_answer

        try:
            answer = self.conversation.ask(clean(text))
        except KeyboardInterrupt:
            typer.echo("(cancelled)", err=True)
            return
        except Exception as err:  # noqa: BLE001 - one failed answer must not end the chat
            error_line(str(err))
            return
        self.last = answer
        if not self.interactive:
            typer.echo(f"Q: {answer.question}")
        show_answer(self.qa, answer, self.view())
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
        from article_qa.terminal.render import passage_lines, print_lines, shown_hits

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
        hit = hits[number - 1]
        corpus = getattr(self.qa, "is_corpus", False)
        text = self.qa.text_of(hit.passage.article) if corpus else self.qa.article.text
        print_lines(passage_lines(self.last, text, hit, number, titled=corpus and self.qa.article_count > 1))
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
            error_line(str(err))
            return
        except KeyboardInterrupt:
            typer.echo("(cancelled)", err=True)
            return
        if qa.reader_name == self.qa.reader_name and self.qa.loaded_reader is not None:
            qa.use_reader(self.qa.loaded_reader)  # the same reader: no need to load it again
        qa.start_loading()
        self.conversation = qa.conversation()
        self.last = None
        self.say(banner(qa))


def enable_line_editing(history: Optional[Path]) -> Optional[Callable[[], None]]:
    """Line editing, Tab completion of the colon commands (and of file names after :open) and a
    persistent history in the file `history` (None: none kept) through the standard library's
    readline; returns what saves the history (called when the chat ends, not at exit: the process
    leaves without the interpreter's teardown)."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return None
    from article_qa.index.private_files import load_private, save_private

    if history is not None:
        load_private(history, readline.read_history_file)
    readline.set_history_length(HISTORY_LENGTH)
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
