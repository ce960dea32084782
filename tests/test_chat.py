"""The chat loop without models: commands, Ctrl-C while a question is answered, Tab completion."""

from __future__ import annotations

import builtins

import pytest

from article_qa.terminal import chat
from article_qa.index.article import article_from_text
from article_qa.qa.answer import Answer
from article_qa.qa.pipeline import Settings

ARTICLE = article_from_text("The talks were held in Brussels.\n")


class FakeConversation:
    def __init__(self, qa, interrupt_first: bool):
        self.qa = qa
        self.asked: list[str] = []
        self.interrupt_first = interrupt_first

    def ask(self, question: str) -> Answer:
        self.asked.append(question)
        if self.interrupt_first and len(self.asked) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the answer is being computed
        start = ARTICLE.text.index("Brussels")
        return Answer(question, "Brussels", start, start + 8, 0.9, ())

    def reset(self) -> None:
        pass


class FakeQA:
    settings = Settings()
    article = ARTICLE
    reader_name = None

    def __init__(self, interrupt_first: bool = False):
        self.conv = FakeConversation(self, interrupt_first)

    def conversation(self):
        return self.conv


def run_chat(monkeypatch, lines: list[str], qa=None, opener=None):
    qa = qa or FakeQA()
    feed = iter(lines)

    def fake_input(prompt=""):
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(builtins, "input", fake_input)
    chat.Chat(qa, opener=opener, interactive=False, sources=False).run()
    return qa


def test_ctrl_c_while_answering_cancels_that_question_and_the_chat_goes_on(monkeypatch, capsys):
    qa = run_chat(monkeypatch, ["Where were the talks?", "Where exactly?"], FakeQA(interrupt_first=True))
    out = capsys.readouterr()
    assert qa.conv.asked == ["Where were the talks?", "Where exactly?"]
    assert "(cancelled)" in out.err
    assert out.out.count("Q: ") == 1 and "Q: Where exactly?" in out.out and "⟦Brussels⟧" in out.out


def test_bare_words_are_commands_only_alone(monkeypatch, capsys):
    qa = run_chat(monkeypatch, ["help", "Help me find the talks", "exit", "never asked"])
    out = capsys.readouterr()
    assert ":show N" in out.err
    assert qa.conv.asked == ["Help me find the talks"]


def test_show_before_any_answer_says_so(monkeypatch, capsys):
    run_chat(monkeypatch, [":show 1", ":open", ":bogus"])
    err = capsys.readouterr().err
    assert "no passages to show yet" in err and ":open takes a file name" in err and "unknown command :bogus" in err


@pytest.mark.parametrize("line, word, expected", [
    (":", ":", list(chat.CHAT_COMMANDS)),
    (":so", ":so", [":sources"]),
    (":sh", ":sh", [":show "]),
    (":O", ":O", [":open "]),
    ("Who is :s", ":s", []),  # only at the start of the line
])
def test_tab_completes_colon_commands(line, word, expected):
    got = chat.chat_completions(line, word)
    assert [g.strip() for g in got] == [e.strip() for e in expected]


def test_tab_completes_file_names_after_open(tmp_path):
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "notebook").mkdir()
    word = str(tmp_path / "note")
    assert chat.chat_completions(f":open {word}", word) == [str(tmp_path / "notebook") + "/", str(tmp_path / "notes.md")]


def test_a_question_over_the_length_limit_is_refused_and_the_chat_goes_on(monkeypatch, capsys):
    """The same limit and words as `ask`, `batch` and the web page (`qa.question.clean_question`)."""
    qa = run_chat(monkeypatch, ["x" * 5000, "Where were the talks?"])
    assert qa.conv.asked == ["Where were the talks?"]
    err = capsys.readouterr().err
    assert "article-qa: error: question is 5,000 characters; the limit is 2,000" in err


def test_open_of_an_unreadable_pdf_says_one_line_and_the_chat_goes_on(monkeypatch, capsys, tmp_path):
    from article_qa.index.article import load_article
    from tests.test_formats import deep_page_tree

    path = tmp_path / "report.pdf"
    path.write_bytes(deep_page_tree(300))

    def opener(name, k):  # as the CLI's: the article is loaded first, and that is what fails
        load_article(name)
        raise AssertionError("not reached")

    qa = run_chat(monkeypatch, [f":open {path}", "Where were the talks?"], opener=opener)
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert [line for line in out.err.splitlines() if "cannot read" in line] == [
        line for line in out.err.splitlines() if str(path) in line]
    assert f"cannot read {path}: it is damaged or goes past the PDF reader's limits" in out.err
    assert qa.conv.asked == ["Where were the talks?"]
