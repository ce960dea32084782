"""The real pipeline on the default article: retrieval, reading, offsets and follow-ups."""

from __future__ import annotations

import json

import pytest

from article_qa.evaluation.squad import best_scores, load_chats, load_squad
from article_qa.terminal.render import MARK_CLOSE, MARK_OPEN, View, answer_lines, plain_text

from conftest import DATA

pytestmark = pytest.mark.slow


def test_brussels_answer_is_an_exact_highlighted_span(default_qa):
    answer = default_qa.ask("Where were the peace talks held?")
    article = default_qa.article.text
    assert answer.answered
    assert "Brussels" in answer.text
    assert article[answer.start : answer.end] == answer.text
    shown = plain_text(answer_lines(answer, article, View(sources=True)))
    assert shown.count(f"{MARK_OPEN}{answer.text}{MARK_CLOSE}") == 2  # in its sentence and in its passage
    for hit in answer.hits:
        assert article[hit.passage.start : hit.passage.end] == hit.passage.text


def test_passages_are_ranked_and_sliced(default_qa):
    answer = default_qa.with_settings(k=5).ask("What did Moscow consistently demand?")
    scores = [h.score for h in answer.hits]
    assert len(answer.hits) == 5
    assert scores == sorted(scores, reverse=True)
    article = default_qa.article.text
    assert len({h.passage.index for h in answer.hits}) == 5
    for hit in answer.hits:
        assert hit.passage.text and article[hit.passage.start : hit.passage.end] == hit.passage.text


@pytest.mark.parametrize(
    "question_id",
    [
        "Who is the Ukrainian president?",
        "When do both sides present updated proposals?",
        "In which city did Witkoff have meetings?",
        "What kind of guarantees would NATO membership have provided?",
    ],
)
def test_seed_questions_are_answered(default_qa, question_id):
    (document,) = load_squad(DATA / "seed_dev.squad.json")
    question = next(q for q in document.questions if q.question == question_id)
    answer = default_qa.ask(question.question)
    exact, f1 = best_scores(answer.text, question.answers)
    assert f1 >= 0.5, (question.question, answer.text, question.answers)
    assert default_qa.article.text[answer.start : answer.end] == answer.text


def test_batch_of_questions_matches_single_questions(default_qa):
    questions = ["Where were the peace talks held?", "Who is the Ukrainian president?", "What does the US sell to NATO allies?"]
    together = default_qa.ask_many(questions)
    alone = [default_qa.ask(q) for q in questions]
    assert [a.question for a in together] == questions
    assert [(a.text, a.start) for a in together] == [(a.text, a.start) for a in alone]


def test_follow_up_is_read_in_context(default_qa):
    conversation = default_qa.conversation()
    turns = load_chats(DATA / "seed_dev_chats.jsonl")
    answers = [conversation.ask(t["question"]) for t in turns]
    for turn, answer in zip(turns, answers):
        assert best_scores(answer.text, turn["answers"])[1] >= 0.5, (turn["question"], answer.text)


def test_answer_json_offsets_slice_article(default_qa):
    payload = json.loads(json.dumps(default_qa.ask("Who are the intermediaries in the talks?").to_dict()))
    text = default_qa.article.text
    # The article names them: the span is given as the answer, or (below even odds) as the guess.
    assert (payload["answer"] is None) != (payload["best_guess"] is None)
    a = payload["answer"] or payload["best_guess"]
    assert "Merz" in a["text"] and 0.0 < a["score"] <= 1.0
    assert text[a["start"] : a["end"]] == a["text"]
    assert len(payload["passages"]) == 3
    for p in payload["passages"]:
        assert text[p["start"] : p["end"]] == p["text"]
