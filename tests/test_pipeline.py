"""ArticleQA's own logic with fakes: which passages the reader gets."""

from __future__ import annotations

from article_qa.index.passages import Passage
from article_qa.qa.conversation import Contextual
from article_qa.qa.pipeline import ArticleQA, Settings
from article_qa.qa.retrieve import Hit


class RecordingReader:
    def __init__(self):
        self.passages = None

    def read_many(self, questions, passages):
        self.passages = passages
        return [[] for _ in questions]


def hits(*scores):
    return [Hit(Passage(i, 10 * i, 10 * i + 5, "x" * 5), s, s, 0.0) for i, s in enumerate(scores)]


def make(read_ratio=None):
    settings = Settings() if read_ratio is None else Settings(read_ratio=read_ratio)  # None: the default
    qa = ArticleQA(index=None, settings=settings)
    qa.use_reader(RecordingReader())
    return qa


def test_reader_skips_passages_far_below_the_best():
    qa = make()
    qa.read_many([Contextual("q", "q")], [hits(0.8, 0.5, 0.39)])
    assert [p.index for p in qa.reader.passages[0]] == [0, 1]


def test_best_passage_is_read_even_with_negative_scores():
    qa = make()
    qa.read_many([Contextual("q", "q")], [hits(-0.1, -0.3)])
    assert [p.index for p in qa.reader.passages[0]] == [0]


def test_ratio_zero_reads_all_and_empty_hits_read_nothing():
    qa = make(read_ratio=0.0)
    qa.read_many([Contextual("a", "a"), Contextual("b", "b")], [hits(0.9, 0.1, 0.05), []])
    assert [len(p) for p in qa.reader.passages] == [3, 0]


class ScriptedReader:
    """Finds an answer only in passage 3: a span with a high margin there, nothing elsewhere."""

    def __init__(self, article_text):
        self.calls, self.text = [], article_text

    def read_many(self, questions, passages):
        from article_qa.qa.reader import Span

        self.calls.append([[p.index for p in ps] for ps in passages])
        out = []
        for ps in passages:
            out.append([Span(p.start, p.start + 4, 8.0, p) for p in ps if p.index == 3]
                       + [Span(p.start, p.start + 4, -6.0, p, 6.0) for p in ps if p.index != 3])
        return out


class FixedIndex:
    """An index whose search returns the same six passages, best first, for every query."""

    def __init__(self, text):
        from article_qa.index.article import article_from_text

        self.article = article_from_text(text, "fixed")
        self.passages = [Passage(i, 10 * i, 10 * i + 9, text[10 * i:10 * i + 9]) for i in range(6)]


def test_an_unanswered_question_reads_further_passages_and_keeps_the_better_answer(monkeypatch):
    from article_qa.qa.answer import Decision

    text = "".join(f"passage {i}." for i in range(6))
    qa = ArticleQA(index=FixedIndex(text), settings=Settings(decision=Decision()))
    reader = ScriptedReader(text)
    qa.use_reader(reader)
    scores = [0.9, 0.5, 0.45, 0.4, 0.1, 0.05]  # passage 3 under read_ratio of the best; 4, 5 under wide_floor
    monkeypatch.setattr(qa, "search_many", lambda contexts, k: [
        [Hit(qa.index.passages[i], s, s, 0.0) for i, s in enumerate(scores)][:k] for _ in contexts])
    monkeypatch.setattr(qa, "_reader_questions", lambda questions, contexts: contexts)
    answer = qa.ask("q")
    # First the best passages (1 and 2 fall under 0.6 of 0.9), then every other one above 0.3 of it.
    assert reader.calls == [[[0]], [[1, 2, 3]]]
    assert answer.answered and (answer.start, answer.end) == (30, 34)
    assert answer.text == text[30:34]
    assert 3 in [h.passage.index for h in answer.hits]


def test_an_answered_question_is_not_read_again(monkeypatch):
    from article_qa.qa.answer import Decision

    text = "".join(f"passage {i}." for i in range(6))
    qa = ArticleQA(index=FixedIndex(text), settings=Settings(decision=Decision()))
    reader = ScriptedReader(text)
    qa.use_reader(reader)
    ranked = sorted(enumerate([0.9, 0.5, 0.45, 0.85, 0.1, 0.05]), key=lambda p: -p[1])
    monkeypatch.setattr(qa, "search_many", lambda contexts, k: [
        [Hit(qa.index.passages[i], s, s, 0.0) for i, s in ranked][:k] for _ in contexts])
    monkeypatch.setattr(qa, "_reader_questions", lambda questions, contexts: contexts)
    assert qa.ask("q").answered
    assert len(reader.calls) == 1
