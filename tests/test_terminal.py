"""The CLI as a person sees it: a real pseudo-terminal of 80×24 (pexpect) and the screen a terminal
would show (pyte, a VT100 emulator).

CliRunner never has a terminal, so colour, wrapping, line editing, Ctrl-C and what stays on the
screen can only be checked here.
"""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

from tests.test_question import LONG_QUESTION  # noqa: E402

pytestmark = pytest.mark.slow
ROWS, COLS = 24, 80
SGR = re.compile(rb"\x1b\[[0-9;]*m")  # a colour or style escape


class Terminal:
    """One CLI process in a pseudo-terminal, with the screen it draws on."""

    def __init__(self, args: list[str], env: dict[str, str], rows: int = ROWS, cols: int = COLS):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.exited = False
        self.child = pexpect.spawn(sys.executable, ["-c", "from article_qa import cli; cli.main()", *args], env=env,
                                   dimensions=(rows, cols), timeout=120)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait(self, predicate, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.exited or time.monotonic() > deadline:
                raise AssertionError(f"waited in vain; the screen:\n{self.text()}\nraw tail: {self.raw[-600:]!r}")
            try:
                data = self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                self.exited = True
                continue
            self.raw += data
            self.stream.feed(data)

    def prompt(self) -> bool:
        """The chat waits for input: '> ' at the cursor's line, cursor right after it."""
        cursor = self.screen.cursor
        return self.screen.display[cursor.y].rstrip() == ">" and cursor.x == 2

    def wait_prompt(self, timeout: float = 120) -> None:
        self.wait(self.prompt, timeout)

    def ask(self, question: str) -> bytes:
        """Type a question, wait for the next prompt; the raw output of the answer."""
        before = len(self.raw)
        self.child.send(question + "\r")
        self.wait(lambda: len(self.raw) > before + len(question) + 2 and self.prompt())
        return self.raw[before:]

    def finish(self, timeout: float = 120) -> int:
        self.wait(lambda: self.exited, timeout)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture()
def term_env(default_qa, index_dir):
    default_qa.ask("Where were the peace talks held?")  # the models are exported: no first-use wait
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "FORCE_COLOR")}
    env.update(ARTICLE_QA_INDEX_DIR=str(index_dir), TERM="xterm-256color", INPUTRC="/dev/null")
    return env


def answer_line(term: Terminal, start: str = "Answer: ") -> int:
    found = [i for i, line in enumerate(term.lines()) if line.startswith(start)]
    assert found, term.text()
    return found[-1]


def test_chat_answer_line_stays_on_the_80x24_screen(term_env):
    term = Terminal(["chat"], term_env)
    term.wait_prompt()
    term.ask("Where were the peace talks held?")
    lines = term.lines()
    row = answer_line(term)
    assert lines[row - 1] == "> Where were the peace talks held?"  # the answer comes first
    assert lines[row].startswith("Answer: Brussels, Belgium")
    assert "confidence" in lines[row]
    assert any(line.startswith("  paragraph 3, characters") for line in lines[row:])
    term.child.sendeof()
    assert term.finish() == 0
    # With the passages shown, too, the answer must still be on the screen after the question,
    # and after a follow-up whose rewritten reading takes a line of its own.
    term = Terminal(["chat"], term_env)
    term.wait_prompt()
    term.ask(":sources")
    term.ask("Who announced that Ukraine is dropping its NATO bid?")
    lines = term.lines()
    row = answer_line(term)
    assert "Zelensky" in lines[row], term.text()
    assert lines[row - 1] == "> Who announced that Ukraine is dropping its NATO bid?"
    assert "Passages  (:show N shows one whole)" in lines
    term.ask("How did he speak to journalists?")
    lines = term.lines()
    row = answer_line(term)
    assert "WhatsApp" in lines[row] and lines[row - 1].startswith("read as: How did Zelensky"), term.text()
    assert "Passages  (:show N shows one whole)" in lines[row:]
    assert max(len(line) for line in lines) <= COLS
    term.child.sendeof()
    assert term.finish() == 0


