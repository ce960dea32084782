"""Tests for qa.answer: answering or abstaining, exact slices, and the JSON shape."""

from __future__ import annotations

import json
import math

import pytest

from article_qa.index.passages import Passage
from article_qa.qa.answer import NO_ANSWER_TEXT, Answer, Candidate, Decision, decide, sigmoid
from article_qa.qa.reader import Span
from article_qa.qa.retrieve import Hit

ARTICLE = (
    "Ukraine news.\n\n"
    "The peace talks were held in Brussels, Belgium on Sunday.\n\n"
    "Volodymyr Zelensky announced that Ukraine is dropping its NATO bid."
)


def passage(index: int, text: str) -> Passage:
    start = ARTICLE.index(text)
    return Passage(index, start, start + len(text), text)


P0 = passage(0, "Ukraine news.")
P1 = passage(1, "The peace talks were held in Brussels, Belgium on Sunday.")
P2 = passage(2, "Volodymyr Zelensky announced that Ukraine is dropping its NATO bid.")
HITS = [Hit(P1, 0.9, 0.8, 3.0), Hit(P2, 0.4, 0.5, 0.7)]


def span_of(text: str, margin: float, p: Passage) -> Span:
    start = ARTICLE.index(text, p.start)
    return Span(start, start + len(text), margin, p)


BRUSSELS = span_of("Brussels", 2.0, P1)
ZELENSKY = span_of("Volodymyr Zelensky", 1.5, P2)


def test_answers_with_best_span_as_exact_slice():
    answer = decide("Where were the talks held?", ARTICLE, [ZELENSKY, BRUSSELS], HITS, Decision(null_threshold=1.0))
    assert answer.answered
    assert answer.text == "Brussels"
    assert answer.text == ARTICLE[answer.start : answer.end]
    assert (answer.start, answer.end) == (BRUSSELS.start, BRUSSELS.end)
    assert answer.score == pytest.approx(sigmoid(2.0 - 1.0))
    assert answer.hits == tuple(HITS)
    assert answer.question == "Where were the talks held?"


def test_abstains_when_best_margin_is_under_threshold():
    answer = decide("Who won the cup?", ARTICLE, [ZELENSKY, BRUSSELS], HITS, Decision(null_threshold=2.5))
    assert not answer.answered
    assert (answer.text, answer.start, answer.end) == (None, None, None)
    # The best span is still shown, as a guess, with its (lower than even) probability.
    assert answer.verdict == "not sure"
    assert answer.best_guess.text == "Brussels" == ARTICLE[answer.best_guess.start:answer.best_guess.end]
    assert answer.score == answer.best_guess.score == pytest.approx(sigmoid(2.0 - 2.5))
    assert answer.hits == tuple(HITS)
    assert answer.to_dict()["answer"] is None and answer.to_dict()["best_guess"]["text"] == "Brussels"


def test_an_unlikely_candidate_is_not_offered_as_a_guess():
    answer = decide("Who won the cup?", ARTICLE, [BRUSSELS], HITS, Decision(null_threshold=8.0))
    assert answer.verdict == "not in the article" and answer.best_guess is None
    assert answer.to_dict()["best_guess"] is None


def test_threshold_boundary_answers_at_equality():
    assert decide("q", ARTICLE, [BRUSSELS], HITS, Decision(null_threshold=2.0)).text == "Brussels"
    assert decide("q", ARTICLE, [BRUSSELS], HITS, Decision(null_threshold=2.0001)).text is None


def test_negative_margin_abstains_with_default_threshold():
    weak = span_of("Sunday", -0.3, P1)
    answer = decide("q", ARTICLE, [weak], HITS, Decision())
    assert answer.text is None
    assert answer.score == pytest.approx(sigmoid(-0.3))


def test_no_spans_abstains():
    answer = decide("q", ARTICLE, [], [], Decision())
    assert answer.text is None and answer.hits == ()
    assert answer.score == 0.0 and answer.best_guess is None


def test_trimming_keeps_an_exact_slice():
    # The reader's span runs from the comma before "Belgium" over the space after it.
    raw_start = ARTICLE.index(", Belgium on")
    raw = Span(raw_start, raw_start + len(", Belgium "), 3.0, P1)
    answer = decide("Which country?", ARTICLE, [raw], HITS, Decision())
    assert answer.text == "Belgium"
    assert ARTICLE[answer.start : answer.end] == "Belgium"
    assert answer.start == raw_start + 2 and answer.end == raw_start + 2 + len("Belgium")


def test_trimming_multiline_and_semicolons():
    article = "Intro;\n  Kyiv ,\n\nrest"
    raw = Span(5, 15, 1.0, Passage(0, 0, len(article), article))
    answer = decide("q", article, [raw], [], Decision())
    assert answer.text == "Kyiv"
    assert article[answer.start : answer.end] == "Kyiv"


