"""Tests for qa.conversation: follow-up questions rewritten with what the last turn established."""

from __future__ import annotations

import pytest

from article_qa.qa.conversation import Contextual, Turn, is_follow_up, readings


def first_reading(question: str, history: list[Turn]) -> Contextual:
    """The most plausible reading, the one listed first."""
    return readings(question, history)[0]

WHO = Turn("Who announced that Ukraine is dropping its NATO bid?", "Volodymyr Zelensky")


def test_he_becomes_the_previous_answer_and_the_query_is_the_rewrite():
    c = first_reading("How did he speak to journalists?", [WHO])
    assert c.question == "How did Zelensky speak to journalists?"
    # The rewrite names the subject; adding the previous question would dilute the search.
    assert c.query == c.question


def test_possessive_his_becomes_possessive_name():
    c = first_reading("What did his speech say?", [WHO])
    assert c.question == "What did Zelensky's speech say?"
    assert "Zelensky's" in c.question
    assert " his " not in c.question


def test_capitalised_pronoun_at_start():
    c = first_reading("He spoke where?", [WHO])
    assert c.question == "Zelensky spoke where?"


def test_only_the_latest_turn_counts():
    history = [WHO, Turn("Who met him in Brussels?", "Emmanuel Macron")]
    c = first_reading("What did she say?", history)
    assert c.question == "What did Macron say?"
    assert "Volodymyr Zelensky" not in c.question and c.query == c.question


def test_no_history_leaves_question_unchanged():
    c = first_reading("How did he speak to journalists?", [])
    assert c == Contextual("How did he speak to journalists?", "How did he speak to journalists?")


def test_answer_that_is_not_a_name_keeps_the_pronoun():
    history = [Turn("How was the decision announced?", "in a video address")]
    c = first_reading("Why did he say that?", history)
    assert c.question == "Why did he say that?"
    assert "he" in c.question.split()
    # Retrieval still gets the previous turn's words.
    assert "How was the decision announced?" in c.query


def test_no_previous_answer_keeps_the_pronoun():
    c = first_reading("What did he say?", [Turn("Who spoke first?", None)])
    assert c.question == "What did he say?"
    assert c.query == "What did he say? Who spoke first?"


def test_question_without_follow_up_cues_is_unchanged():
    question = "Where were the peace talks held?"
    assert not is_follow_up(question)
    assert first_reading(question, [WHO]) == Contextual(question, question)


def test_words_containing_pronouns_are_not_pronouns():
    question = "Where did the shepherd theorise?"
    assert not is_follow_up(question)
    assert first_reading(question, [WHO]) == Contextual(question, question)


def test_they_standing_for_one_thing_takes_a_singular_auxiliary():
    attempt = Turn("Why did the attempt to impeach Yoon fail?", "his short-lived declaration of martial law")
    assert first_reading("How many votes were they short?", [attempt]).question == "How many votes was the attempt short?"
    museum = Turn("What did the museum close?", "its galleries")
    options = [r.question for r in readings("Are they still open?", [museum])]
    assert options[:2] == ["Are its galleries still open?", "Is the museum still open?"]
    talks = Turn("Where were the peace talks held?", "Brussels")
    assert first_reading("Were they a success?", [talks]).question == "Were the peace talks a success?"


def test_a_bare_that_or_this_points_back_and_is_searched_with_the_previous_turn():
    # "Who decided that?" names nothing: it is read as asked, and searched with what the last turn
    # was about. A conjunction or a determiner "that" names its own thing.
    flag = Turn("Are there penalties for burning the flag?", "there are no rules for punishment")
    for question in ("Who decided that?", "Why did he say this?", "When did this happen?"):
        assert is_follow_up(question)
        assert first_reading(question, [flag]) == Contextual(
            question, f"{question} Are there penalties for burning the flag? there are no rules for punishment")
    for question in ("Who said that the talks failed?", "Who negotiated that deal?", "Is this the first time?"):
        assert not is_follow_up(question)
        assert first_reading(question, [flag]) == Contextual(question, question)


