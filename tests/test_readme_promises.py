"""What README.md's "Using it" section and bad-input table promise, where no other test proved it:
the Python example, `--article -`, chat's meta-commands, offsets over a BOM + CRLF file, --encoding,
a damaged index noticed, said and rebuilt, an unwritable cache, and a 100 kB line answered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from article_qa.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()

NOTES = (
    "# Lighthouse notes\n\nThe lighthouse on Gull Rock was built in 1882 by the Harbour Board.\n\n"
    "Its lamp was electrified in 1931 and automated in 1986.\n"
)


def run(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def test_the_python_example_works_on_an_article_path(index_dir, tmp_path, monkeypatch):
    """README "From Python": `from article_qa import ArticleQA`, `ArticleQA.open("notes.md")`, `ask`,
    `hits`, `conversation`, `ask_many` + `to_dict`."""
    from article_qa import ArticleQA, Conversation

    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    qa = ArticleQA.open("notes.md", index_dir=index_dir)
    seen = NOTES.replace("# Lighthouse", "Lighthouse")  # Markdown is read as the text a person sees
    assert qa.article.text == seen
    answer = qa.ask("When was the lamp electrified?")
    assert "1931" in answer.text and seen[answer.start : answer.end] == answer.text
    assert 0.0 <= answer.score <= 1.0
    scores = [hit.score for hit in answer.hits]
    assert answer.hits and scores == sorted(scores, reverse=True)  # best first
    for hit in answer.hits:
        assert seen[hit.passage.start : hit.passage.end] == hit.passage.text
    assert isinstance(qa.conversation(), Conversation)
    questions = ["When was the lamp electrified?", "When was the lamp automated?"]
    dicts = [a.to_dict() for a in qa.ask_many(questions)]
    assert [d["question"] for d in dicts] == questions
    assert json.loads(json.dumps(dicts)) == dicts
    assert "1931" in dicts[0]["answer"]["text"] and "1986" in dicts[1]["answer"]["text"]


def test_article_from_stdin(cli_env):
    """README: `cat story.txt | article-qa ask "Who won?" --article -`."""
    result = run("ask", "When was the lamp electrified?", "--article", "-", "--json", input=NOTES.encode("utf-8"))
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)["answer"]
    assert "1931" in answer["text"]
    assert NOTES[answer["start"] : answer["end"]] == answer["text"]


def test_offsets_slice_the_text_of_a_bom_and_crlf_file(cli_env, tmp_path):
    """README: offsets count characters of the article as read, line ends kept as in the file, a
    leading UTF-8 byte-order mark dropped (bad-input table: "BOM, CRLF line ends")."""
    text = NOTES.replace("\n", "\r\n")
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = run("ask", "When was the lamp electrified?", "--article", str(path), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    answer = payload["answer"]
    assert "1931" in answer["text"]
    assert text[answer["start"] : answer["end"]] == answer["text"]
    assert text[: answer["start"]].count("\r\n") == 4  # the CRs before it are counted
    for passage in payload["passages"]:
        assert text[passage["start"] : passage["end"]] == passage["text"]


def test_encoding_option_reads_a_latin1_article(cli_env, tmp_path):
    """Bad-input table: text that is not UTF-8 is refused with a hint; `--encoding` reads it."""
    text = "Notes du phare.\n\nLe phare a été électrifié en 1931 par la Régie.\n"
    path = tmp_path / "phare.txt"
    path.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xe9")
    refused = run("ask", "When was the lighthouse electrified?", "--article", str(path))
    assert refused.exit_code == 2
    assert refused.stderr == (f"article-qa: error: {path} is not valid UTF-8 (byte 0xe9 at offset {offset}); "
                              "pass --encoding latin-1 or convert it\n")
    read = run("ask", "When was the lighthouse electrified?", "--article", str(path), "--encoding", "latin-1",
               "--json")
    assert read.exit_code == 0, read.output
    passages = json.loads(read.stdout)["passages"]
    assert passages and all(text[p["start"] : p["end"]] == p["text"] for p in passages)
    assert any("électrifié" in p["text"] for p in passages)


def test_chat_meta_commands(cli_env, monkeypatch):
    """README: `help`, `:sources` (show/hide passages), `:reset` (forget the conversation)."""
    import article_qa.qa.conversation as conversation

    history_sizes = []
    real_ask = conversation.Conversation.ask

    def recording(self, question):
        history_sizes.append(len(self.turns))
        return real_ask(self, question)

    monkeypatch.setattr(conversation.Conversation, "ask", recording)
    script = (":help\nWho announced that Ukraine is dropping its NATO bid?\n:sources\n"
              "How did he speak to journalists?\n:reset\nHow did he speak to journalists?\n")
    result = run("chat", input=script)
    assert result.exit_code == 0, result.output
    blocks = result.stdout.split("Q: ")[1:]
    assert len(blocks) == 3  # meta-commands are not questions
    assert "\nPassages\n[1] paragraph" not in blocks[0]  # passages hidden by default
    assert "\nPassages\n[1] paragraph" in blocks[1] and "\nPassages\n[1] paragraph" in blocks[2]  # :sources
    assert "WhatsApp" in blocks[1]
    assert history_sizes == [0, 1, 0]  # :reset forgot the first two turns
    assert "Commands" in result.stderr and ":reset" in result.stderr  # :help, on stderr without a terminal
    assert "passages shown" in result.stderr and "conversation forgotten" in result.stderr


def test_damaged_saved_index_is_noticed_said_and_rebuilt(cli_env, tmp_path):
    """Bad-input table: a saved index truncated or corrupted is noticed by checksum, said in one
    line, and rebuilt; answers go on."""
    article = tmp_path / "notes.md"
    article.write_text(NOTES + "\nThese notes are for the damaged-index test.\n", encoding="utf-8")
    built = json.loads(run("index", "--article", str(article), "--json").stdout)
    assert built["action"] == "built"
    (vectors,) = Path(built["path"]).glob("dense-*.faiss")
    vectors.write_bytes(vectors.read_bytes()[:-7])
    rebuilt = run("index", "--article", str(article))
    assert rebuilt.exit_code == 0, rebuilt.output
    said = rebuilt.stdout.splitlines()[0]
    assert said.startswith("rebuilt (") and "damaged" in said, said
    assert json.loads(run("index", "--article", str(article), "--json").stdout)["action"] == "reused"
    answer = json.loads(run("ask", "When was the lamp electrified?", "--article", str(article), "--json").stdout)
    assert "1931" in answer["answer"]["text"]


def test_one_100_kb_line_without_punctuation_is_answered(index_dir):
    """Bad-input table: "one 100 kB line with no punctuation: cut into overlapping windows at word
    pieces; read normally" (tests/test_passages.py checks the cutting; this, the reading). The
    confidence counts the article's length, so the span may come as the answer or as the best guess
    of a "Not sure". About 10 s: the whole line is embedded."""
    import random

    from article_qa.index.article import article_from_text
    from article_qa.qa.pipeline import ArticleQA

    rng = random.Random(7)
    words = ("harbour ship rope sail tide wind gull rock stone wave boat net fish crab shell sand cliff storm "
             "rain cloud sun moon star north south east west bay cove quay pier dock mast deck hull keel").split()
    filler = lambda n: " ".join(rng.choice(words) for _ in range(n))  # noqa: E731
    fact = "the first keeper of the lighthouse was a woman named Tobias Wren who served for forty years"
    before = filler(10_000)[:50_000]
    text = before + " " + fact + " " + filler(10_000)
    text = text[: 100_000]
    assert len(text) == 100_000 and "\n" not in text and fact in text
    assert not any(mark in text for mark in ".,;:!?")

    qa = ArticleQA.open(article_from_text(text), index_dir=index_dir)
    passages = qa.index.passages
    assert len(passages) > 100  # cut into windows, not one passage
    assert all(a.start < b.start < a.end for a, b in zip(passages, passages[1:]))  # overlapping
    answer = qa.ask("Who was the first keeper of the lighthouse?")
    found = answer if answer.answered else answer.best_guess
    assert found is not None and "Tobias Wren" in found.text
    assert text[found.start : found.end] == found.text


def test_a_cache_folder_that_cannot_be_written_warns_and_answers(cli_env, default_qa, tmp_path):
    """Bad-input table: "read-only or full cache folder: `warning: cannot write the index to …; using
    it from memory`, then answers". A file where the index folder would go makes the write fail (as
    root, permissions would not); the model exports are shared so no export is made again."""
    from article_qa.index.article import load_article
    from article_qa.index.store import index_key

    default_qa.ask("Where were the peace talks held?")  # the exports exist in the shared cache
    article = tmp_path / "notes.md"
    article.write_text(NOTES + "\nThese notes are for the unwritable-cache test.\n", encoding="utf-8")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "onnx").symlink_to(cli_env / "onnx", target_is_directory=True)
    blocked = cache / index_key(load_article(article), default_qa.index.embedder)
    blocked.write_text("not a folder")
    result = run("ask", "When was the lamp electrified?", "--article", str(article), "--index-dir", str(cache),
                 "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"article-qa: warning: cannot write the index to {blocked} (it is not a folder); using it from memory",
        "Indexing notes.md: 1 passage",  # what takes time is said (one line: stderr is not a terminal)
    ]
    answer = json.loads(result.stdout)["answer"]
    assert "1931" in answer["text"]
    assert blocked.read_text() == "not a folder"
