"""A corpus from the command line, with the real models: answers name their article and slice it,
`--within` and a batch line's "article" limit a question to one article, `index` counts what
changed, and bad corpus input is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from article_qa.cli import app
from article_qa.index.article import default_article_path

runner = CliRunner()

LAMP = "Lamp History\n\nThe old harbour lamp was electrified in 1901 by the town council of Kirkwall.\n\n" \
       "It was painted red in 1950 and still burns every night.\n"
BRIDGE = "Bridge News\n\nThe new Tay bridge opened in March 2024 after ten years of work, said engineer Maria Lopez.\n"


def run(*args, input=None):
    return runner.invoke(app, list(args), input=input)


@pytest.fixture()
def news(tmp_path) -> Path:
    folder = tmp_path / "news"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(default_article_path(), folder / "ukraine.txt")
    (folder / "sub" / "lamp.md").write_text(LAMP)
    (folder / "bridge.txt").write_text(BRIDGE)
    return folder


def _texts(folder: Path) -> dict[str, str]:
    return {"ukraine.txt": (folder / "ukraine.txt").read_text(), "sub/lamp.md": LAMP, "bridge.txt": BRIDGE}


def test_ask_over_a_folder_names_the_article_and_its_offsets_slice_it(cli_env, news):
    result = run("ask", "When was the harbour lamp electrified?", "--article", str(news), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    answer = payload["answer"]
    assert answer["text"] == "1901"
    assert answer["article"] == {"id": "sub/lamp.md", "title": "Lamp History", "source": str(news / "sub" / "lamp.md")}
    texts = _texts(news)
    assert texts[answer["article"]["id"]][answer["start"]:answer["end"]] == "1901"
    for passage in payload["passages"]:
        assert texts[passage["article"]["id"]][passage["start"]:passage["end"]] == passage["text"]
    plain = run("ask", "When was the harbour lamp electrified?", "--article", str(news))
    assert plain.stdout.splitlines()[0].endswith("· Lamp History")


def test_within_limits_the_question_to_one_article(cli_env, news):
    args = ("ask", "Who is the U.S. envoy?", "--article", str(news), "--json")
    assert json.loads(run(*args).stdout)["answer"]["article"]["id"] == "ukraine.txt"
    limited = json.loads(run(*args, "--within", "bridge.txt").stdout)
    assert limited["answer"] is None or limited["answer"]["article"]["id"] == "bridge.txt"
    assert {p["article"]["id"] for p in limited["passages"]} == {"bridge.txt"}
    unknown = run(*args, "--within", "nope.txt")
    assert unknown.exit_code == 2 and "no article 'nope.txt' in the corpus" in unknown.output


def test_several_articles_and_a_batch_line_naming_its_article(cli_env, news, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "When did the Tay bridge open?"}\n'
        '{"id": "b", "question": "When did the Tay bridge open?", "article": "lamp.md"}\n'
        '{"id": "c", "question": "Who?", "article": "missing.txt"}\n')
    out = tmp_path / "answers.jsonl"
    result = run("batch", str(questions), "-o", str(out), "--article", str(news / "bridge.txt"),
                 "--article", str(news / "sub" / "lamp.md"))
    assert result.exit_code == 1, result.output  # line c failed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert records[0]["answer"]["text"] == "March 2024" and records[0]["answer"]["article"]["id"] == "bridge.txt"
    assert {p["article"]["id"] for p in records[1]["passages"]} == {"lamp.md"}
    assert "no article 'missing.txt' in the corpus" in records[2]["error"]


def test_index_counts_changes_and_names_an_unreadable_file(cli_env, news):
    first = run("index", "--article", str(news), "--json")
    assert first.exit_code == 0, first.output
    info = json.loads(first.stdout)
    assert (info["action"], info["articles"], info["added"]) == ("built", 3, 3)
    (news / "bridge.txt").write_text(BRIDGE + "\nThe bridge cost 90 million pounds.\n")
    (news / "broken.txt").write_bytes(b"caf\xe9")
    second = run("index", "--article", str(news))
    assert second.exit_code == 1
    assert "0 added, 1 changed, 0 removed, 2 unchanged, 1 skipped" in second.stdout
    assert "broken.txt is not valid UTF-8" in second.stderr and "skipped" in second.stderr
    (news / "broken.txt").unlink()
    (news / "sub" / "lamp.md").unlink()
    third = json.loads(run("index", "--article", str(news), "--json").stdout)
    assert (third["removed"], third["unchanged"], third["articles"]) == (1, 2, 2)


@pytest.mark.parametrize("kind", ["empty", "duplicate"])
def test_bad_corpus_is_one_line(cli_env, tmp_path, kind):
    if kind == "empty":
        (tmp_path / "empty").mkdir()
        args, message = ["--article", str(tmp_path / "empty")], "holds no articles"
    else:
        corpus = tmp_path / "c.jsonl"
        corpus.write_text('{"id": "x", "text": "One."}\n{"id": "x", "text": "Two."}\n')
        args, message = ["--article", str(corpus)], "line 2 has the id 'x' of line 1"
    result = run("ask", "Who?", *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_single_article_names_itself_and_keeps_its_output(cli_env, default_qa):
    payload = json.loads(run("ask", "Where were the peace talks held?", "--json").stdout)
    assert payload["answer"]["article"]["id"] == "default"
    assert payload["answer"]["article"]["source"] == "default article"
    assert list(payload) == ["question", "verdict", "answer", "best_guess", "confidence", "passages"]
    plain = run("ask", "Where were the peace talks held?").stdout.splitlines()[0]
    assert "·" not in plain  # one article: the answer line does not name it


def test_eval_corpus_searches_every_question_across_all_articles(cli_env, tmp_path):
    data = Path(__file__).with_name("data") / "tiny_squad2.json"
    details = tmp_path / "details.jsonl"
    result = run("eval", str(data), "--corpus", "--json", "--details", str(details))
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    squad = json.loads(data.read_text())
    titles = [a["title"] for a in squad["data"]]
    assert metrics["articles"] == len(titles) == 2
    assert metrics["questions"] == sum(len(p["qas"]) for a in squad["data"] for p in a["paragraphs"])
    assert 0 <= metrics["article_recall@1"] <= metrics["article_recall@3"] <= 1
    records = [json.loads(line) for line in details.read_text().splitlines()]
    assert {r["article"] for r in records} == set(titles)
    assert all(r["answer_article"] in (None, *titles) for r in records)
    per_article = json.loads(run("eval", str(data), "--json").stdout)
    assert "article_recall@1" not in per_article  # the per-article mode stays as it was
    refused = run("eval", str(data), "--corpus", "--article-id", titles[0])
    assert refused.exit_code == 2 and "--corpus" in refused.stderr


def test_chat_over_a_corpus_names_it_in_the_banner_and_answers(cli_env, news):
    result = run("chat", "--article", str(news), input="When did the Tay bridge open?\n")
    assert result.exit_code == 0, result.output
    assert "Answer: March 2024" in result.stdout and "· Bridge News" in result.stdout


def test_ask_and_batch_exit_1_when_an_article_of_the_corpus_was_skipped(cli_env, news, tmp_path):
    (news / "broken.txt").write_bytes(b"caf\xe9 au lait")
    asked = run("ask", "When did the Tay bridge open?", "--article", str(news), "--json")
    assert asked.exit_code == 1  # answered from the others, but not every article was read
    assert json.loads(asked.stdout)["answer"]["text"] == "March 2024"
    assert "broken.txt is not valid UTF-8" in asked.stderr and "skipped" in asked.stderr
    questions = tmp_path / "q.txt"
    questions.write_text("When did the Tay bridge open?\n")
    out = tmp_path / "answers.csv"
    batch = run("batch", str(questions), "-o", str(out), "--csv", "--article", str(news))
    assert batch.exit_code == 1
    assert "1 article of the corpus could not be read and was skipped" in batch.stderr
    (news / "broken.txt").unlink()
    assert run("ask", "When did the Tay bridge open?", "--article", str(news)).exit_code == 0


def test_batch_csv_names_the_article_of_each_answer(cli_env, news, tmp_path):
    import csv
    import io

    questions = tmp_path / "q.txt"
    questions.write_text("When did the Tay bridge open?\nWhen was the harbour lamp electrified?\n")
    out = tmp_path / "answers.csv"
    result = run("batch", str(questions), "-o", str(out), "--csv", "--article", str(news))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert [(r["answer"], r["article"]) for r in rows] == [("March 2024", "bridge.txt"), ("1901", "sub/lamp.md")]
    texts = _texts(news)
    assert all(texts[r["article"]][int(r["start"]):int(r["end"])] == r["answer"] for r in rows)


def test_eval_chats_over_a_corpus_asks_every_turn_across_it(cli_env, news, tmp_path):
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        '{"id": "1", "conversation": "c", "question": "When did the Tay bridge open?", "answers": ["March 2024"]}\n'
        '{"id": "2", "conversation": "c", "question": "Who said so?", "answers": ["Maria Lopez"]}\n'
        '{"id": "3", "conversation": "d", "question": "When was it electrified?", "answers": ["1901"],'
        ' "article": "sub/lamp.md"}\n')
    details = tmp_path / "details.jsonl"
    result = run("eval", "--chats", str(chats), "--article", str(news), "--json", "--details", str(details))
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["chat_turns"] == 3 and metrics["chat_exact"] > 0
    assert "are not in their article" not in result.stderr  # each reference is in the corpus
    records = [json.loads(line) for line in details.read_text().splitlines()]
    assert records[0]["article"] == str(news / "bridge.txt")  # the answer's own article
    assert records[2]["article"] == str(news / "sub" / "lamp.md")  # the line's "article" limited it
