"""Tests for training/calibrate.py: the calibration set, the logistic fit and the threshold choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from article_qa.qa.confidence import FEATURES, Calibrator
from training.calibrate import (
    best_threshold,
    calibration_documents,
    fit_logistic,
    outcomes,
    seen_by_init,
)
from training.examples import load_articles, question_items

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def articles():
    return load_articles(DATA / "train_sample.json")


def test_negatives_are_unanswerable_in_their_document(articles):
    documents = calibration_documents(articles, [0, 1], set(), seed=1, per_article=3)
    kinds = {q.kind for d in documents for q in d.questions}
    assert "answerable" in kinds and "answer sentence removed" in kinds
    for doc in documents:
        for q in doc.questions:
            if q.kind == "answerable":
                assert q.golds and any(g in doc.text for g in q.golds)
            else:
                assert q.golds == []
            if q.kind in ("answer sentence removed", "question from another article"):
                # Asked against this document, its own answer must be nowhere in it.
                original = next(it for it in question_items(articles) if it.qa["question"] == q.question)
                assert not any(a["text"].lower() in doc.text.lower() for a in original.qa["answers"])


def test_questions_an_earlier_reader_trained_on_are_not_used(articles):
    seen = seen_by_init(articles, [{"seed": 3, "position": 10, "held_out_articles": []}])
    assert len(seen) == 10
    documents = calibration_documents(articles, [0, 1], seen, seed=1, per_article=50)
    asked = {q.question for d in documents for q in d.questions if q.kind == "answerable"}
    seen_questions = {it.qa["question"] for it in question_items(articles) if str(it.qa["id"]) in seen}
    assert asked and not asked & seen_questions


def test_logistic_fit_recovers_a_known_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2)) * [2.0, 0.5] + [1.0, -3.0]
    true_w, true_b = np.array([1.5, -2.0]), 0.3
    z = ((x - x.mean(0)) / x.std(0)) @ true_w + true_b
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(float)
    means, scales, w, b = fit_logistic(x, y, l2=0.0)
    assert np.allclose(w, true_w, atol=0.15) and b == pytest.approx(true_b, abs=0.15)


def _row(golds, candidates):
    return {"document": "d", "kind": "k", "golds": golds, "candidates": candidates}


def _margin_only(weight: float = 1.0) -> Calibrator:
    """A calibrator that looks at the margin alone: p = sigmoid(weight * margin)."""
    n = len(FEATURES)
    return Calibrator(FEATURES, (0.0,) * n, (1.0,) * n, (weight,) + (0.0,) * (n - 1), 0.0)


def _features(margin: float) -> list[float]:
    return [margin] + [0.0] * (len(FEATURES) - 1)


def test_threshold_is_where_answering_stops_paying():
    # Right answers at margins 2 and 1; unanswerable questions whose candidates have margins
    # 0.5 and -1. Answering at p >= sigmoid(1) gets both right answers and refuses both others.
    rows = [
        _row(["a"], [(_features(2.0), True, "a")]),
        _row(["b"], [(_features(1.0), True, "b")]),
        _row([], [(_features(0.5), False, "c")]),
        _row([], [(_features(-1.0), False, "d")]),
    ]
    calibrator = _margin_only()
    threshold = best_threshold(rows, calibrator)
    assert 1 / (1 + np.exp(-0.5)) < threshold <= 1 / (1 + np.exp(-1.0))
    result = outcomes(rows, calibrator, threshold)
    assert result["f1"] == 100.0 and result["answered_wrong"] == 0 and result["abstained_answerable"] == 0


def test_outcomes_pick_the_most_likely_candidate():
    row = _row(["right"], [(_features(0.5), False, "wrong"), (_features(3.0), True, "right")])
    result = outcomes([row], _margin_only(), 0.5)
    assert result["HasAns_f1"] == 100.0


@pytest.mark.parametrize("question, expected", [
    ("What did Zelensky announce?", "What didn't Zelensky announce?"),
    ("Who was the first president of Kenya?", "Who wasn't the first president of Kenya?"),
    ("In what year did the war start?", "In what year didn't the war start?"),
    ("How many people were killed?", "How many people weren't killed?"),
    ("What is not allowed?", None),  # already negative
    ("Name the river that crosses Paris.", None),  # no auxiliary to negate
])
def test_negated_turns_the_auxiliary_negative(question, expected):
    from training.examples import negated

    assert negated(question) == expected


def test_antonym_swapped_uses_a_word_the_context_never_has():
    from training.examples import antonym_swapped

    context = "The first emperor was crowned in 800. The empire began to decline after 900."
    assert antonym_swapped("Who was the first emperor?", context) == "Who was the last emperor?"
    # "after" occurs in the context, so "before" is not used, and nothing else has an antonym.
    assert antonym_swapped("What happened before 900?", context) is None
    assert antonym_swapped("Did it increase or decrease?", context) is None


def test_adversarial_questions_are_their_own_document(articles):
    documents = calibration_documents(articles, [0, 1], set(), seed=1, per_article=3)
    adversarial = [d for d in documents if d.title.endswith("-adversarial")]
    assert len(adversarial) == 2
    kinds = {q.kind for d in adversarial for q in d.questions}
    assert kinds <= {"negation added", "antonym"} and kinds
    assert all(q.golds == [] for d in adversarial for q in d.questions)


def test_training_can_make_near_miss_negatives(articles):
    import random

    from training.examples import NEAR_MISS_KINDS, make_example

    items = question_items(articles)
    made = [make_example(articles, it, random.Random(n), negative_rate=1.0, kinds=NEAR_MISS_KINDS)
            for n, it in enumerate(items[:40])]
    near = [ex for ex in made if ex.kind in NEAR_MISS_KINDS]
    assert near and all(ex.answer_start == -1 and ex.answer_text == "" for ex in near)
    originals = {it.qa["question"] for it in items[:40]}
    assert all(ex.question not in originals for ex in near)  # the question itself was changed
    assert all(ex.question in originals for ex in made if ex.kind == "answerable")  # nothing could be made



def test_follow_up_turns_are_rows_of_the_reading_the_conversation_chooses(tmp_path):
    import json

    from article_qa.index.article import default_article_path
    from training.calibrate import CHAT_KIND, collect_chats

    (tmp_path / "story.txt").write_text(default_article_path().read_text(encoding="utf-8"), encoding="utf-8")
    turns = [("c1", "Where were the peace talks held?", ["Brussels, Belgium"]),
             ("c1", "When?", ["Sunday"]),
             ("c2", "Who won the football match?", [])]
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"id": f"{c}.{i}", "conversation": c, "article": "story.txt",
                                         "question": q, "answers": a}) + "\n"
                             for i, (c, q, a) in enumerate(turns)), encoding="utf-8")
    rows = collect_chats(chats, None, tmp_path / "index")
    assert [r["golds"] for r in rows] == [a for _, _, a in turns]
    assert {r["document"] for r in rows} == {"news:story"} and {r["kind"] for r in rows} == {CHAT_KIND}
    (features, right, text), = rows[1]["candidates"]
    assert len(features) == len(FEATURES)
    # "When?" is read as a question about the talks, so the reader finds their day.
    assert right and "Sunday" in text


def test_a_pool_sample_is_fixed_and_drawn_from_each_articles_own_questions():
    from training.calibrate import squad2_documents

    path = Path(__file__).parent / "data" / "tiny_squad2.json"
    whole = squad2_documents(path, None, "pool")
    sampled = squad2_documents(path, None, "pool", per_article=2)
    assert [d.title for d in sampled] == [d.title for d in whole]
    for full, few in zip(whole, sampled):
        assert len(few.questions) == min(2, len(full.questions))
        assert {q.question for q in few.questions} <= {q.question for q in full.questions}
    assert sampled == squad2_documents(path, None, "pool", per_article=2)