def test_span_that_trims_to_nothing_is_not_an_empty_answer():
    comma = ARTICLE.index(", Belgium")
    only_punct = Span(comma, comma + 2, 5.0, P1)  # ", "
    answer = decide("q", ARTICLE, [only_punct, BRUSSELS], HITS, Decision())
    assert answer.text == "Brussels"
    alone = decide("q", ARTICLE, [only_punct], HITS, Decision())
    assert alone.text is None and alone.start is None


def test_retrieval_weight_changes_which_span_wins():
    hits = [Hit(P1, 0.1, 0.1, 0.0), Hit(P2, 0.9, 0.9, 1.0)]
    plain = decide("q", ARTICLE, [BRUSSELS, ZELENSKY], hits, Decision(retrieval_weight=0.0))
    assert plain.text == "Brussels"  # 2.0 > 1.5
    weighted = decide("q", ARTICLE, [BRUSSELS, ZELENSKY], hits, Decision(retrieval_weight=2.0))
    assert weighted.text == "Volodymyr Zelensky"  # 1.5 + 1.8 > 2.0 + 0.2
    assert weighted.score == pytest.approx(sigmoid(1.5 + 2.0 * 0.9))


def test_retrieval_weight_can_lift_a_span_over_the_threshold():
    decision = Decision(null_threshold=2.5, retrieval_weight=1.0)
    assert decide("q", ARTICLE, [BRUSSELS], HITS, decision).text == "Brussels"  # 2.0 + 0.9
    assert decide("q", ARTICLE, [BRUSSELS], [], decision).text is None  # no retrieval score


def test_to_dict_answered_shape():
    answer = decide("Where?", ARTICLE, [BRUSSELS], HITS, Decision())
    d = answer.to_dict()
    assert set(d) == {"question", "verdict", "answer", "best_guess", "confidence", "passages"}
    assert d["question"] == "Where?" and d["best_guess"] is None
    assert d["verdict"] == "answered" and d["confidence"] == "88%"  # sigmoid(2.0), as people see it
    assert d["answer"] == {
        "text": "Brussels",
        "start": BRUSSELS.start,
        "end": BRUSSELS.end,
        "score": round(sigmoid(2.0), 4),
    }
    assert d["passages"] == [
        {"text": P1.text, "start": P1.start, "end": P1.end, "score": 0.9},
        {"text": P2.text, "start": P2.start, "end": P2.end, "score": 0.4},
    ]
    for p in d["passages"]:
        assert ARTICLE[p["start"] : p["end"]] == p["text"]
    assert json.loads(json.dumps(d)) == d


def test_to_dict_unanswered_shape():
    answer = Answer("Who won?", None, None, None, 0.0, (Hit(P0, 0.123456, 0.1, 0.2),))
    d = answer.to_dict()
    assert d == {
        "question": "Who won?",
        "verdict": "not in the article",
        "answer": None,
        "best_guess": None,
        "confidence": None,
        "passages": [{"text": P0.text, "start": P0.start, "end": P0.end, "score": 0.1235}],
    }


def test_to_dict_says_the_verdict_and_the_confidence_as_shown():
    """The JSON carries what the terminal shows, so the CSV and the page do not work it out again:
    the verdict, and the probability as a percentage that never claims certainty."""
    guess = Candidate("Brussels", BRUSSELS.start, BRUSSELS.end, 0.28)
    d = Answer("Where?", None, None, None, 0.28, (), best_guess=guess).to_dict()
    assert d["verdict"] == "not sure" and d["confidence"] == "28%"
    sure = Answer("Where?", "Brussels", BRUSSELS.start, BRUSSELS.end, 0.999, ()).to_dict()
    assert sure["verdict"] == "answered" and sure["confidence"] == ">99%"


def test_to_dict_says_how_a_rewritten_follow_up_was_read():
    answer = Answer("When?", None, None, None, 0.0, (), read_as="When were the peace talks held?")
    assert answer.to_dict()["read_as"] == "When were the peace talks held?"
    assert "read_as" not in Answer("When?", None, None, None, 0.0, (), read_as="When?").to_dict()
    assert NO_ANSWER_TEXT == "The article does not say."


def test_unpaired_quotes_and_brackets_at_the_edges_are_trimmed():
    from article_qa.qa.answer import _trim

    text = 'leaders called the path “irreversible.” Then (in 2022) “a lot of progress was made” he said'
    start = text.index("“irreversible")
    s, e = _trim(text, start, start + len("“irreversible"))
    assert text[s:e] == "irreversible"
    quoted = text.index("“a lot")
    s, e = _trim(text, quoted, text.index("” he") + 1)
    assert text[s:e] == "“a lot of progress was made”"  # a quote that is whole stays
    s, e = _trim(text, text.index("in 2022"), text.index(") “a") + 1)
    assert text[s:e] == "in 2022"


