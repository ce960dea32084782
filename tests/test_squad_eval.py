"""Tests for evaluation.squad: official SQuAD v2 scoring, SQuAD/chat loading, Scoreboard metrics."""

import json
from pathlib import Path

import pytest

from article_qa.evaluation.squad import (
    EvalDocument,
    EvalQuestion,
    Scoreboard,
    best_scores,
    exact_score,
    f1_score,
    load_chats,
    load_squad,
    normalize_answer,
)

DATA = Path(__file__).parent / "data"
SEED = DATA / "seed_dev.squad.json"
SEED_CHATS = DATA / "seed_dev_chats.jsonl"
TINY = DATA / "tiny_squad2.json"


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("The  Cat!", "cat"),
        ("the cat", "cat"),
        ("A cat", "cat"),
        ("an apple, a pear and THE plum.", "apple pear and plum"),
        ("  Steve   Witkoff\n", "steve witkoff"),
        ("U.S.", "us"),
        ("Theatre", "theatre"),  # articles only as whole words
        ("anthem", "anthem"),
        ("“quoted”", "“quoted”"),  # only ASCII string.punctuation is removed, as officially
        ("", ""),
        ("the a an", ""),
    ],
)
def test_normalize_answer_official_examples(raw, expected):
    assert normalize_answer(raw) == expected


def test_exact_score():
    assert exact_score("The Cat!", "cat") == 1.0
    assert exact_score("cats", "cat") == 0.0
    assert exact_score("", "") == 1.0


# --------------------------------------------------------------------------- F1


def test_f1_partial_overlap_by_hand():
    # pred tokens [big, cat], gold [cat]: P = 1/2, R = 1, F1 = 2PR/(P+R) = 2/3
    assert f1_score("the big cat", "a cat") == pytest.approx(2 / 3)
    # pred [peace, talks, in, brussels], gold [brussels, belgium]: P = 1/4, R = 1/2, F1 = 1/3
    assert f1_score("peace talks in Brussels", "Brussels, Belgium") == pytest.approx(1 / 3)


def test_f1_counts_repeated_tokens_as_a_bag():
    # pred [cat, cat], gold [cat]: common 1, P = 1/2, R = 1 -> 2/3
    assert f1_score("cat cat", "cat") == pytest.approx(2 / 3)


def test_f1_no_overlap_and_identical():
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("The Cat", "cat.") == 1.0


def test_f1_empty_token_lists():
    assert f1_score("", "") == 1.0
    assert f1_score("the", "a") == 1.0  # both normalise to no tokens
    assert f1_score("", "cat") == 0.0
    assert f1_score("cat", "") == 0.0


# --------------------------------------------------------------------------- best_scores


def test_best_scores_takes_max_over_golds():
    exact, f1 = best_scores("the big cat", ["dog", "a cat", "big cat"])
    assert (exact, f1) == (1.0, 1.0)
    exact, f1 = best_scores("the big cat", ["dog", "a cat"])
    assert exact == 0.0
    assert f1 == pytest.approx(2 / 3)


def test_best_scores_unanswerable():
    assert best_scores(None, []) == (1.0, 1.0)
    assert best_scores("", []) == (1.0, 1.0)
    assert best_scores("The.", []) == (1.0, 1.0)  # normalises to empty
    assert best_scores("Paris", []) == (0.0, 0.0)


def test_best_scores_abstaining_on_answerable():
    assert best_scores(None, ["Brussels"]) == (0.0, 0.0)
    assert best_scores("", ["Brussels"]) == (0.0, 0.0)


def test_best_scores_golds_that_normalise_to_empty_are_dropped():
    # official script: such golds are ignored; if none remain the question is unanswerable
    assert best_scores("cat", ["the", "cat"]) == (1.0, 1.0)
    assert best_scores(None, ["a", "."]) == (1.0, 1.0)


# --------------------------------------------------------------------------- load_squad


def _all_spans_round_trip(docs):
    n = 0
    for doc in docs:
        for q in doc.questions:
            for start, end in q.answer_spans:
                assert doc.text[start:end] in q.answers, (q.id, start, end)
                n += 1
    return n


