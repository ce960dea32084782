"""Tests for batch/run.py: one output per input record, in order, with follow-ups answered in turn.

A fake pipeline stands in for ArticleQA: its answer echoes the question it was asked (after the
follow-up rewrite), except for a few questions it answers with a person's name.
"""

from __future__ import annotations

import pytest

from article_qa.index.passages import Passage
from article_qa.qa.answer import Answer
from article_qa.batch.run import MAX_CHUNK, Done, answer_records
from article_qa.batch.input import BatchError, BatchQuestion
from article_qa.qa.conversation import Contextual
from article_qa.qa.retrieve import Hit

PASSAGE = Passage(0, 0, 20, "Some article passage")
NAMES = {"Who announced the bid?": "Volodymyr Zelensky", "Who hosted the talks?": "Alexander De Croo"}


class FakeQA:
    def __init__(self, fail_on: str | None = None, short: bool = False):
        self.calls: list[list[Contextual]] = []
        self.fail_on = fail_on
        self.short = short

    def ask_many(self, questions: list[str], contexts: list[Contextual] | None = None) -> list[Answer]:
        contexts = contexts or [Contextual(q, q) for q in questions]
        assert len(questions) == len(contexts)
        self.calls.append(list(contexts))
        if self.fail_on and any(self.fail_on in c.question for c in contexts):
            raise RuntimeError("reader exploded")
        answers = []
        for q, c in zip(questions, contexts):
            text = NAMES.get(c.question, f"echo: {c.question}")
            answers.append(Answer(q, text, 0, len(text), 0.75, (Hit(PASSAGE, 0.5, 0.4, 1.0),)))
        return answers[:-1] if self.short else answers

    @property
    def asked(self) -> list[str]:
        return [c.question for call in self.calls for c in call]


def q(line: int, question: str, conversation: str | None = None, id_: str | None = None) -> BatchQuestion:
    return BatchQuestion(line, question, id_ or str(line), conversation)


MIXED = [
    q(1, "Where were the talks held?"),
    BatchError(2, None, "invalid JSON: Expecting value at column 1"),
    q(3, "Who announced the bid?", "c1", "c1-a"),
    q(4, "Who hosted the talks?", "c2", "c2-a"),
    q(5, "How did he speak to journalists?", "c1", "c1-b"),
    BatchError(6, "bad-id", '"question" must be a string, got number'),
    q(7, "What did his aide say?", "c1", "c1-c"),
    q(8, "When did he arrive?", "c2", "c2-b"),
    q(9, "What is NATO?"),
]


def test_one_record_per_input_in_order():
    fake = FakeQA()
    out = list(answer_records(fake, MIXED))
    assert [r["line"] for r in out] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert [r["id"] for r in out] == ["1", None, "c1-a", "c2-a", "c1-b", "bad-id", "c1-c", "c2-b", "9"]
    assert out[1] == {"id": None, "line": 2, "error": "invalid JSON: Expecting value at column 1"}
    assert out[5] == {"id": "bad-id", "line": 6, "error": '"question" must be a string, got number'}
    first = out[0]
    assert set(first) == {"id", "line", "question", "verdict", "answer", "best_guess", "confidence", "passages"}
    assert first["question"] == "Where were the talks held?"
    assert first["answer"] == {"text": "echo: Where were the talks held?", "start": 0, "end": 32, "score": 0.75}
    assert first["passages"] == [{"text": PASSAGE.text, "start": 0, "end": 20, "score": 0.5}]
    assert out[2]["conversation"] == "c1" and out[3]["conversation"] == "c2"
    assert "conversation" not in out[8]
    # The record keeps the question as asked; the rewrite is only what the reader saw.
    assert out[4]["question"] == "How did he speak to journalists?"


def test_follow_ups_answered_after_their_previous_turn_and_see_its_answer():
    fake = FakeQA()
    out = {r["line"]: r for r in answer_records(fake, MIXED)}
    asked = fake.asked
    rewritten = "How did Zelensky speak to journalists?"
    assert rewritten in asked
    assert asked.index("Who announced the bid?") < asked.index(rewritten)
    assert out[5]["answer"]["text"] == f"echo: {rewritten}"
    # c2 uses its own history.
    assert "When did De Croo arrive?" in asked
    assert out[8]["answer"]["text"] == "echo: When did De Croo arrive?"
    # Turn 3: the previous answer is no name, but the previous question named Zelensky. The
    # question as asked is still tried, searched with turn 2's words; equally confident answers
    # keep the more plausible reading.
    assert "What did Zelensky's aide say?" in asked
    third = next(c for call in fake.calls for c in call if c.question == "What did his aide say?")
    assert "How did he speak to journalists?" in third.query
    assert out[7]["answer"]["text"] == "echo: What did Zelensky's aide say?"
    assert asked.index(rewritten) < asked.index("What did his aide say?")
    # Turns of one conversation never share a call.
    for call in fake.calls:
        firsts = [c.question for c in call]
        assert not ({"Who announced the bid?", rewritten} <= set(firsts))
    # Plain questions are not rewritten.
    plain = next(c for call in fake.calls for c in call if c.question == "What is NATO?")
    assert plain == Contextual("What is NATO?", "What is NATO?")


def test_conversation_history_crosses_chunks():
    fake = FakeQA()
    records = [q(1, "Who announced the bid?", "c"), q(2, "x"), q(3, "y"), q(4, "Why did he do it?", "c")]
    out = list(answer_records(fake, records, chunk_size=2))
    assert out[3]["answer"]["text"] == "echo: Why did Zelensky do it?"


