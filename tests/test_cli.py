"""The command line through typer's CliRunner: ask, chat on stdin, batch, index, errors."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from article_qa.cli import app
from conftest import DATA

pytestmark = pytest.mark.slow
runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def test_ask_json_offsets_slice_the_article(cli_env, default_qa):
    result = run("ask", "Where were the peace talks held?", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    article = default_qa.article.text
    answer = payload["answer"]
    assert "Brussels" in answer["text"]
    assert article[answer["start"] : answer["end"]] == answer["text"]
    assert len(payload["passages"]) == 3


def test_ask_plain_output_is_answer_then_its_sentence(cli_env, default_qa):
    result = run("ask", "Where were the peace talks held?")
    assert result.exit_code == 0, result.output
    lines = result.stdout.rstrip("\n").split("\n")
    assert lines[0].startswith("Answer: Brussels") and "(confidence " in lines[0]
    assert "in ⟦Brussels, Belgium⟧." in lines[1]
    start = default_qa.article.text.index("Brussels, Belgium")
    assert lines[2] == f"  paragraph 3, characters {start}-{start + len('Brussels, Belgium')}"
    assert len(lines) == 3  # no passages unless asked for


def test_ask_sources_shows_passages_answer_first(cli_env, default_qa):
    result = run("ask", "Where were the peace talks held?", "--sources")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\nPassages\n[1] " in out
    first = out.split("[1] ")[1].split("\n[2] ")[0]
    assert "⟦Brussels, Belgium⟧" in first and "match " in first


def test_ask_joins_unquoted_words(cli_env):
    result = run("ask", "Where", "were", "the", "peace", "talks", "held", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["question"] == "Where were the peace talks held"
    assert "Brussels" in payload["answer"]["text"]


def test_a_question_in_another_language_gets_a_one_line_notice_each_time(cli_env):
    result = run("chat", input="Wo fanden die Friedensgespräche statt?\nWer ist der Präsident?\nWho is the Ukrainian president?\n")
    assert result.exit_code == 0, result.output
    notices = [line for line in result.stderr.splitlines() if "looks like German" in line]
    assert len(notices) == 2 and all(line.startswith("article-qa: warning: ") for line in notices)
    assert result.stdout.count("Q: ") == 3


def test_short_help_and_version(cli_env):
    short, long = run("-h"), run("--help")
    assert short.exit_code == long.exit_code == 0 and short.stdout == long.stdout and "Usage:" in short.stdout
    assert "Usage:" in run("ask", "-h").stdout
    version = run("--version")
    assert version.exit_code == 0 and version.stdout.startswith("article-qa ")


def test_ask_on_own_article_file(cli_env, tmp_path):
    """A Markdown article is read as the text a person sees: offsets count in that text."""
    from article_qa.index.article import load_article

    article = tmp_path / "note.md"
    article.write_text(
        "# Lighthouse notes\n\nThe lighthouse on **Gull Rock** was built in 1882 by the [Harbour Board](https://hb.example).\n\n"
        "Its lamp was electrified in 1931 and automated in 1986.\n",
        encoding="utf-8",
    )
    result = run("ask", "When was the lamp electrified?", "--article", str(article), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    text = load_article(article).text
    assert "**" not in text and "https" not in text and text.startswith("Lighthouse notes\n\n")
    assert payload["answer"] is not None and "1931" in payload["answer"]["text"]
    assert text[payload["answer"]["start"] : payload["answer"]["end"]] == payload["answer"]["text"]
    shown = run("text", "--article", str(article))
    assert shown.exit_code == 0 and shown.stdout == text


def test_indexing_a_new_article_says_so_on_one_line(cli_env, tmp_path):
    article = tmp_path / "fresh.txt"
    article.write_text("The ferry to Gull Rock leaves at nine.\n\nThe return ferry leaves at five.\n", encoding="utf-8")
    first = run("ask", "When does the ferry leave?", "--article", str(article))
    assert first.exit_code == 0, first.output
    assert first.stderr.splitlines() == ["Indexing fresh.txt: 1 passage"]  # two short paragraphs make one
    again = run("ask", "When does the ferry leave?", "--article", str(article))
    assert again.stderr == ""  # reused: nothing to say


def test_chat_on_stdin_answers_each_line_and_follows_up(cli_env):
    script = "Who announced that Ukraine is dropping its NATO bid?\n:k 2\nHow did he speak to journalists?\n:quit\nnever asked\n"
    result = run("chat", input=script)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("Q: ") == 2
    assert "never asked" not in out
    follow_up = out.split("Q: How did he")[1]
    assert follow_up.split("\n")[1] == "read as: How did Zelensky speak to journalists?"
    assert "WhatsApp" in follow_up.split("\n")[2]
    assert "> " not in out  # no prompts when stdin is not a terminal


@pytest.mark.parametrize("word", ["quit", "exit", "QUIT"])
def test_chat_bare_quit_and_exit_leave(cli_env, word):
    result = run("chat", input=f"Where were the peace talks held?\n{word}\nWho is the Ukrainian president?\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Q: ") == 1


def test_chat_bare_help_shows_the_commands(cli_env):
    result = run("chat", input="help\n")
    assert result.exit_code == 0, result.output
    assert ":show N" in result.stderr and ":open FILE" in result.stderr
    assert "Q: " not in result.stdout


def test_chat_show_opens_a_passage_whole_and_sources_toggle(cli_env, default_qa):
    result = run("chat", input="Where were the peace talks held?\n:show 1\n:show 9\n:sources\nWho is the Ukrainian president?\n")
    assert result.exit_code == 0, result.output
    first = result.stdout.split("Q: ")[1]
    passage = next(h.passage for h in default_qa.ask("Where were the peace talks held?").hits
                   if h.passage.start <= default_qa.article.text.index("Brussels, Belgium") < h.passage.end)
    assert f"[1] paragraphs 3-4, characters {passage.start}-{passage.end}, match " in first
    assert passage.text.splitlines()[-1] in first  # whole, to its last line
    assert ":show takes a passage number from 1 to" in result.stderr
    second = result.stdout.split("Q: ")[2]
    assert "\nPassages\n[1] " in second


def test_chat_open_switches_article_in_the_same_chat(cli_env, tmp_path):
    article = tmp_path / "ferry.html"
    article.write_text("<html><body><h1>Ferry</h1><p>The ferry to <b>Gull Rock</b> leaves at nine in the morning.</p>"
                       "<script>var x = 'Brussels';</script></body></html>", encoding="utf-8")
    script = (f":open {tmp_path / 'missing.txt'}\nWhere were the peace talks held?\n:open {article}\n"
              "When does the ferry to Gull Rock leave?\n")
    result = run("chat", input=script)
    assert result.exit_code == 0, result.output
    assert "article not found" in result.stderr  # the first :open fails; the chat goes on
    answers = result.stdout.split("Q: ")[1:]
    assert "Brussels" in answers[0]
    assert "article-qa chat · " + str(article) in result.stderr
    assert "nine" in answers[1].split("\n")[1] and "script" not in answers[1]


def test_batch_answers_every_line_once_in_order(cli_env, tmp_path):
    lines = [
        json.dumps({"id": "a", "question": "Where were the peace talks held?"}),
        "{not json",
        json.dumps({"question": "Who is the Ukrainian president?"}),
        "",
        json.dumps({"id": "c1", "conversation": "c", "question": "Who announced that Ukraine is dropping its NATO bid?"}),
        json.dumps({"id": "c2", "conversation": "c", "question": "How did he speak to journalists?"}),
        json.dumps({"question": 7}),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run("batch", str(source), "--output", str(out))
    assert result.exit_code == 1  # some lines failed
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 5, 6, 7]  # the blank line 4 is skipped
    assert [r["id"] for r in records][:3] == ["a", None, "3"]
    errors = [r for r in records if "error" in r]
    assert [r["line"] for r in errors] == [2, 7]
    assert "Brussels" in records[0]["answer"]["text"]
    assert "Zelensky" in records[2]["answer"]["text"]
    assert "WhatsApp" in (records[4]["answer"] or {}).get("text", "")


def test_batch_resume_completes_without_duplicates(cli_env, tmp_path):
    questions = [json.dumps({"id": f"q{i}", "question": q}) for i, q in enumerate(
        ["Where were the peace talks held?", "Who is the Ukrainian president?", "What does the US sell to NATO allies?"])]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(questions) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    first = run("batch", str(source), "-o", "-").stdout.splitlines()[0]
    out.write_text(first + "\n" + '{"id": "q1", "quest', encoding="utf-8")  # cut mid-line
    result = run("batch", str(source), "--output", str(out), "--resume")
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line whole: the cut line was dropped
    assert [(r["line"], r["id"]) for r in records] == [(1, "q0"), (2, "q1"), (3, "q2")]
    assert lines[0] == first  # the earlier answer is kept as it was written
    assert all("error" not in r for r in records)


def test_batch_from_stdin_many_lines(cli_env):
    questions = ["Where were the peace talks held?", "Who is the Ukrainian president?"] * 30
    result = run("batch", input="\n".join(questions) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 60
    assert [r["line"] for r in records] == list(range(1, 61))
    assert all(r["question"] == q for r, q in zip(records, questions))


def test_index_is_reused_then_rebuilt(cli_env, tmp_path):
    article = tmp_path / "a.txt"
    article.write_text("Alpha paragraph about harbours and ships.\n\nBeta paragraph about mountains.\n", encoding="utf-8")
    first = json.loads(run("index", "--article", str(article), "--json").stdout)
    second = json.loads(run("index", "--article", str(article), "--json").stdout)
    forced = json.loads(run("index", "--article", str(article), "--rebuild", "--json").stdout)
    assert first["action"] == "built" and second["action"] == "reused" and forced["action"] == "rebuilt"
    article.write_text("Alpha paragraph about harbours and ships, changed.\n", encoding="utf-8")
    changed = json.loads(run("index", "--article", str(article), "--json").stdout)
    assert changed["action"] == "built" and changed["path"] != first["path"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", "   "], "empty question"),
        (["ask", "\x1b[31m\x07"], "empty question"),  # only control characters
        (["ask", "Why?", "--article", "/nonexistent/file.txt"], "article not found: /nonexistent/file.txt"),
        # A folder is a corpus (its .txt, .md, .html and .pdf files); this one holds only JSON.
        (["ask", "Why?", "--article", str(DATA)],
         f"{DATA} holds no articles (no .txt, .md, .markdown, .html, .htm, .pdf files in it or its subfolders)"),
        (["batch", "/nonexistent/q.jsonl"], "question file not found: /nonexistent/q.jsonl"),
        (["batch", "--resume"], "--resume needs --output FILE to know what was already answered"),
        (["eval", "/nonexistent.json"], "file not found: /nonexistent.json"),
        (["eval", str(DATA)], f"{DATA} is a directory, not a file"),
    ],
)
def test_bad_input_is_one_line_error(cli_env, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr == f"article-qa: error: {message}\n"
    assert result.stdout == ""


def test_chat_reports_a_bad_line_and_goes_on(cli_env):
    result = run("chat", input="\x1b[31m\x07\n:k zero\nWho is the Ukrainian president?\n")
    assert result.exit_code == 0, result.output
    assert "empty question" in result.stderr
    assert ":k takes a whole number" in result.stderr
    assert result.stdout.count("Q: ") == 1
    assert "Zelensky" in result.stdout


def test_markup_in_question_stays_and_escapes_are_removed(cli_env):
    result = run("ask", "[bold red]Where were \x1b[31mthe peace\x07 talks held?\x1b[0m[/bold red]", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["question"] == "[bold red]Where were the peace talks held?[/bold red]"


@pytest.mark.slow
def test_console_script_answers_whole_without_importing_torch(default_qa, index_dir):
    """The real process, as a shell user runs it: `main` leaves without the interpreter's teardown,
    so the output must be complete and the exit status kept; and `ask` on a built index with its
    ONNX exports needs neither torch nor transformers (they cost seconds to import)."""
    import subprocess
    import sys

    default_qa.ask("Where were the peace talks held?")  # the exports exist, as after a first question
    env = {**os.environ, "ARTICLE_QA_INDEX_DIR": str(index_dir), "NO_COLOR": "1"}
    command = [sys.executable, "-X", "importtime", "-c", "from article_qa import cli; cli.main()"]
    done = subprocess.run([*command, "ask", "Where were the peace talks held?", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    answer = record["answer"]
    assert default_qa.article.text[answer["start"] : answer["end"]] == answer["text"]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported
    assert not {"torch", "transformers", "sentence_transformers"} & imported
    assert not {"starlette", "uvicorn", "article_qa.web"} & imported  # only `serve` needs the web server

    failed = subprocess.run([*command, "ask", "   "], capture_output=True, text=True, env=env, timeout=120)
    assert failed.returncode == 2
    assert failed.stdout == ""
    said = [line for line in failed.stderr.splitlines() if not line.startswith("import time:")]
    assert said == ["article-qa: error: empty question"]


@pytest.mark.slow
def test_first_question_with_both_exports_missing_exports_both_and_answers(default_qa, tmp_path):
    """The reader loads (and here exports) in a background thread while the encoder is exported in
    the main one; importing transformers from both at once once failed the question."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(default_qa.index.status.path, tmp_path / default_qa.index.status.path.name)
    env = {**os.environ, "ARTICLE_QA_INDEX_DIR": str(tmp_path), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", "from article_qa import cli; cli.main()", "ask", "Who is the Ukrainian president?",
                           "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)["answer"]
    assert "Zelensky" in answer["text"]
    # What was slow is said, once, in one plain line (stderr is not a terminal here).
    assert done.stderr.splitlines() == ["Preparing the models for first use (once, ~15 s)…"]
    again = subprocess.run([sys.executable, "-c", "from article_qa import cli; cli.main()", "ask", "Who is the Ukrainian president?",
                            "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and again.stderr == ""
    exports = sorted(p.parent.name.split("-")[0] for p in (tmp_path / "onnx").glob("*/model.onnx"))
    assert exports == ["encoder", "reader"]
    # What the tool made there it recorded making (its marker), so `cache clear` removes all of it.
    cleared = subprocess.run([sys.executable, "-c", "from article_qa import cli; cli.main()", "cache", "clear"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert cleared.returncode == 0, cleared.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".article-qa-cache"], cleared.stdout


# -- one line, never a traceback -----------------------------------------------------------------------


def test_more_bad_input_is_one_line_error(cli_env, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    questions = tmp_path / "q.txt"
    questions.write_text("Who is the president?\n", encoding="utf-8")
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps({"id": "1", "conversation": ["a"], "question": "Who?", "answers": []}) + "\n")
    cases = [
        (["ask", "Who?", "--model", "./no-such-folder"], "model folder not found: ./no-such-folder"),
        (["ask", "Who?", "--model", str(empty)], "is not a model folder"),
        (["ask", "Who?", "--model", "nosuch-owner/nosuch-model"], "cannot load model 'nosuch-owner/nosuch-model'"),
        (["batch", str(questions), "--resume", "-o", str(tmp_path)], "is a folder; --output needs a file"),
        (["batch", str(questions), "--format", "yaml"], "--format must be one of auto, jsonl, text"),
        (["eval", str(DATA / "seed_dev.squad.json"), "--limit", "1", "--chats", str(chats)],
         "conversation is not a string or a number"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no "cannot write the index" warning


HOSTILE = "notes\x1b]0;pwned\x07\u202etxt.md"  # a terminal title escape, then a right-to-left override


def test_file_names_are_echoed_with_their_escapes_made_visible(cli_env, tmp_path):
    article = tmp_path / HOSTILE
    article.write_text("The lighthouse on Gull Rock was built in 1882 by the Harbour Board.\n", encoding="utf-8")
    for result in (run("index", "--article", str(article)), run("batch", str(tmp_path / (HOSTILE + ".jsonl")))):
        shown = result.stdout + result.stderr
        assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
        assert "notes\\x1b]0;pwned\\x07\\u202etxt.md" in shown
    as_json = run("index", "--article", str(article), "--json")
    assert "\u202e" not in as_json.stdout and json.loads(as_json.stdout)["article"] == str(article)


def test_json_escapes_c1_controls_and_text_view_escapes_bidi_controls(cli_env, tmp_path):
    text = "The envoy \u202eKushner\u202c met them at the \x9b31mport\x85 of Antwerp on Monday.\n"
    article = tmp_path / "controls.txt"
    article.write_text(text, encoding="utf-8")
    result = run("ask", "Where did the envoy meet them?", "--article", str(article), "--json")
    assert result.exit_code == 0, result.output
    assert not any(c in result.stdout for c in "\x9b\x85\u202e\u202c")
    assert "\\u009b" in result.stdout and "\\u202e" in result.stdout
    passage = json.loads(result.stdout)["passages"][0]
    assert text[passage["start"] : passage["end"]] == passage["text"]  # the same text, escaped only on the wire
    plain = run("ask", "Where did the envoy meet them?", "--article", str(article))
    assert not any(c in plain.stdout for c in "\x9b\x85\u202e\u202c")
    assert "\\u202e" in plain.stdout and "\\x9b" in plain.stdout


def test_chat_banner_shows_a_hostile_file_name_escaped(cli_env, tmp_path):
    """The banner is printed only to a terminal: drive the chat in a pseudo-terminal."""
    import pty
    import select
    import subprocess
    import sys
    import time
    from pathlib import Path

    article = tmp_path / HOSTILE
    article.write_text("The lighthouse on Gull Rock was built in 1882 by the Harbour Board.\n", encoding="utf-8")
    leader, follower = pty.openpty()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", "from article_qa import cli; cli.main()", "chat", "--article", str(article)],
                            stdin=follower, stdout=follower, stderr=follower, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root), "TERM": "dumb"})
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while b"> " not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                seen += os.read(leader, 65536)
        os.write(leader, b":quit\n")
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    shown = seen.decode("utf-8", "replace")
    assert "article-qa chat" in shown, shown
    assert "notes\\x1b]0;pwned\\x07\\u202etxt.md" in shown
    assert "\x1b]0;pwned" not in shown and "\u202e" not in shown


def _chat_in_a_terminal(args: list[str], env: dict, lines: list[bytes]) -> str:
    import pty
    import select
    import subprocess
    import sys
    import time
    from pathlib import Path

    leader, follower = pty.openpty()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", "from article_qa import cli; cli.main()", "chat", *args],
                            stdin=follower, stdout=follower, stderr=follower, cwd=root,
                            env={**env, "PYTHONPATH": str(root), "TERM": "dumb"})
    os.close(follower)
    seen = b""
    try:
        for line in lines:
            deadline = time.monotonic() + 120
            while not seen.rstrip().endswith(b">") and time.monotonic() < deadline:
                if select.select([leader], [], [], 0.5)[0]:
                    seen += os.read(leader, 65536)
            os.write(leader, line)
            seen += b"\n"
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return seen.decode("utf-8", "replace")


def test_chat_history_follows_index_dir_and_is_never_written_through_a_link(cli_env, default_qa, tmp_path):
    """The history ignored --index-dir, and was written by readline through whatever link lay there."""
    import shutil

    other = tmp_path / "other-cache"
    shutil.copytree(cli_env, other, copy_function=os.link)  # the same index and exports, hard-linked
    (other / "chat_history").unlink(missing_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (other / "chat_history").symlink_to(victim)
    env = {**os.environ, "ARTICLE_QA_INDEX_DIR": str(cli_env)}
    default_history = cli_env / "chat_history"
    before = default_history.read_bytes() if default_history.exists() else None
    shown = _chat_in_a_terminal(["--index-dir", str(other)], env, [b":quit\n"])
    assert "article-qa chat" in shown, shown
    assert victim.read_text() == "precious\n"
    history = other / "chat_history"
    assert not history.is_symlink() and ":quit" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert (default_history.read_bytes() if default_history.exists() else None) == before


# -- issue #22, item 14 ------------------------------------------------------------------------------


@pytest.mark.slow
def test_indexing_a_new_article_with_the_export_made_never_imports_torch(cli_env, default_qa, tmp_path):
    """Every new article's index imported torch (+1.3 s, +160 MB) before seeing that the encoder's
    export was already there."""
    import subprocess
    import sys

    default_qa.ask("Where were the peace talks held?")  # both exports exist in the shared cache
    article = tmp_path / "new.md"
    article.write_text("# Orchards\n\nThe apple orchard in Kent was planted in 1921 by the Hale family.\n",
                       encoding="utf-8")
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules, file=sys.stderr))\n"
            "from article_qa import cli; cli.main()")
    done = subprocess.run([sys.executable, "-c", code, "index", "--article", str(article), "--json"],
                          capture_output=True, text=True, env={**os.environ, "ARTICLE_QA_INDEX_DIR": str(cli_env)},
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["action"] == "built"
    assert done.stderr.splitlines()[-1] == "torch imported: False"