def test_load_seed_dev():
    docs = load_squad(SEED)
    assert len(docs) == 1
    doc = docs[0]
    assert isinstance(doc, EvalDocument)
    assert doc.title == "seed"
    assert len(doc.questions) == 12
    assert all(isinstance(q, EvalQuestion) for q in doc.questions)
    assert [q.id for q in doc.questions if not q.answers] == ["d11", "d12"]
    assert all(q.answer_spans == [] for q in doc.questions if not q.answers)
    # every answer text of an answerable question has a span here (offsets in the file are exact)
    for q in doc.questions:
        if q.answers:
            assert len(q.answer_spans) == len(q.answers)
    assert _all_spans_round_trip(docs) == 12
    d02 = next(q for q in doc.questions if q.id == "d02")
    assert d02.answers == ["Volodymyr Zelensky"]
    assert d02.answer_spans == [(36, 54)]


def test_load_tiny_offsets_and_paragraph_join():
    docs = load_squad(TINY)
    assert [d.title for d in docs] == ["Lighthouses", "Bees"]
    raw = json.loads(TINY.read_text(encoding="utf-8"))
    for doc, article in zip(docs, raw["data"]):
        contexts = [p["context"] for p in article["paragraphs"]]
        assert doc.text == "\n\n".join(contexts)
    assert _all_spans_round_trip(docs) == 8

    light = {q.id: q for q in docs[0].questions}
    first_len = len(raw["data"][0]["paragraphs"][0]["context"])
    assert first_len == 123
    # first paragraph: offsets unchanged
    assert light["t1"].answer_spans == [(91, 105)]
    # second paragraph: shifted by len(first context) + len("\n\n")
    assert light["t4"].answer_spans == [(123 + 2 + 86, 123 + 2 + 90)]
    assert docs[0].text[211:215] == "1982"
    assert light["t5"].answer_spans == [(221, 237)]
    assert docs[0].text[221:237] == "the last keepers"

    bees = {q.id: q for q in docs[1].questions}
    assert bees["b1"].answer_spans == [(23, 26)]
    assert bees["b2"].answer_spans == [(92 + 2 + 56, 92 + 2 + 61)]
    # third paragraph: shifted by both earlier contexts and two separators
    assert bees["b4"].answer_spans == [(92 + 2 + 95 + 2 + 40, 92 + 2 + 95 + 2 + 80)]


def test_load_tiny_duplicates_and_unanswerable():
    docs = load_squad(TINY)
    light = {q.id: q for q in docs[0].questions}
    # two annotators gave the same "1882" answer: kept once, alongside "in 1882"
    assert light["t2"].answers == ["1882", "in 1882"]
    assert light["t2"].answer_spans == [(118, 122), (115, 122)]
    # plausible_answers of unanswerable questions are ignored
    assert light["t3"].answers == [] and light["t3"].answer_spans == []
    assert light["t6"].answers == []
    unanswerable = [q.id for d in docs for q in d.questions if not q.answers]
    assert unanswerable == ["t3", "t6", "b3", "b5"]