def test_colour_on_a_terminal_marks_the_span_with_a_background(term_env):
    term = Terminal(["chat"], term_env)
    term.wait_prompt()
    raw = term.ask("Where were the peace talks held?")
    assert SGR.search(raw)
    assert "⟦" not in term.text()  # the colour is the marker
    top = answer_line(term)
    assert term.screen.buffer[top][0].bold  # "Answer:" in bold
    row = next(i for i, line in enumerate(term.lines()) if "Brussels" in line and i > top)  # the sentence
    cells = [term.screen.buffer[row][x] for x in range(COLS)]
    text = "".join(c.data for c in cells)  # wide characters (the article's emoji) take two cells
    span = text.index("Brussels")
    assert cells[span].bg != "default" and cells[span].bold
    word = text.index("talks") if "talks" in text else text.index(".")
    assert cells[word].bg == "default"
    term.child.sendeof()
    term.finish()


def test_no_color_on_a_terminal_is_plain_and_wraps_at_words(term_env):
    env = {**term_env, "NO_COLOR": "1"}
    term = Terminal(["chat"], env)
    term.wait_prompt()
    raw = term.ask("Where were the peace talks held?")
    assert not SGR.search(raw), raw
    lines = term.lines()
    row = answer_line(term)
    end = next(i for i in range(row, len(lines)) if lines[i].startswith("  paragraph 3"))
    sentence_lines = lines[row + 1 : end]
    assert len(sentence_lines) >= 2  # 96 characters: wrapped
    words = " ".join(line.strip() for line in sentence_lines).split()
    assert words == "📍WHEN & WHERE: The announcement was made on Sunday during peace talks in ⟦Brussels, Belgium⟧.".split()
    assert all(line.startswith("  ") for line in sentence_lines)  # the indent is kept on wrapped lines
    term.child.sendeof()
    term.finish()


def test_ctrl_c_cancels_the_line_and_the_chat_goes_on(term_env):
    term = Terminal(["chat"], term_env)
    term.wait_prompt()
    term.child.send("Who is the Ukrainian pres")
    term.wait(lambda: "Ukrainian pres" in term.text())
    before = len(term.raw)
    term.child.sendintr()
    term.wait(lambda: len(term.raw) > before and term.prompt())
    assert b"^C" in term.raw[before:]
    assert not term.exited
    term.ask("Where were the peace talks held?")
    assert term.lines()[answer_line(term) - 1] == "> Where were the peace talks held?"  # not appended to the cancelled line
    assert term.lines()[answer_line(term)].startswith("Answer: Brussels")
    term.child.sendeof()
    assert term.finish() == 0


def test_ctrl_c_cancels_long_work_in_chat_and_the_chat_goes_on(term_env, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join(f"Paragraph {i} tells how harbour {i} was dredged in the year {1800 + i % 200} "
                               f"by crew {i * 7} after storm number {i}." * 3 for i in range(1500)), encoding="utf-8")
    term = Terminal(["chat"], term_env)
    term.wait_prompt()
    term.child.send(f":open {big}\r")
    term.wait(lambda: "Indexing big.txt" in term.text())
    term.child.sendintr()
    term.wait(lambda: b"(cancelled)" in term.raw and term.prompt())
    term.ask("Where were the peace talks held?")  # still the first article
    assert term.lines()[answer_line(term)].startswith("Answer: Brussels")
    term.child.sendeof()
    assert term.finish() == 0


def test_tab_completes_colon_commands(term_env):
    term = Terminal(["chat"], term_env)
    term.wait_prompt()
    term.child.send(":sou\t")
    term.wait(lambda: "> :sources" in term.text())
    term.ask("")
    assert "passages shown" in term.text()
    term.child.send("qu")
    term.child.send("it\r")
    assert term.finish() == 0


