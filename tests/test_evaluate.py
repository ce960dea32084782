"""Tests for evaluation/run.py: `article-qa eval` scores exactly what the answering path answers.

The metrics themselves are checked by hand in test_squad_eval.py; here the real pipeline answers a
tiny SQuAD 2.0 file and conversations over an article of the test's own, and every number eval
reports is recomputed from the answers `ArticleQA` gives for the same questions.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from article_qa.evaluation.run import evaluate_chats, evaluate_file
from article_qa.evaluation.squad import Scoreboard, load_squad
from article_qa.index.article import article_from_text
from article_qa.qa.conversation import Turn, readings
from article_qa.qa.pipeline import ArticleQA

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.slow


def _expected(index_dir, threshold=None) -> dict:
    board = Scoreboard()
    for document in load_squad(DATA / "tiny_squad2.json"):
        qa = ArticleQA.open(article_from_text(document.text, document.title), index_dir=index_dir)
        decision = replace(qa.settings.decision, guess_floor=0.0)
        if threshold is not None:
            decision = replace(decision, answer_threshold=threshold)
        qa = qa.with_settings(decision=decision)
        for q in document.questions:
            answer = qa.ask(q.question)
            candidate = answer.text if answer.answered else (answer.best_guess.text if answer.best_guess else None)
            board.add(answer.text, q.answers, None, q.answer_spans, 0.0, candidate=candidate,
                      confidence=answer.score if candidate is not None else None)
    return board.summary()


@pytest.mark.parametrize("threshold", [None, 0.05])
def test_eval_scores_the_answers_the_pipeline_gives(index_dir, threshold):
    metrics = evaluate_file(DATA / "tiny_squad2.json", index_dir=index_dir, answer_threshold=threshold).metrics
    expected = _expected(index_dir, threshold)
    for key in ("exact", "f1", "HasAns_f1", "NoAns_exact", "ece", "answered", "answered_wrong",
                "abstained_answerable", "questions"):
        assert metrics[key] == expected[key], key
    assert metrics["questions"] == 11
    assert metrics["answered"] + metrics["abstained_answerable"] + (
        metrics["questions"] - metrics["answered"] - metrics["abstained_answerable"]) == 11
    assert 0.0 <= metrics["recall@1"] <= metrics["recall@3"] <= metrics["recall@5"] <= 1.0


def test_a_lower_threshold_answers_more(index_dir):
    strict = evaluate_file(DATA / "tiny_squad2.json", index_dir=index_dir, answer_threshold=0.95).metrics
    loose = evaluate_file(DATA / "tiny_squad2.json", index_dir=index_dir, answer_threshold=0.01).metrics
    assert loose["answered"] > strict["answered"]
    # Calibration is of the best candidate, given or not; only a question the strict threshold would
    # refuse is read again over more passages (and may keep a surer candidate), so the two barely differ.
    assert loose["ece"] == pytest.approx(strict["ece"], abs=0.01)


def test_chats_over_any_article_follow_the_conversation(index_dir, tmp_path):
    article = tmp_path / "match.txt"
    article.write_text("The Tigers won the final 3-1 against the Lions on Saturday in Leeds.\n\n"
                       "Their captain, Maria Lopez, scored twice before half time.\n", encoding="utf-8")
    chats = tmp_path / "chats.jsonl"
    turns = [
        {"id": "1", "conversation": "c", "question": "Who won the final?", "answers": ["The Tigers", "Tigers"]},
        {"id": "2", "conversation": "c", "question": "When?", "answers": ["Saturday", "on Saturday"]},
    ]
    chats.write_text("\n".join(json.dumps(t) for t in turns) + "\n", encoding="utf-8")
    notes: list[str] = []
    metrics = evaluate_chats(chats, article=article, index_dir=index_dir, notes=notes, answer_threshold=0.01)
    assert metrics["chat_turns"] == 2
    qa = ArticleQA.open(article, index_dir=index_dir)
    qa = qa.with_settings(decision=replace(qa.settings.decision, answer_threshold=0.01, guess_floor=0.0))
    chat = qa.conversation()
    answers = [chat.ask(t["question"]) for t in turns]
    # The second turn is read in the light of the first, as a chat reads it.
    first = Turn("Who won the final?", answers[0].text)
    options = [c.question for c in readings("When?", [first]) if c.question != "When?"]
    assert answers[1].read_as in options
    assert f"(read as {answers[1].read_as!r})" in notes[1], notes
    board = Scoreboard()
    for t, a in zip(turns, answers):
        board.add(a.text, t["answers"], None, [], 0.0, candidate=a.text, confidence=a.score)
    assert metrics["chat_f1"] == board.summary()["f1"]


def test_chat_lines_name_their_article_and_wrong_references_are_reported(index_dir, tmp_path):
    (tmp_path / "match.txt").write_text("The Tigers won the final 3-1 against the Lions on Saturday in Leeds.\n",
                                        encoding="utf-8")
    (tmp_path / "talks.txt").write_text("The peace talks were held in Brussels on Sunday.\n", encoding="utf-8")
    turns = [
        {"id": "m1", "conversation": "m", "article": "match.txt", "question": "Who won the final?",
         "answers": ["The Tigers"]},
        {"id": "t1", "conversation": "t", "article": "talks.txt", "question": "Where were the talks held?",
         "answers": ["Brussels"]},
        {"id": "t2", "conversation": "t", "article": "talks.txt", "question": "Who won?", "answers": ["The Lions"]},
    ]
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps(t) + "\n" for t in turns), encoding="utf-8")
    notes, details = [], []
    metrics = evaluate_chats(chats, index_dir=index_dir, notes=notes, answer_threshold=0.01, details=details)
    assert metrics["chat_turns"] == 3
    assert [d["id"] for d in details] == ["m1", "t1", "t2"]
    assert [Path(d["article"]).name for d in details] == ["match.txt", "talks.txt", "talks.txt"]
    assert details[1]["answer"] and "Brussels" in details[1]["answer"]  # answered from its own article
    assert notes[0].startswith("warning: the references of 1 of 3 turns are not in their article")


def test_details_give_one_line_per_question_that_agrees_with_the_metrics(index_dir):
    details: list[dict] = []
    metrics = evaluate_file(DATA / "tiny_squad2.json", index_dir=index_dir, details=details).metrics
    assert len(details) == metrics["questions"] == 11
    assert round(sum(d["f1"] for d in details) / len(details), 2) == metrics["f1"]
    assert sum(d["verdict"] == "answered" for d in details) == metrics["answered"]
    for d in details:
        assert set(d) >= {"question", "read_as", "verdict", "answer", "score", "references", "f1", "right"}
        assert (d["answer"] is None) == (d["verdict"] != "answered")