def _write(tmp_path, obj, name="f.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj), encoding="utf-8")
    return p


def test_load_squad_realigns_to_nearest_occurrence_and_drops_absent(tmp_path):
    ctx0 = "Intro paragraph."
    ctx1 = "cat one. cat two. cat three."  # "cat" at 0, 9 and 18
    p = _write(tmp_path, {"data": [{"title": "x", "paragraphs": [
        {"context": ctx0, "qas": []},
        {"context": ctx1, "qas": [
            {"id": "q1", "question": "?", "answers": [
                {"text": "cat", "answer_start": 15},   # wrong: nearest occurrence is 18
                {"text": "cat", "answer_start": 9},    # right
                {"text": "dog", "answer_start": 0},    # absent: span dropped, text kept
            ]},
            {"id": "q2", "question": "?", "answers": [
                {"text": "three", "answer_start": 999},  # out of range: found by search
            ]},
        ]},
    ]}]})
    doc = load_squad(p)[0]
    shift = len(ctx0) + 2
    q1, q2 = doc.questions
    assert q1.answers == ["cat", "dog"]
    assert q1.answer_spans == [(shift + 18, shift + 21), (shift + 9, shift + 12)]
    assert q2.answer_spans == [(shift + 22, shift + 27)]
    assert _all_spans_round_trip([doc]) == 3


def test_load_squad_v1_and_unanswerable_variants(tmp_path):
    ctx = "Paris is the capital of France."
    p = _write(tmp_path, {"version": "1.1", "data": [{"title": "v1", "paragraphs": [
        {"context": ctx, "qas": [
            {"id": 7, "question": "Capital?", "answers": [{"text": "Paris", "answer_start": 0}]},
            {"id": "n1", "question": "Pop?", "answers": []},
            {"id": "n2", "question": "Area?", "is_impossible": True, "answers": [],
             "plausible_answers": [{"text": "France", "answer_start": 24}]},
        ]},
    ]}]})
    doc = load_squad(p)[0]
    assert doc.text == ctx
    q7, n1, n2 = doc.questions
    assert q7.id == "7" and q7.answers == ["Paris"] and q7.answer_spans == [(0, 5)]
    assert n1.answers == [] and n2.answers == [] and n2.answer_spans == []


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2, 3]",
        '{"version": "v2.0"}',
        '{"data": [{"title": "x"}]}',
        '{"data": [{"paragraphs": [{"qas": []}]}]}',
        '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q"}]}]}]}',
        '{"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q?"}]}]}]}',
        '{"data": [{"paragraphs": [{"context": "c", "qas": '
        '[{"id": "q", "question": "?", "answers": [{"text": "c"}]}]}]}]}',
        '{"data": [{"paragraphs": [{"context": "c", "qas": '
        '[{"id": "q", "question": "?", "answers": "c"}]}]}]}',
        "not json at all\n{",
    ],
)
def test_load_squad_rejects_non_squad_files(tmp_path, content):
    p = tmp_path / "bad.json"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_squad(p)
    message = str(info.value)
    assert message and "\n" not in message


def test_load_squad_rejects_chats_file():
    with pytest.raises(ValueError):
        load_squad(SEED_CHATS)


# --------------------------------------------------------------------------- load_chats


def test_load_chats_seed():
    chats = load_chats(SEED_CHATS)
    assert [c["id"] for c in chats] == ["dc1.1", "dc1.2"]
    assert all(c["conversation"] == "dc1" for c in chats)
    assert chats[1]["question"] == "How did he speak to journalists?"
    assert chats[1]["answers"] == ["via WhatsApp", "WhatsApp"]


def test_load_chats_skips_blank_lines_and_rejects_bad_lines(tmp_path):
    good = {"id": "a", "conversation": "c", "question": "q?", "answers": []}
    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps(good) + "\n\n", encoding="utf-8")
    assert load_chats(p) == [good]

    for bad in ('{"id": "a", "question": "q?", "answers": []}',
                '{"id": "a", "conversation": "c", "question": "q?", "answers": "x"}',
                '{"id": "a", "conversation": ["c"], "question": "q?", "answers": []}',  # was a TypeError later
                '{"id": {"x": 1}, "conversation": "c", "question": "q?", "answers": []}',
                "[1]", "{oops"):
        p.write_text(json.dumps(good) + "\n" + bad + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=":2:"):
            load_chats(p)


# --------------------------------------------------------------------------- Scoreboard


SUMMARY_KEYS = {
    "exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact",
    "recall@1", "recall@3", "recall@5", "questions", "seconds", "median_seconds_per_question",
    "ece", "answered", "answered_wrong", "abstained_answerable",
}