def test_and_with_a_phrase_takes_the_previous_question_frame():
    # The previous question word was its subject: the phrase is added to its predicate.
    assert first_reading("And in Brussels?", [WHO]).question == "Who announced that Ukraine is dropping its NATO bid in Brussels?"
    envoy = Turn("Who is the U.S. envoy?", "Steve Witkoff")
    assert first_reading("And the German chancellor?", [envoy]).question == "Who is the German chancellor?"
    assert first_reading("What about the German chancellor?", [envoy]).question == "Who is the German chancellor?"


def test_a_bare_question_word_takes_the_previous_predicate():
    talks = Turn("Where were the peace talks held?", "Brussels, Belgium")
    assert [r.question for r in readings("When?", [talks])][1] == "When were the peace talks held?"
    assert first_reading("And why?", [talks]).question == "Why were the peace talks held in Brussels, Belgium?"


def test_a_fragment_after_where_or_when_keeps_the_answer_as_its_place_or_time():
    # "When?" after "Where were the talks held?" (Brussels) asks when they were held there; the
    # reading without the place follows, and the question as asked comes last.
    talks = Turn("Where were the peace talks held?", "Brussels, Belgium")
    assert [r.question for r in readings("When?", [talks])] == [
        "When were the peace talks held in Brussels, Belgium?", "When were the peace talks held?", "When?"]
    show = Turn("Where did Claude first show neon lights off?", "Paris Motor Show")
    assert first_reading("When?", [show]).question == "When did Claude first show neon lights off at the Paris Motor Show?"
    sign = Turn("When was the first neon sign switched on?", "1912")
    assert first_reading("Where?", [sign]).question == "Where was the first neon sign switched on in 1912?"
    # A phrase with its own preposition is kept as it is; a lower-case phrase that starts with
    # neither a preposition nor an article may be a clause, and a reason is no time: those
    # fragments keep the predicate alone.
    city = Turn("Where was the attack?", "in the city of Djerba")
    assert first_reading("When?", [city]).question == "When was the attack in the city of Djerba?"
    synagogue = Turn("Where was the attack?", "outside a synagogue in the city of Djerba")
    assert first_reading("When?", [synagogue]).question == "When was the attack?"
    reason = Turn("When did the talks fail?", "after the ceasefire collapsed")
    assert first_reading("Why?", [reason]).question == "Why did the talks fail?"


def test_the_place_or_time_a_fragment_took_is_not_carried_into_the_next_turn():
    # "What about the first ones in America?" asks where those were switched on, not where they
    # were switched on in 1912; a second fragment takes the new answer, not both.
    history = [Turn("When was the first neon sign switched on?", "1912"),
               Turn("Where?", "Paris’s Boulevard Montmartre", "Where was the first neon sign switched on in 1912?")]
    assert first_reading("What about the first ones in America?", history).question == \
        "Where were the first ones in America switched on?"
    talks = [Turn("Where were the peace talks held?", "Brussels"),
             Turn("When?", "Sunday", "When were the peace talks held in Brussels?")]
    assert [r.question for r in readings("Why?", talks)][:2] == [
        "Why were the peace talks held on Sunday?", "Why were the peace talks held?"]


def test_a_fragment_after_a_what_question_puts_the_answer_where_the_question_word_was():
    seeking = Turn("What is Kiev seeking instead of NATO membership?", "security guarantees")
    first = readings("From which countries?", [seeking])
    assert first[0].question == "From which countries is Kiev seeking security guarantees instead of NATO membership?"
    # Less plausible readings follow, and the question as asked comes last.
    assert first[-1].question == "From which countries?"


def test_a_fragment_after_a_subject_question_makes_the_answer_the_subject():
    who = Turn("Who then transfers the weapons?", "NATO allies")
    assert first_reading("To whom?", [who]).question == "To whom NATO allies then transfers the weapons?"


def test_they_reads_as_the_previous_subject_when_the_answer_is_a_time():
    history = [Turn("Where were the peace talks held?", "Brussels"),
               Turn("When?", "Sunday", "When were the peace talks held?")]
    options = [c.question for c in readings("When will they continue?", history)]
    assert options[0] == "When will the peace talks continue?"
    assert not any("Sunday" in o for o in options)
    assert options[-1] == "When will they continue?"