def test_negated_and_qualified_questions_are_marked_when_the_answer_sentence_does_not_match():
    from article_qa.qa.confidence import _negation_unmatched, _qualifiers_unmatched

    sentence = "The first emperor, Charlemagne, was crowned in 800."
    assert _negation_unmatched("Who wasn't crowned in 800?", sentence) == 1.0
    assert _negation_unmatched("Who was crowned in 800?", sentence) == 0.0
    assert _negation_unmatched("Who was not crowned?", "Otto was not crowned.") == 0.0
    assert _qualifiers_unmatched("Who was the first emperor?", sentence) == 0.0
    assert _qualifiers_unmatched("Who was the last emperor?", sentence) == 1.0
    assert _qualifiers_unmatched("Who was the last and youngest emperor?", sentence) == 2.0


def test_article_size_grows_with_the_article_within_the_fitted_range():
    from article_qa.qa.confidence import ARTICLE_KCHARS_MAX, article_size

    assert article_size("x" * 10) == article_size("x" * 1000) == 0.0
    assert 0.0 < article_size("x" * 5000) < article_size("x" * 50_000)
    assert article_size("x" * 10_000_000) == pytest.approx(math.log(ARTICLE_KCHARS_MAX))


def test_the_same_span_is_less_sure_in_a_longer_article():
    """The shipped confidence counts the article's length: a span that reads the same way is more
    often a near miss among many passages that resemble the question."""
    from article_qa.qa.confidence import FEATURES, features
    from article_qa.qa.pipeline import default_decision

    calibrator = default_decision(None).calibrator
    assert calibrator is not None  # fitted on this version's features
    question = "Where were the peace talks held?"
    long_article = ARTICLE + "\n\n" + "Other news of the week, unrelated to the talks. " * 600
    short = features(question, ARTICLE, [BRUSSELS, ZELENSKY], 0, HITS)
    longer = features(question, long_article, [BRUSSELS, ZELENSKY], 0, HITS)
    differing = {name for name, a, b in zip(FEATURES, short, longer) if a != b}
    assert differing == {"article_size"}
    assert calibrator.probability(longer) < calibrator.probability(short)


HEADLINE_ARTICLE = (
    "Sailor Rescues Kitten From Storm Drain\n\n"
    "A retired sailor pulled two kittens out of a drain on Tuesday. Marta Olsen saw it happen.\n\n"
    "Kittens are often found there, the Harbor Police said."
)


@pytest.mark.parametrize("word, name", [
    ("Sailor", False),  # a headline in title case capitalises every word; the story writes "sailor"
    ("Rescues", True),  # capitalised by its place, but the story never writes it in lower case
    ("Marta", True),  # a sentence's first word that is a name
    ("Olsen", True),
    ("Kittens", False),  # a sentence's first word the story also writes in lower case
    ("Harbor", True),  # capitalised in the middle of a sentence
    ("retired", False),
])
def test_a_word_capitalised_only_by_its_place_is_not_a_name(word, name):
    from article_qa.qa.confidence import name_word

    at = HEADLINE_ARTICLE.index(word)
    assert name_word(HEADLINE_ARTICLE, at, word) is name


def test_a_headline_word_does_not_answer_who_as_a_name_does():
    """The answer-type feature: "who" asks for a name, and a headline's capitalised words are not one."""
    from article_qa.qa.confidence import FEATURES, features

    def type_match(text: str) -> float:
        p = Passage(0, 0, len(HEADLINE_ARTICLE), HEADLINE_ARTICLE)
        start = HEADLINE_ARTICLE.index(text)
        span = Span(start, start + len(text), 2.0, p)
        return features("Who pulled the kittens out?", HEADLINE_ARTICLE, [span], 0, [Hit(p, 0.9, 0.8, 3.0)])[
            FEATURES.index("type_match")]

    assert type_match("Sailor") == 0.0
    assert type_match("Marta Olsen") == 1.0
    assert type_match("retired sailor") == 0.0
    assert type_match("the Harbor Police") == 1.0


def test_a_qualifier_word_inside_a_name_or_as_the_verb_last_is_not_a_qualifier():
    from article_qa.qa.confidence import _qualifiers_unmatched, asked_qualifiers

    assert asked_qualifiers("How many seats are there in South Korea's parliament?") == set()
    assert asked_qualifiers("How long did Yoon's televised apology last?") == set()
    assert asked_qualifiers("Who was the last king of the North?") == {"last"}
    assert _qualifiers_unmatched("What does the First Amendment protect?", "It protects speech.") == 0.0