def test_scoreboard_summary_hand_made():
    board = Scoreboard()
    # 1. exact hit; gold span covered by the 2nd retrieved passage
    board.add("James Douglass", ["James Douglass"], [(0, 50), (80, 130)], [(91, 105)], 0.5)
    # 2. partial (F1 2/3); covered by the 1st passage (edges inclusive)
    board.add("the big cat", ["a cat"], [(3, 6), (0, 100)], [(3, 6)], 1.25)
    # 3. wrong answer; covered only by the 5th passage
    board.add("Monday", ["Tuesday"],
              [(0, 10), (20, 30), (40, 50), (60, 70), (80, 90)], [(85, 88)], 0.1)
    # 4. abstained on answerable; passage overlaps the gold span but does not cover it: a miss
    board.add(None, ["Brussels"], [(0, 100), (200, 300)], [(95, 105)], 2.0)
    # 5. right abstention; unanswerable questions never count for recall
    board.add(None, [], [(0, 10)], [], 0.3)
    # 6. answered an unanswerable question
    board.add("Paris", [], [(0, 10)], [], 0.7)
    # 7. answerable whose span was dropped by the loader: scored, not in recall
    board.add("in 1882", ["1882", "in 1882"], [(0, 10)], [], 1.0)
    # 8. answerable, retrieval not measured (None): scored, not in recall
    board.add("x", ["y"], None, [(0, 1)], 0.15)

    s = board.summary()
    assert set(s) == SUMMARY_KEYS
    # exact per question: 1,0,0,0,1,0,1,0 -> 3/8
    assert s["exact"] == 37.5
    # f1: 1 + 2/3 + 0 + 0 + 1 + 0 + 1 + 0 = 11/3 over 8 -> 45.833...
    assert s["f1"] == 45.83
    # answerable: 1,2,3,4,7,8 -> exact 2/6, f1 (8/3)/6
    assert s["HasAns_exact"] == 33.33
    assert s["HasAns_f1"] == 44.44
    # unanswerable: 5,6 -> 1/2
    assert s["NoAns_exact"] == 50.0
    # recall over questions 1-4: first hits at ranks 2, 1, 5, miss
    assert s["recall@1"] == 0.25
    assert s["recall@3"] == 0.5
    assert s["recall@5"] == 0.75
    assert s["questions"] == 8
    assert s["seconds"] == 6.0
    # sorted: 0.1 0.15 0.3 0.5 | 0.7 1.0 1.25 2.0 -> (0.5 + 0.7) / 2
    assert s["median_seconds_per_question"] == 0.6
    # answered: 1,2,3,6,7,8; wrong (F1 < 0.5 or unanswerable): 3, 6, 8; refused answerable: 4
    assert (s["answered"], s["answered_wrong"], s["abstained_answerable"]) == (6, 3, 1)
    assert s["ece"] is None  # no confidences given


def test_scoreboard_rounding():
    board = Scoreboard()
    for i in range(3):
        board.add("x y", ["x z"] if i else ["x y"], [(0, 5)], [(10, 20)] if i else [(1, 2)],
                  0.123456)
    s = board.summary()
    # f1 "x y" vs "x y" = 1; "x y" vs "x z" = 1/2 twice -> 2/3 -> 66.67
    assert s["f1"] == 66.67 and s["exact"] == 33.33
    assert s["recall@1"] == 0.333
    assert s["seconds"] == 0.37
    assert s["median_seconds_per_question"] == 0.1235


def test_scoreboard_empty_subsets_are_none():
    board = Scoreboard()
    board.add("cat", ["cat"], None, [(0, 3)], 1.0)
    board.add("dog", ["cat"], None, [(0, 3)], 3.0)
    s = board.summary()
    assert s["exact"] == 50.0 and s["HasAns_exact"] == 50.0 and s["HasAns_f1"] == 50.0
    assert s["NoAns_exact"] is None
    assert s["recall@1"] is None and s["recall@3"] is None and s["recall@5"] is None
    assert s["median_seconds_per_question"] == 2.0

    only_unanswerable = Scoreboard()
    only_unanswerable.add(None, [], [(0, 3)], [], 0.25)
    s = only_unanswerable.summary()
    assert s["HasAns_exact"] is None and s["HasAns_f1"] is None
    assert s["NoAns_exact"] == 100.0 and s["exact"] == 100.0 and s["f1"] == 100.0
    assert s["recall@5"] is None


def test_scoreboard_no_questions():
    s = Scoreboard().summary()
    assert set(s) == SUMMARY_KEYS
    assert s["questions"] == 0 and s["seconds"] == 0.0
    for key in SUMMARY_KEYS - {"questions", "seconds", "answered", "answered_wrong", "abstained_answerable"}:
        assert s[key] is None, key
    assert s["answered"] == s["answered_wrong"] == s["abstained_answerable"] == 0


def test_scoreboard_instances_do_not_share_state():
    a, b = Scoreboard(), Scoreboard()
    a.add("x", ["x"], None, [], 1.0)
    assert b.summary()["questions"] == 0