def test_they_may_be_the_previous_answer_or_an_earlier_one():
    history = [Turn("What is Kiev seeking?", "security guarantees"),
               Turn("From which countries?", "Canada and Japan", "From which countries is Kiev seeking security guarantees?")]
    options = [c.question for c in readings("What are they intended to do?", history)]
    assert "What are Canada and Japan intended to do?" in options
    assert "What are security guarantees intended to do?" in options
    assert len(options) <= 4


def test_a_leading_and_before_a_complete_question_is_dropped():
    assert first_reading("And how does Putin see NATO expansion?", [WHO]).question == "How does Putin see NATO expansion?"


def test_long_capitalised_answer_is_not_taken_for_a_name():
    history = [Turn("What was said?", "We Will Not Give Up Our Country Now")]
    assert first_reading("Who said it to him?", history).question == "Who said it to him?"


class _ScoringQA:
    """Answers every reading; how sure it is depends on the reading (what `ask_in_context` weighs)."""

    def __init__(self, scores: dict[str, float]):
        self.scores = scores

    def ask_many(self, questions, contexts):
        from article_qa.qa.answer import Answer

        return [Answer(q, c.question, 0, 1, self.scores.get(c.question, 0.2), (), read_as=c.question)
                for q, c in zip(questions, contexts)]


HISTORY = [Turn("What is Kiev seeking?", "security guarantees"),
           Turn("From which countries?", "Canada and Japan", "From which countries is Kiev seeking security guarantees?")]


def test_the_reading_the_article_answers_most_confidently_is_kept():
    from article_qa.qa.conversation import ask_in_context

    sure = "What are security guarantees intended to do?"
    answer = ask_in_context(_ScoringQA({sure: 0.9}), ["What are they intended to do?"], [HISTORY])[0]
    assert answer.read_as == sure and answer.question == "What are they intended to do?"


def test_a_near_tie_keeps_the_more_plausible_reading():
    from article_qa.qa.conversation import READING_PREFERENCE, ask_in_context

    options = [c.question for c in readings("What are they intended to do?", HISTORY)]
    first, second = options[0], options[1]
    near = {first: 0.6, second: 0.6 + READING_PREFERENCE / 2}
    assert ask_in_context(_ScoringQA(near), ["What are they intended to do?"], [HISTORY])[0].read_as == first
    clear = {first: 0.6, second: 0.6 + 2 * READING_PREFERENCE}
    assert ask_in_context(_ScoringQA(clear), ["What are they intended to do?"], [HISTORY])[0].read_as == second


def test_a_pronoun_whose_antecedent_is_in_the_question_is_left_alone():
    talks = Turn("Where were the peace talks held?", "Brussels, Belgium")
    question = "Who announced that Ukraine is dropping its NATO bid?"
    assert readings(question, [talks]) == [Contextual(question, question)]
    assert [c.question for c in readings("What did the envoy say about his meetings?", [WHO])] == [
        "What did the envoy say about his meetings?"]
    # With nothing named ahead of it, the pronoun still points back.
    assert first_reading("What did his aide say?", [WHO]).question == "What did Zelensky's aide say?"


def test_a_not_sure_turn_is_remembered_by_the_guess_it_showed():
    from article_qa.qa.answer import Answer, Candidate
    from article_qa.qa.conversation import turn_after

    shown = Answer("Who then transfers the weapons?", None, None, None, 0.46, (),
                   best_guess=Candidate("NATO allies", 10, 21, 0.46))
    assert turn_after(shown).answer_text == "NATO allies"
    nothing = Answer("Who won?", None, None, None, 0.0, ())
    assert turn_after(nothing).answer_text is None
    follow_up = readings("To whom?", [turn_after(shown)])
    assert any("NATO allies" in c.question for c in follow_up)


def test_then_after_a_time_answer_is_that_time():
    continues = Turn("When will the talks continue?", "Monday")
    assert readings("What will happen then?", [continues])[0].question == "What will happen on Monday?"
    founded = Turn("When was the bridge built?", "1990")
    assert readings("Who paid for it then?", [founded])[0].question.endswith("in 1990?")
    # "then" as "next", after an answer that is not a time, is left alone.
    means = Turn("How does the United States support Ukraine?", "indirect means")
    assert readings("Who then transfers the weapons?", [means])[0].question == "Who then transfers the weapons?"


