"""Tests for qa.conversation: follow-up questions rewritten with what the last turn established."""

from __future__ import annotations

from qa.conversation import Contextual, Turn, contextualize, is_follow_up

WHO = Turn("Who announced that Ukraine is dropping its NATO bid?", "Volodymyr Zelensky")


def test_he_becomes_the_previous_answer_and_the_query_is_the_rewrite():
    c = contextualize("How did he speak to journalists?", [WHO])
    assert c.question == "How did Zelensky speak to journalists?"
    # The rewrite names the subject; adding the previous question would dilute the search.
    assert c.query == c.question


def test_possessive_his_becomes_possessive_name():
    c = contextualize("What did his speech say?", [WHO])
    assert c.question == "What did Zelensky's speech say?"
    assert "Zelensky's" in c.question
    assert " his " not in c.question


def test_capitalised_pronoun_at_start():
    c = contextualize("He spoke where?", [WHO])
    assert c.question == "Zelensky spoke where?"


def test_only_the_latest_turn_counts():
    history = [WHO, Turn("Who met him in Brussels?", "Emmanuel Macron")]
    c = contextualize("What did she say?", history)
    assert c.question == "What did Macron say?"
    assert "Volodymyr Zelensky" not in c.question and c.query == c.question


def test_no_history_leaves_question_unchanged():
    c = contextualize("How did he speak to journalists?", [])
    assert c == Contextual("How did he speak to journalists?", "How did he speak to journalists?")


def test_answer_that_is_not_a_name_keeps_the_pronoun():
    history = [Turn("How was the decision announced?", "in a video address")]
    c = contextualize("Why did he say that?", history)
    assert c.question == "Why did he say that?"
    assert "he" in c.question.split()
    # Retrieval still gets the previous turn's words.
    assert "How was the decision announced?" in c.query


def test_no_previous_answer_keeps_the_pronoun():
    c = contextualize("What did he say?", [Turn("Who spoke first?", None)])
    assert c.question == "What did he say?"
    assert c.query == "What did he say? Who spoke first?"


def test_question_without_follow_up_cues_is_unchanged():
    question = "Where were the peace talks held?"
    assert not is_follow_up(question)
    assert contextualize(question, [WHO]) == Contextual(question, question)


def test_words_containing_pronouns_are_not_pronouns():
    question = "Where did the shepherd theorise?"
    assert not is_follow_up(question)
    assert contextualize(question, [WHO]) == Contextual(question, question)


def test_follow_up_start_without_pronoun_changes_query_only():
    c = contextualize("And in Brussels?", [WHO])
    assert c.question == "And in Brussels?"
    assert c.query == f"And in Brussels? {WHO.question} {WHO.answer_text}"


def test_long_capitalised_answer_is_not_taken_for_a_name():
    history = [Turn("What was said?", "We Will Not Give Up Our Country Now")]
    assert contextualize("Who said it to him?", history).question == "Who said it to him?"
