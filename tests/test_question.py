"""Tests for qa.question: cleaning, keeping the question sentence of a long question, other languages."""

from __future__ import annotations

import warnings

import pytest

from article_qa.qa.question import clean_question, language_notice, shorten_question

# A long question (496 characters, one sentence): the beginning is all context.
LONG_QUESTION = (
    "I have been reading this long article about the war in Ukraine and the negotiations between the "
    "different parties, which involved a lot of diplomats from many countries, and there were also some "
    "statements from the American envoy and from the president himself about the NATO membership bid and "
    "about the security guarantees, and so I was wondering, since the article mentions several places and "
    "several dates and it was not entirely clear to me, in which city the peace talks were actually held?"
)


def words_fit(limit: int):
    return lambda text: len(text.split()) <= limit


def test_short_question_is_left_alone():
    question = "Where were the peace talks held?"
    assert shorten_question(question, words_fit(64)).text == question
    assert not shorten_question(question, words_fit(64)).shortened


def test_long_question_keeps_its_question_sentence_not_its_beginning():
    question = ("I read the whole article twice last night and took notes on every paragraph of it. "
                "Where were the peace talks held? Thanks a lot in advance for any help.")
    short = shorten_question(question, words_fit(10))
    assert short.shortened and short.text == "Where were the peace talks held?"
    assert short.text in question


def test_without_question_mark_the_sentence_that_asks_is_kept():
    question = "I read the whole article twice and took notes. Tell me more. Who is the envoy"
    assert shorten_question(question, words_fit(6)).text == "Who is the envoy"


def test_an_overlong_question_sentence_keeps_its_asking_clause():
    short = shorten_question(LONG_QUESTION, words_fit(30))
    assert short.shortened
    assert short.text == "in which city the peace talks were actually held?"
    assert LONG_QUESTION.endswith(short.text)


def test_an_overlong_sentence_without_clauses_keeps_its_end_at_a_word():
    question = " ".join(f"word{i}" for i in range(50)) + " held?"
    short = shorten_question(question, words_fit(8))
    assert short.text == " ".join(f"word{i}" for i in range(43, 50)) + " held?"


def test_shortened_question_always_fits_and_is_a_slice():
    for limit in range(1, 40):
        short = shorten_question(LONG_QUESTION, words_fit(limit))
        assert short.text in LONG_QUESTION
        assert len(short.text.split()) <= limit


@pytest.mark.parametrize("question, language", [
    ("Wo fanden die Friedensgespräche statt?", "German"),
    ("Wer ist der Präsident der Ukraine?", "German"),
    ("Où ont eu lieu les négociations de paix ?", "French"),
    ("Qui est le président de l'Ukraine ?", "French"),
    ("¿Dónde se celebraron las conversaciones de paz?", "Spanish"),
    ("Chi è il presidente dell'Ucraina?", "Italian"),
    ("Onde foram realizadas as negociações de paz?", "Portuguese"),
    ("Waar werden de vredesbesprekingen gehouden?", "Dutch"),
    ("和平谈判在哪里举行？", "Chinese"),
    ("平和交渉はどこで行われましたか？", "Japanese"),
    ("평화 회담은 어디에서 열렸습니까?", "Korean"),
    ("Где проходили мирные переговоры?", "Cyrillic"),
    ("أين عقدت محادثات السلام؟", "Arabic"),
])
def test_questions_in_other_languages_get_a_one_line_notice(question, language):
    notice = language_notice(question)
    assert notice is not None and language in notice
    assert "English" in notice and "\n" not in notice


@pytest.mark.parametrize("question", [
    "Where were the peace talks held?",
    "What did De Croo say in Brussels?",
    "What did the UN say about la Francophonie?",
    "Where is Zürich?",
    "Die Hard: who starred?",
    "Was the deal signed?",
    "Who is Volodymyr Zelensky's envoy in München?",
    "Did Le Monde report on the talks?",
    "Who said 'Ich bin ein Berliner'?",
    "How did he speak to journalists?",
    "Who is Зеленський?",
])
def test_english_questions_with_foreign_names_get_no_notice(question):
    assert language_notice(question) is None


def test_clean_question_removes_escapes_and_controls():
    assert clean_question("\x1b[31mWhere were\tthe talks\nheld?\x1b[0m\x07") == "Where were the talks held?"
    with pytest.raises(ValueError, match="empty question"):
        clean_question("\x1b[2J\x00 ")


def test_batch_input_uses_the_same_cleaning():
    import article_qa.batch.input as batch_input
    import article_qa.qa.question as question

    assert batch_input.clean_question is question.clean_question


@pytest.mark.slow
def test_pipeline_answers_a_long_question_from_its_question_sentence(default_qa):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = default_qa.ask(LONG_QUESTION)
    messages = [str(w.message) for w in caught]
    assert any("in which city the peace talks were actually held?" in m for m in messages), messages
    assert answer.answered and "Brussels" in answer.text
    assert default_qa.article.text[answer.start : answer.end] == answer.text
    assert answer.question == LONG_QUESTION


@pytest.mark.slow
def test_pipeline_says_when_a_question_is_not_english(default_qa):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        default_qa.ask("Wo fanden die Friedensgespräche statt?")
        default_qa.ask("Where were the peace talks held?")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "German" in messages[0]


def test_every_front_end_refuses_a_question_over_the_limit_the_same_way():
    """ask, batch and the web page (and chat: tests/test_chat.py) take questions through
    `clean_question`, so a 5,000-character question gets one message everywhere."""
    from typer.testing import CliRunner

    from article_qa.batch.input import BatchError, parse_line
    from article_qa.cli import app
    from article_qa.qa.question import MAX_QUESTION_CHARS
    from article_qa.web.service import RequestError, check_question

    message = "question is 5,000 characters; the limit is 2,000"
    question = "Where " + "x" * 4988 + " held?"
    assert len(question) == 5000 > MAX_QUESTION_CHARS
    with pytest.raises(ValueError, match=message):
        clean_question(question)
    assert clean_question("q" * MAX_QUESTION_CHARS) == "q" * MAX_QUESTION_CHARS

    result = CliRunner().invoke(app, ["ask", question])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"article-qa: error: {message}"

    assert parse_line(question.encode(), 1, "text") == BatchError(1, None, message)
    with pytest.raises(RequestError, match=message) as refused:
        check_question(question)
    assert refused.value.status == 422