def test_a_short_question_with_a_verb_is_whole_not_a_fragment():
    talks = Turn("Where were the peace talks held?", "Brussels")
    for whole in ("Who won?", "Who announced it?", "Who says so?"):
        assert all(not r.question.endswith("were the peace talks held?") for r in readings(whole, [talks]))
    assert readings("When?", [talks])[0].question == "When were the peace talks held in Brussels?"


def test_a_reason_is_not_what_it_stands_for():
    why = Turn("Why?", "part of a compromise with Russia", "Why is Ukraine dropping its NATO bid?")
    assert all("compromise" not in r.question for r in readings("When was it agreed?", [why]))


def test_an_amount_is_not_what_it_stands_for():
    cost = Turn("How much did the renovation cost?", "$14 million")
    assert first_reading("Who paid for it?", [cost]).question == "Who paid for the renovation?"


def test_after_do_the_last_word_is_the_verb_not_the_subject():
    reopened = Turn("When did the library reopen?", "Saturday")
    assert first_reading("Who announced it?", [reopened]).question == "Who announced the library?"
    assert first_reading("Where?", [reopened]).question == "Where did the library reopen on Saturday?"


@pytest.mark.parametrize("before, answer, follow_up, read_as", [
    ("How many people have been killed by guns, according to Obama?", "tens of thousands", "And by terrorism?",
     "How many people have been killed by terrorism, according to Obama?"),
    ("Are there penalties for breaking the Flag Code?", "there are no rules for punishment",
     "What about burning the flag?", "Are there penalties for burning the flag?"),
    ("How much does tourism matter to the economy?", "15 percent", "And what about in 2014?",
     "How much does tourism matter to the economy in 2014?"),
])
def test_and_a_phrase_replaces_the_phrase_of_its_kind_never_beside_it(before, answer, follow_up, read_as):
    assert first_reading(follow_up, [Turn(before, answer)]).question == read_as


def test_and_a_name_stands_in_for_a_name_of_the_previous_question():
    paid = Turn("How much did Facebook pay for WhatsApp?", "$19 billion")
    options = [c.question for c in readings("And Instagram?", [paid])]
    assert "How much did Facebook pay for Instagram?" in options
    assert all("for WhatsApp" not in o or "Instagram pay" in o for o in options)  # never "Instagram for WhatsApp"


def test_a_pronoun_inside_the_topic_is_the_person_last_named():
    history = [Turn("Why did the impeachment of Yoon fail?", "members left"),
               Turn("When will the opposition try again?", "Wednesday")]
    options = [c.question for c in readings("And his approval rating?", history)]
    assert "What is Yoon's approval rating?" in options
    assert not any(o.startswith("When will Yoon's approval rating?") for o in options)


def test_a_participle_after_the_auxiliary_is_no_subject():
    suing = Turn("Who is suing Facebook?", "ZeniMax Media")
    assert first_reading("What do they accuse it of?", [suing]).question == "What does ZeniMax Media accuse it of?"


def test_a_place_or_an_organisation_is_not_he():
    history = [Turn("Who invented neon lights?", "Georges Claude"),
               Turn("Where did Claude first show it off?", "Paris Motor Show")]
    assert first_reading("When did he die?", history).question == "When did Claude die?"


def test_a_verb_phrase_answer_is_not_they():
    history = [Turn("What were the volunteers asked to do?", 'perform a "direction discrimination" task')]
    assert all("perform" not in c.question for c in readings("How did they show it?", history))


def test_a_fragment_brings_the_person_of_the_conversation_along():
    giving = Turn("How much of the profits from the new shoots is she giving away?", "15 percent")
    history = [Turn("Who took the photo?", "Vanessa Hicks"), giving]
    assert first_reading("To whom?", history).question == "To whom is Hicks giving away?"


def test_a_name_read_in_its_possessive_stands_for_the_person():
    history = [Turn("Is Hicks's husband still serving?", "still on active duty", None)]
    first = readings("What did she say about the photo?", history)[0].question
    assert first == "What did Hicks say about the photo?"


