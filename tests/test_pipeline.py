"""ArticleQA's own logic with fakes: which passages the reader gets."""

from __future__ import annotations

from index.passages import Passage
from qa.conversation import Contextual
from qa.pipeline import ArticleQA, Settings
from qa.retrieve import Hit


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