def done(line: int, question: str, answer: str | None, id_: str | None = None) -> Done:
    return Done(line, id_ or str(line), question, answer, f"written {line}")


def test_done_lines_are_passed_on_in_order_and_not_asked():
    fake = FakeQA()
    kept = {1: done(1, "Where were the talks held?", "Brussels"), 9: done(9, "What is NATO?", None)}
    out = list(answer_records(fake, MIXED, kept))
    assert [r.line if isinstance(r, Done) else r["line"] for r in out] == list(range(1, 10))
    assert out[0] is kept[1] and out[8] is kept[9]
    assert "Where were the talks held?" not in fake.asked
    assert "What is NATO?" not in fake.asked


def test_a_done_line_is_asked_again_when_the_input_line_changed():
    fake = FakeQA()
    kept = {
        1: done(1, "Where were the talks held, before the edit?", "Brussels"),  # another question now
        3: done(3, "Who announced the bid?", "Volodymyr Zelensky", id_="other-id"),  # another id now
    }
    out = list(answer_records(fake, MIXED, kept))
    assert not any(isinstance(r, Done) for r in out)
    assert "Where were the talks held?" in fake.asked and "Who announced the bid?" in fake.asked


def test_a_done_turn_gives_its_follow_up_the_history_without_being_asked():
    fake = FakeQA()
    kept = {3: done(3, "Who announced the bid?", "Volodymyr Zelensky", "c1-a"),
            4: done(4, "Who hosted the talks?", "Alexander De Croo", "c2-a")}
    out = list(answer_records(fake, MIXED, kept))
    assert [r.line if isinstance(r, Done) else r["line"] for r in out] == list(range(1, 10))
    by_line = {r["line"]: r for r in out if isinstance(r, dict)}
    assert by_line[5]["answer"]["text"] == "echo: How did Zelensky speak to journalists?"
    assert by_line[8]["answer"]["text"] == "echo: When did De Croo arrive?"
    assert "Who announced the bid?" not in fake.asked and "Who hosted the talks?" not in fake.asked


def test_fully_done_conversation_is_not_asked():
    fake = FakeQA()
    records = [q(1, "Who announced the bid?", "c"), q(2, "Why did he do it?", "c"), q(3, "z")]
    kept = {1: done(1, "Who announced the bid?", "Zelensky"), 2: done(2, "Why did he do it?", None)}
    out = list(answer_records(fake, records, kept))
    assert out[:2] == [kept[1], kept[2]] and out[2]["line"] == 3
    assert fake.asked == ["z"]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5])
def test_chunk_boundaries_do_not_change_results(chunk_size):
    whole = list(answer_records(FakeQA(), MIXED, chunk_size=100))
    assert list(answer_records(FakeQA(), MIXED, chunk_size=chunk_size)) == whole


def test_failing_chunk_gives_error_records_and_later_chunks_run():
    fake = FakeQA(fail_on="boom")
    records = [q(1, "a"), q(2, "b"), q(3, "boom now"), q(4, "d"), BatchError(5, "e5", "empty line"), q(6, "f"), q(7, "g")]
    out = list(answer_records(fake, records, chunk_size=2))
    assert [r["line"] for r in out] == [1, 2, 3, 4, 5, 6, 7]
    assert out[2] == {"id": "3", "line": 3, "error": "could not answer: reader exploded"}
    assert out[3] == {"id": "4", "line": 4, "error": "could not answer: reader exploded"}
    assert out[4] == {"id": "e5", "line": 5, "error": "empty line"}
    assert out[0]["answer"]["text"] == "echo: a"
    assert out[5]["answer"]["text"] == "echo: f"
    assert out[6]["answer"]["text"] == "echo: g"
    assert len(fake.calls) == 3  # chunks [a b] [boom d] [e5] [f g]; e5 is not asked


def test_too_few_answers_become_error_records():
    out = list(answer_records(FakeQA(short=True), [q(1, "a"), q(2, "b")]))
    assert [r["line"] for r in out] == [1, 2]
    assert all(set(r) == {"id", "line", "error"} for r in out)


def test_thousand_questions_are_batched():
    fake = FakeQA()
    records = [q(i, f"question {i}?") for i in range(1, 1001)]
    out = list(answer_records(fake, records))
    assert len(out) == 1000
    assert [r["line"] for r in out] == list(range(1, 1001))
    assert out[536]["answer"]["text"] == "echo: question 537?"
    # Chunks grow 1, 2, 4, 8, 16, then MAX_CHUNK: the first answers come quickly, the rest batched.
    assert [len(c) for c in fake.calls][:6] == [1, 2, 4, 8, 16, MAX_CHUNK]
    assert max(len(c) for c in fake.calls) == MAX_CHUNK
    assert len(fake.calls) == 5 + -(-(1000 - 31) // MAX_CHUNK)
    assert sum(len(c) for c in fake.calls) == 1000


def test_results_stream_chunk_by_chunk():
    fake = FakeQA()
    records = iter([q(i, f"q{i}") for i in range(1, 11)])
    stream = answer_records(fake, records, chunk_size=4)
    first = next(stream)
    assert first["line"] == 1
    assert len(fake.calls) == 1  # only the first chunk has been answered
    assert len(list(stream)) == 9