@pytest.mark.parametrize("before, answer, follow_up, read_as", [
    ("Where was the first neon sign switched on?", "Paris", "What about the first ones in America?",
     "Where were the first ones in America switched on?"),
    ("Why was the ruling party blamed?", "it walked out", "And the opposition?", "Why was the opposition blamed?"),
    ("Where were the peace talks held?", "Geneva", "And the summit?", "Where was the summit held?"),
])
def test_after_be_the_subject_runs_to_the_participle_even_over_a_word_that_can_be_a_verb(before, answer, follow_up,
                                                                                           read_as):
    assert first_reading(follow_up, [Turn(before, answer)]).question == read_as


def test_it_is_not_a_person_and_they_not_a_place():
    translated = Turn("Who translated it?", "Michael Wells", read_as="Who translated the book?")
    assert all("Michael Wells" not in c.question for c in readings("Does it have any pictures?", [translated]))
    assert first_reading("Does it have any pictures?", [translated]).question == "Does the book have any pictures?"
    where = [Turn("When were the first neon signs switched on?", "1912"), Turn("Where?", "Los Angeles",
                                                                                 read_as="Where were the first neon signs switched on?")]
    assert all("Los Angeles" not in c.question for c in readings("Why did they stop traffic?", where))


def test_it_may_be_the_object_of_a_question_whose_question_word_is_the_subject():
    took = Turn("Who took the controversial photo?", "Vanessa Hicks")
    assert first_reading("What did it show?", [took]).question == "What did the controversial photo show?"


def test_an_object_pronoun_is_not_the_subject_of_its_own_clause():
    paid = Turn("How much did Facebook pay for Oculus?", "$3 billion")
    assert first_reading("How did Zuckerberg get it for less?", [paid]).question == \
        "How did Zuckerberg get Oculus for less?"
    # A possessive may still be the name before it.
    assert readings("Why did Facebook change its name?", [paid])[0].question == "Why did Facebook change its name?"


def test_a_question_with_both_a_person_and_a_thing_pronoun_gets_both_resolved():
    invented = Turn("Who invented neon lights?", "Georges Claude")
    assert first_reading("Where did he first show it off?", [invented]).question == \
        "Where did Claude first show neon lights off?"
    # The reading naming only the person stays, in case "it" points inside the question.
    assert "Where did Claude first show it off?" in [r.question for r in readings("Where did he first show it off?",
                                                                                  [invented])]


def test_that_one_points_back_like_it():
    deal = Turn("And Instagram?", "$1 billion", "How much did Facebook pay for Instagram?")
    assert first_reading("Who negotiated that one?", [deal]).question == "Who negotiated Instagram?"


def test_a_bare_amount_answer_is_not_what_it_stands_for():
    price = Turn("What was the museum's original budget?", "$40 million")
    assert all("$40 million" not in r.question for r in readings("Who paid for it?", [price]))


def test_an_object_pronoun_after_a_new_actor_is_not_the_earlier_actor():
    history = [Turn("What was Oculus's original asking price?", "$4 billion"),
               Turn("How much did Facebook end up paying?", "$3 billion")]
    options = [r.question for r in readings("How did Zuckerberg get it for less?", history)]
    assert options[0] == "How did Zuckerberg get Oculus's original asking price for less?"
    assert options.index("How did Zuckerberg get Oculus for less?") < options.index(
        "How did Zuckerberg get Facebook for less?")


@pytest.mark.parametrize("follow_up, read_as", [
    ("And if shareholders vote it down?", "What happens to the deal if shareholders vote it down?"),
    ("And when that doesn't work?", "What happens to the deal when that doesn't work?"),
    ("Unless the board approves?", "What happens to the deal unless the board approves?"),
])
def test_a_conditional_clause_asks_the_previous_question_under_that_condition(follow_up, read_as):
    before = Turn("What happens to the deal?", "it is cancelled")
    assert first_reading(follow_up, [before]).question == read_as


def test_a_question_starting_with_when_is_not_a_condition():
    talks = Turn("Where were the peace talks held?", "Brussels")
    assert first_reading("And when will they continue?", [talks]).question == "When will the peace talks continue?"
    assert first_reading("When?", [talks]).question == "When were the peace talks held in Brussels?"


def test_do_it_is_an_action_not_a_thing():
    announced = Turn("Who announced the bid?", "Volodymyr Zelensky")
    assert first_reading("Why did he do it?", [announced]).question == "Why did Zelensky do it?"