def test_calibration_error_by_hand():
    from article_qa.evaluation.squad import calibration_error

    # Bin [0.9, 1.0]: mean p 0.95, 1 of 2 right -> gap 0.45, weight 2/4.
    # Bin [0.2, 0.3): p 0.2, right -> gap 0.8, weight 1/4. Bin [0.6, 0.7): p 0.6, wrong -> 0.6, 1/4.
    ece = calibration_error([0.9, 1.0, 0.2, 0.6], [True, False, True, False])
    assert ece == pytest.approx(0.45 * 2 / 4 + 0.8 / 4 + 0.6 / 4)
    assert calibration_error([0.3] * 10, [True] * 3 + [False] * 7) == pytest.approx(0.0)
    assert calibration_error([], []) is None


def test_scoreboard_ece_uses_the_best_candidate_even_when_not_given():
    board = Scoreboard()
    board.add("Brussels", ["Brussels"], None, [], 0.1, candidate="Brussels", confidence=0.8)  # right
    board.add(None, ["Sunday"], None, [], 0.1, candidate="Sunday", confidence=0.4)  # refused, but right
    board.add(None, [], None, [], 0.1, candidate="Paris", confidence=0.3)  # unanswerable: never right
    board.add(None, [], None, [], 0.1)  # no candidate at all: not in the ECE
    s = board.summary()
    # bins: 0.8 right (gap 0.2), 0.4 right (gap 0.6), 0.3 wrong (gap 0.3): mean 1.1 / 3
    assert s["ece"] == round(1.1 / 3, 4)
    assert (s["answered"], s["answered_wrong"], s["abstained_answerable"]) == (1, 0, 1)


def test_is_right_takes_half_f1_and_never_on_unanswerable():
    from article_qa.evaluation.squad import is_right

    assert is_right("the Brussels talks", ["Brussels talks"])
    assert is_right("in Brussels, Belgium", ["Brussels"])  # F1 exactly 0.5: right
    assert not is_right("talks in Brussels, Belgium, on Sunday", ["Brussels"])  # F1 2/7
    assert not is_right("Paris", [])
    assert not is_right(None, ["Brussels"])


@pytest.mark.parametrize("prediction, golds, right", [
    ("$144 million", ["$15 million"], False),  # F1 0.5 through "million", but another amount
    ("$4.8 billion", ["$4.8 billion", "4.8 billion dollars"], True),
    ("March 18", ["March 18, 2015"], True),  # part of the date the reference gives
    ("March 19, 2015", ["March 18, 2015"], False),
    ("eight", ["eight votes"], True),
    ("8 votes", ["eight votes"], True),  # a digit and a number word are one number
    ("4,800", ["4800"], True),
    ("the year 22", ["Hori Parata"], False),
    ("on Wednesday", ["Wednesday"], True),
])
def test_a_right_answer_states_the_reference_numbers(prediction, golds, right):
    from article_qa.evaluation.squad import is_right

    assert is_right(prediction, golds) is right


def test_answered_wrong_counts_a_wrong_amount():
    board = Scoreboard()
    board.add("$144 million", ["$15 million"], None, [], 0.0, candidate="$144 million", confidence=0.8)
    summary = board.summary()
    assert summary["f1"] == 50.0  # SQuAD's own F1 is kept as it is
    assert summary["answered_wrong"] == 1


# --------------------------------------------------------------------------- issue #22, item 9


def _eval(tmp_path, *args):
    import os
    import subprocess
    import sys

    env = {**os.environ, "ARTICLE_QA_INDEX_DIR": str(tmp_path / "cache")}  # nothing may be indexed first
    return subprocess.run([sys.executable, "-c", "from article_qa import cli; cli.main()", "eval", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_eval_on_deeply_nested_json_is_one_line(tmp_path):
    """A SQuAD file or a chats line nested 100,000 deep ended in a RecursionError traceback."""
    deep = "[" * 100_000 + "]" * 100_000
    squad = tmp_path / "deep.json"
    squad.write_text(deep, encoding="utf-8")
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps({"id": "1", "conversation": "c", "question": "Who?", "answers": []}) + "\n"
                     + deep + "\n", encoding="utf-8")
    for args, line in (([str(squad)], f"{squad}: not JSON (nested too deeply)"),
                       (["--chats", str(chats)], f"{chats}:2: not JSON (nested too deeply)")):
        done = _eval(tmp_path, *args)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.splitlines() == [f"article-qa: error: {line}"]
    assert not (tmp_path / "cache").exists()  # refused before any model or index
