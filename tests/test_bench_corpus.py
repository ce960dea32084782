"""The corpus benchmark's inputs (bench/squad_corpus.py) and its command line, on a tiny SQuAD file."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from bench.__main__ import parse_args
from bench.squad_corpus import load_squad, make_corpus, noise_for_cosine, perturbed_vectors, rename, suffix

SQUAD = {"version": "1.1", "data": [
    {"title": "Paris", "paragraphs": [
        {"context": "Paris is the capital of France. The Seine flows through it.",
         "qas": [{"id": "1", "question": "What flows through Paris?", "answers": []}]},
        {"context": "The Louvre is in Paris.", "qas": []}]},
    {"title": "Berlin", "paragraphs": [
        {"context": "Berlin is the capital of Germany.",
         "qas": [{"id": "2", "question": "Which city is the capital of Germany?", "answers": []}]}]},
]}


@pytest.fixture
def squad(tmp_path):
    path = tmp_path / "squad.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(SQUAD, f)
    return load_squad(path)


def test_load_squad_keeps_order_articles_and_questions(squad):
    assert squad.titles == ["Paris", "Berlin"]
    assert squad.paragraphs[2] == "Berlin is the capital of Germany."
    assert squad.article_of.tolist() == [0, 0, 1]
    assert squad.questions == [(0, "What flows through Paris?"), (2, "Which city is the capital of Germany?")]


def test_copies_have_their_names_changed_consistently():
    text = "The Seine flows through Paris, and Paris is in France."
    assert rename(text, 0) == text
    once = rename(text, 1)
    assert once == "The Seineka flows through Pariska, and Pariska is in Franceka."  # "The": a stopword
    assert rename("What flows through Paris?", 1) == "What flows through Pariska?"  # the question matches
    assert len({suffix(c) for c in range(1, 2000)}) == 1999  # every copy its own names


def test_corpus_repeats_paragraphs_as_new_articles(squad):
    corpus = make_corpus(squad, 7)
    assert len(corpus) == 7
    assert corpus.base.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert corpus.copy.tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert corpus.article.tolist() == [0, 0, 1, 2, 2, 3, 4]
    assert corpus.text(3) == rename(squad.paragraphs[0], 1) != squad.paragraphs[0]
    assert corpus.passages_of(2).tolist() == [3, 4]
    assert corpus.texts(5, 99) == [corpus.text(5), corpus.text(6)]


def test_perturbed_vectors_keep_originals_and_hit_the_measured_cosine(squad):
    corpus = make_corpus(squad, 3000, bases=3)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    noise = noise_for_cosine(0.9)
    vectors = perturbed_vectors(base, corpus, 0, 3000, noise)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[:3], base)  # copy 0 keeps its real vector
    cosines = np.sum(vectors[3:] * base[corpus.base[3:]], axis=1)
    assert abs(float(np.median(cosines)) - 0.9) < 0.01
    again = perturbed_vectors(base, corpus, 0, 3000, noise)
    assert np.array_equal(vectors, again)  # the same corpus every run


def test_corpus_row_needs_the_squad_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["--rows", "corpus"])
    assert stop.value.code == 2
    assert "the corpus row needs --squad PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--rows", "corpus", "--squad", str(tmp_path / "missing.json.gz")])
    assert "file not found" in capsys.readouterr().err
    squad = tmp_path / "s.json"
    squad.write_text(json.dumps(SQUAD))
    with pytest.raises(SystemExit):
        parse_args(["--rows", "corpus", "--squad", str(squad), "--corpus-sizes", "10k"])
    assert "--corpus-sizes must be positive whole numbers" in capsys.readouterr().err
    args = parse_args(["--rows", "corpus", "--squad", str(squad), "--corpus-sizes", "1000,5000"])
    assert args.rows == ["corpus"] and args.corpus_sizes == "1000,5000"
    assert "corpus" not in parse_args([]).rows  # not run by default: it needs data and an hour


def test_stand_in_encoder_gives_cached_vectors_and_encodes_the_rest_for_real(squad):
    from bench.corpus import StandInEncoder

    class Real:
        dim = 4

        def __init__(self):
            self.asked = []

        def encode(self, texts):
            self.asked.extend(texts)
            return np.tile(np.array([0, 0, 0, 1], np.float32), (len(texts), 1))

    corpus = make_corpus(squad, 3)
    cached = np.eye(4, dtype=np.float32)[:3]
    real = Real()
    stand_in = StandInEncoder(real, corpus, lambda first, last: cached[first:last])
    paragraphs = corpus.texts(0, 3)
    window = paragraphs[0][:20]  # a window of a long paragraph: near its paragraph's vector, not it
    out = stand_in.encode([window, paragraphs[0], paragraphs[1] + "\n\n" + paragraphs[2], "A changed text."])
    assert 0.9 < float(out[0] @ cached[0]) < 0.999
    assert np.array_equal(out[1], cached[0])
    assert 0.9 < float(out[2] @ cached[1]) < 0.999  # paragraphs joined: near the first one's
    assert real.asked == ["A changed text."] and stand_in.real_texts == 1 and stand_in.looked_up == 3