def test_long_question_warning_wraps_at_words_and_the_question_is_answered(term_env):
    term = Terminal(["ask", LONG_QUESTION], term_env)
    assert term.finish() == 0
    out = term.raw.decode("utf-8").replace("\r\n", "\n")
    lines = out.split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("article-qa: warning: question is longer"))
    warning = [lines[first]]
    for line in lines[first + 1 :]:
        if not line.startswith("  ") or line.startswith("  paragraph"):
            break
        warning.append(line)
    assert len(warning) > 1 and all(len(line) < COLS for line in warning)
    joined = " ".join(line.strip() for line in warning)
    assert joined.endswith("'in which city the peace talks were actually held?'")
    for line, following in zip(warning, warning[1:]):  # each break falls between two words
        assert not line.endswith(" ") and following.startswith("  ") and not following.startswith("   ")
    assert re.search(r"^Answer: Brussels", SGR.sub(b"", out.encode()).decode(), re.M)


def test_article_from_stdin_on_a_terminal_says_how_to_end_it(term_env):
    term = Terminal(["ask", "When does the ferry to Gull Rock leave?", "--article", "-"], term_env)
    term.wait(lambda: "reading the article from standard input; end with Ctrl-D" in term.text())
    term.child.send("The ferry to Gull Rock leaves at nine in the morning.\r")
    term.child.sendeof()
    assert term.finish() == 0
    assert re.search(r"^Answer: .*nine", term.text(), re.M), term.text()


def test_escapes_in_an_article_are_shown_literally_on_a_terminal(term_env, tmp_path):
    article = tmp_path / "evil.txt"
    article.write_text("The vault code \x1b]0;pwned\x07 is kept in Geneva \x1b[2J by the bank.\n", encoding="utf-8")
    term = Terminal(["ask", "Where", "is", "the", "vault", "code", "kept?", "--article", str(article)], term_env)
    assert term.finish() == 0
    screen = term.text()
    assert "Answer: " in screen and "Geneva" in screen
    assert "\\x1b[2J" in screen and "\\x1b]0;pwned\\x07" in screen  # visible as text
    assert term.screen.title != "pwned"  # the escape never reached the terminal


def test_the_text_view_shows_an_articles_escapes_literally_on_a_terminal(tmp_path):
    """`article-qa text` wrote the article's escape sequences raw (a window title, colours, U+202E)."""
    article = tmp_path / "evil.txt"
    article.write_text("Title \x1b]0;pwned\x07 here.\n\x1b[31mRed\x1b[0m and kept.\r\nReversed: \u202etxt.exe\n",
                       encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "FORCE_COLOR")}
    term = Terminal(["text", "--article", str(article)], {**env, "TERM": "xterm-256color"})
    assert term.finish() == 0
    assert term.lines()[:3] == ["Title \\x1b]0;pwned\\x07 here.", "\\x1b[31mRed\\x1b[0m and kept.",
                                "Reversed: \\u202etxt.exe"]
    assert term.screen.title != "pwned"
    assert b"\x1b" not in term.raw and "\u202e".encode() not in term.raw  # nothing for the terminal to obey
    import subprocess

    piped = subprocess.run([sys.executable, "-c", "from article_qa import cli; cli.main()", "text", "--article", str(article)],
                           capture_output=True, env=env, timeout=60)
    assert piped.stdout == article.read_bytes()  # a pipe still gets the exact text every offset counts in


def test_ask_on_a_terminal_names_the_article_it_answers_from(term_env):
    """A user who forgot --article sees which article said "does not say"; the line fits 80 columns."""
    term = Terminal(["ask", "Who is buying Yahoo?"], term_env)
    assert term.finish() == 0
    lines = [line for line in term.lines() if line]
    assert lines[0] == "from: the sample article (Ukraine peace talks) — --article FILE asks another"
    assert lines[1].startswith(("The article does not say.", "Not sure."))
    assert re.search(rb"\x1b\[2m\s*from: ", term.raw)  # dim


def test_chat_first_line_names_the_article(term_env):
    term = Terminal(["chat"], term_env)
    term.wait_prompt()
    assert term.lines()[0].startswith("article-qa chat · the sample article (Ukraine peace talks) · ")
    term.child.sendeof()
    assert term.finish() == 0
