"""Abstention with the real pipeline: the shipped article, the shipped reader and its stored decision.

`tests/test_answer.py` checks `decide` with made-up spans; here the whole pipeline meets questions the
shipped article cannot answer, and the decision `ArticleQA` uses is checked to be the one stored in
the reader folder's `reader.json` (not a copy of its numbers, not a default).

The questions are our own, about things the article never mentions; none is from the dev sets the
threshold was tuned on.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from article_qa.qa.answer import NO_ANSWER_TEXT, Decision
from article_qa.qa.confidence import FEATURES, Calibrator
from article_qa.qa.pipeline import ArticleQA
from article_qa.qa.reader_loading import READER_CONFIG, SHIPPED_READER, shipped_config, weights_file

pytestmark = pytest.mark.slow

# Nothing in the article is about these.
OFF_TOPIC = [
    "Who won the 2018 FIFA World Cup final?",
    "Which team won the Super Bowl last season?",
    "What will the weather be like in Paris tomorrow?",
    "How long should sourdough bread bake in the oven?",
    "How many eggs go into a pancake batter?",
    "What is the recipe for chocolate chip cookies?",
]
# About people and places the article names, asking what it does not say.
NOT_SAID = [
    "What did Jared Kushner have for breakfast?",
    "How old is Steve Witkoff?",
    "What is the population of Canada?",
    "Who is the prime minister of Japan?",
]
ANSWERABLE = "Where were the peace talks held?"


# -- how a reader folder's reader.json becomes ArticleQA's decision ---------------------------------
# The one place that knows the decision's fields: when reader.json's decision changes, adapt these
# helpers and the tests below keep checking "ArticleQA's decision comes from reader.json".


def decision_of(config: dict) -> Decision:
    """The decision a reader.json asks for: its margin rule, and its calibrator and thresholds when it
    has a "confidence" section (KeyError if it lacks a field: adapt this helper)."""
    # A reader with a calibrator needs no margin rule; reader.json then leaves it out (0: "beat no answer").
    decision = Decision(null_threshold=float(config.get("null_threshold", 0.0)),
                        retrieval_weight=float(config.get("retrieval_weight", 0.0)))
    confidence = config.get("confidence")
    if confidence:
        decision = replace(decision, calibrator=Calibrator.from_dict(confidence["calibrator"]),
                           answer_threshold=float(confidence.get("answer_threshold", decision.answer_threshold)),
                           guess_floor=float(confidence.get("guess_floor", decision.guess_floor)))
    return decision


def answering_nothing(config: dict) -> dict:
    """The same reader.json with a decision that gives no answer to any question."""
    if config.get("confidence"):
        return {**config, "confidence": {**config["confidence"], "answer_threshold": 2.0}}  # p never reaches 2
    return {**config, "null_threshold": 1e6}


def answering_everything(config: dict) -> dict:
    """The same reader.json with a decision that answers every question that has a span."""
    if config.get("confidence"):
        return {**config, "confidence": {**config["confidence"], "answer_threshold": 0.0}}
    return {**config, "null_threshold": -1e6}


def with_a_calibrator(config: dict) -> dict:
    """The reader.json with a confidence section of our own (a calibrator that says 0.5 for all)."""
    calibrator = Calibrator(FEATURES, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 0.0)
    return {**config, "confidence": {"calibrator": calibrator.to_dict(), "answer_threshold": 0.5,
                                     "guess_floor": 0.1}}


STYLES = {"as shipped": lambda config: config, "with a calibrator": with_a_calibrator}


def reader_copy(folder: Path, config: dict) -> Path:
    """The shipped reader's weights in `folder`, with `config` as its reader.json."""
    folder.mkdir(parents=True)
    shutil.copy2(SHIPPED_READER / weights_file(config), folder / weights_file(config))
    (folder / READER_CONFIG).write_text(json.dumps(config), encoding="utf-8")
    return folder


# -- the shipped pipeline abstains --------------------------------------------------------------------


def test_questions_the_article_cannot_answer_get_no_answer(default_qa):
    answers = default_qa.ask_many(OFF_TOPIC + NOT_SAID)
    assert [a.question for a in answers] == OFF_TOPIC + NOT_SAID
    for answer in answers:
        assert answer.answered is False, (answer.question, answer.text)
        assert (answer.text, answer.start, answer.end) == (None, None, None)
        assert answer.verdict != "answered"
        assert answer.to_dict()["answer"] is None
    # The same pipeline does answer a question the article answers: it is not abstaining on all.
    control = default_qa.ask(ANSWERABLE)
    assert control.answered and "Brussels" in control.text
    assert default_qa.article.text[control.start : control.end] == control.text


def test_cli_says_the_article_does_not_say(cli_env):
    """README: `answer` is null in --json, and the plain answer is "The article does not say."."""
    from article_qa.cli import app

    runner = CliRunner()
    as_json = runner.invoke(app, ["ask", OFF_TOPIC[0], "--json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert payload["question"] == OFF_TOPIC[0]
    assert payload["answer"] is None
    assert len(payload["passages"]) == 3
    as_text = runner.invoke(app, ["ask", OFF_TOPIC[0]])
    assert as_text.exit_code == 0, as_text.output
    assert as_text.stdout.splitlines()[0] == NO_ANSWER_TEXT == "The article does not say."


# -- the decision is the reader folder's ----------------------------------------------------------


def test_articleqa_uses_the_decision_stored_with_the_shipped_reader(default_qa):
    stored = decision_of(shipped_config(SHIPPED_READER))
    assert default_qa.settings.decision == stored
    assert stored != Decision()  # the shipped reader's tuned decision is not the default one
    assert default_qa.with_settings(k=5).settings.decision == stored


@pytest.fixture(params=["--reader folder", "shipped folder"])
def open_with_reader_json(request, index_dir, tmp_path, monkeypatch):
    """Open ArticleQA over the shipped article with the shipped reader's weights and a reader.json of
    our own: named as `reader=FOLDER`, or put where the shipped reader is looked for."""
    import article_qa.qa.reader_loading as reader_loading

    counter = iter(range(100))

    def open_qa(config: dict) -> ArticleQA:
        folder = reader_copy(tmp_path / f"reader-{next(counter)}", config)
        if request.param == "--reader folder":
            return ArticleQA.open(None, reader=str(folder), index_dir=index_dir)
        monkeypatch.setattr(reader_loading, "SHIPPED_READER", folder)
        return ArticleQA.open(None, index_dir=index_dir)

    return open_qa


@pytest.mark.parametrize("style", STYLES)
def test_a_decision_answering_nothing_in_reader_json_is_used(open_with_reader_json, style):
    config = answering_nothing(STYLES[style](shipped_config(SHIPPED_READER)))
    qa = open_with_reader_json(config)
    assert qa.settings.decision == decision_of(config)
    answer = qa.ask(ANSWERABLE)  # the shipped decision answers it (see above); this one may not
    assert answer.answered is False, answer.text
    assert answer.to_dict()["answer"] is None


@pytest.mark.parametrize("style", STYLES)
def test_a_decision_answering_everything_in_reader_json_is_used(open_with_reader_json, style):
    config = answering_everything(STYLES[style](shipped_config(SHIPPED_READER)))
    qa = open_with_reader_json(config)
    assert qa.settings.decision == decision_of(config)
    answers = qa.ask_many(OFF_TOPIC[:2])  # abstained on with the shipped decision (see above)
    for answer in answers:
        assert answer.answered is True, answer.question
        assert qa.article.text[answer.start : answer.end] == answer.text
