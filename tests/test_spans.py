"""Tests for qa.spans: the rules of English a candidate span is checked against."""

from __future__ import annotations

import pytest

from article_qa.index.passages import Passage
from article_qa.qa.answer import Decision, ordered_candidates
from article_qa.qa.reader import Span
from article_qa.qa.retrieve import Hit
from article_qa.qa.spans import clause_tense, extended_end, name_end, names_asked_unit, question_tense, quote_end, tense_agreement

TALKS = ("The announcement was made on Sunday during the talks. "
         "Talks are scheduled to continue on Monday, when both sides present proposals.")


@pytest.mark.parametrize("question, tense", [
    ("When will the talks continue?", "future"),
    ("When did the talks take place?", "past"),
    ("When was the museum founded?", "past"),
    ("When is the museum open?", None),
    ("When does the season start?", None),
])
def test_the_question_tense_is_its_auxiliary(question, tense):
    assert question_tense(question) == tense


def test_the_clause_tense_is_the_nearest_marking_word_before_the_time():
    assert clause_tense(TALKS, TALKS.index("Sunday")) == "past"
    assert clause_tense(TALKS, TALKS.index("Monday")) == "future"  # "scheduled" before "continue"
    assert clause_tense("It opens on Friday.", len("It opens on ")) is None


def test_a_clause_in_another_sentence_says_nothing_of_the_tense():
    text = "The show was cancelled. Friday is the day."
    assert clause_tense(text, text.index("Friday")) is None


def test_agreement_is_zero_when_either_tense_is_unknown():
    assert tense_agreement("When is it open?", TALKS, TALKS.index("Monday")) == 0
    assert tense_agreement("When will they continue?", TALKS, TALKS.index("Monday")) == 1
    assert tense_agreement("When will they continue?", TALKS, TALKS.index("Sunday")) == -1


def _spans(text: str, *marked: tuple[str, float]) -> tuple[list[Span], list[Hit]]:
    passage = Passage(0, 0, len(text), text)
    spans = [Span(text.index(t), text.index(t) + len(t), m, passage) for t, m in marked]
    return spans, [Hit(passage, 0.9, 0.8, 3.0)]


def test_a_when_question_takes_the_time_in_its_tense_among_close_candidates():
    spans, hits = _spans(TALKS, ("Sunday", 3.5), ("Monday", 1.0))
    first = ordered_candidates("When will the talks continue?", TALKS, spans, hits, Decision())[0]
    assert TALKS[first.start:first.end] == "Monday"
    first = ordered_candidates("When did the talks take place?", TALKS, spans, hits, Decision())[0]
    assert TALKS[first.start:first.end] == "Sunday"


def test_a_time_far_behind_the_best_is_not_chosen_for_its_tense():
    spans, hits = _spans(TALKS, ("Sunday", 8.0), ("Monday", 1.0))
    first = ordered_candidates("When will the talks continue?", TALKS, spans, hits, Decision())[0]
    assert TALKS[first.start:first.end] == "Sunday"


def _end_of(text: str, span: str, rule) -> str:
    start = text.index(span)
    return text[start:rule(text, start, start + len(span))]


@pytest.mark.parametrize("text, span, expected", [
    ("The study was led at Columbia University in New York.", "Columbia", "Columbia University"),
    ("Opposition leader Han Dong-hoon urged him to resign.", "Han", "Han Dong-hoon"),
    ("It was at Columbia University's institute.", "Columbia", "Columbia University"),  # no possessive
    ("They met in Brussels Sunday morning.", "Brussels", "Brussels"),  # a weekday is no part of a name
    ("Zelensky said so.", "Zelensky", "Zelensky"),
    ("He left Paris. Then he wrote.", "Paris.", "Paris."),  # a sentence's end is the name's
    ("the navy veteran Vanessa Hicks", "navy veteran", "navy veteran"),  # not a capitalised word
])
def test_a_name_cut_short_runs_on_over_the_capitalised_words_after_it(text, span, expected):
    assert _end_of(text, span, name_end) == expected


def test_a_headline_in_title_case_has_no_names_to_extend():
    text = "Veteran Wraps Baby in American Flag\n\nA photo."
    assert _end_of(text, "Veteran", name_end) == "Veteran"


def test_a_span_starting_inside_a_quotation_ends_with_it():
    text = "Witkoff said that “a lot of progress was made” in the talks, though he gave no details."
    start = text.index("a lot")
    assert text[start:quote_end(text, start, len(text) - 1)] == "a lot of progress was made"
    assert text[start:extended_end(text, start, len(text) - 1)] == "a lot of progress was made"


def test_a_term_in_quotes_is_part_of_a_longer_answer():
    text = 'It accuses Oculus of "misappropriating" trade secrets and copyright infringement.'
    start = text.index("misappropriating")
    assert quote_end(text, start, len(text) - 1) == len(text) - 1


@pytest.mark.parametrize("question, answer, states", [
    ("What time was martial law declared?", "around 10:30 p.m. Tuesday", 1),
    ("What time was martial law declared?", "Tuesday", 0),
    ("What year did the museum open?", "in 1912", 1),
    ("What year did the museum open?", "December", 0),
    ("When did the museum open?", "in 1912", 0),  # no grain asked
])
def test_the_grain_of_time_asked_for(question, answer, states):
    assert names_asked_unit(question, answer) == states


def test_what_time_takes_the_candidate_with_the_hour_among_close_ones():
    text = "Yoon declared martial law around 10:30 p.m. Tuesday in a televised address."
    spans, hits = _spans(text, ("Tuesday", 6.8), ("around 10:30 p.m. Tuesday", 6.7))
    first = ordered_candidates("What time was martial law declared?", text, spans, hits, Decision())[0]
    assert text[first.start:first.end] == "around 10:30 p.m. Tuesday"
