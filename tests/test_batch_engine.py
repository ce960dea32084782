"""`article-qa batch --engine dask`: the same records as the local engine, on a real cluster.

One local Dask cluster of two single-threaded worker processes serves every test of this module
(starting it costs seconds, and its workers keep the models they loaded); the CLI joins it with
--address, as a user joins an existing cluster. Faults are real: a worker process killed with
SIGKILL mid-run, a batch process interrupted with SIGINT and resumed. The cut into blocks and the
engine choice are checked without a cluster.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from article_qa.batch.blocks import InOrder, plan_blocks
from article_qa.batch.engine import EngineError, choose_engine
from article_qa.batch.input import BatchError, BatchQuestion, read_batch
from article_qa.batch.output import JsonLinesFormat
from article_qa.batch.run import Done, answer_records
from bench.questions import seed_questions, variants

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from article_qa import cli; cli.main()"]
HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAS_DASK, reason="the dask extra is not installed (pip install 'article-qa[dask]')")


# -- without a cluster ------------------------------------------------------------------------------


def q(line, question="q?", id_=None, conversation=None, article=None) -> BatchQuestion:
    return BatchQuestion(line, question, id_ or str(line), conversation, article)


def test_a_conversation_goes_whole_to_one_block_and_every_line_gets_one_place():
    records = [q(1), q(2, conversation="c"), BatchError(3, None, "invalid JSON"), q(4), q(5, conversation="c"),
               q(6), q(7, conversation="c")]
    plan = plan_blocks(records, block_questions=2, window_blocks=1)
    assert plan.order == [1, 2, 3, 4, 5, 6, 7]
    assert plan.ready == {3: {"id": None, "line": 3, "error": "invalid JSON"}}
    blocks = [[r.line for r in b.records] for b in plan.blocks]
    assert [2, 5, 7] in [[x for x in b if x in (2, 5, 7)] for b in blocks]  # the conversation, in order, together
    assert sum(1 for b in blocks if {2, 5, 7} & set(b)) == 1
    assert sorted(x for b in blocks for x in b) == [1, 2, 4, 5, 6, 7]


def test_lines_naming_an_article_are_grouped_by_it_within_a_window():
    records = [q(i, article="ab"[i % 2]) for i in range(1, 9)]
    plan = plan_blocks(records, block_questions=4, window_blocks=2)
    assert [[(r.article, r.line) for r in b.records] for b in plan.blocks] == [
        [("a", 2), ("a", 4), ("a", 6), ("a", 8)], [("b", 1), ("b", 3), ("b", 5), ("b", 7)]]


def test_done_lines_are_passed_on_and_a_conversations_done_turns_travel_with_it():
    done = {1: Done(1, "1", "q?", "x", '{"id": "1"}'), 2: Done(2, "2", "q?", "y", '{"id": "2"}'),
            3: Done(3, "3", "other?", "z", '{"id": "3"}')}
    plan = plan_blocks([q(1), q(2, conversation="c"), q(3), q(4, conversation="c")], done)
    assert plan.ready == {1: done[1]}  # 3's question changed: asked again
    assert [[r.line for r in b.records] for b in plan.blocks] == [[2, 4, 3]]  # a unit: the conversation
    assert dict(plan.blocks[0].done) == {2: done[2]} and plan.blocks[0].questions == 2


def test_records_arriving_in_any_order_go_out_in_input_order():
    out = InOrder([1, 3, 4, 9], {3: {"line": 3}})
    assert list(out.ready()) == []
    out.add([{"line": 4}, {"line": 9}])
    assert list(out.ready()) == []
    out.add([{"line": 1}])
    assert [r["line"] for r in out.ready()] == [1, 3, 4, 9] and out.finished


@pytest.mark.parametrize("args, message", [
    (("ray",), "--engine ray is not available"),
    (("spark",), "--engine must be one of local, dask"),
    (("local", "tcp://h:8786"), "--address names a Dask scheduler; give --engine dask too"),
    (("local", None, 2), "--workers sizes a local Dask cluster; give --engine dask too"),
    (("dask", "  "), "--address is empty"),
    (("dask", "tcp://h:8786", 2), "a cluster at --address has its own workers"),
    (("dask", None, 0), "--workers must be at least 1"),
])
def test_a_bad_engine_choice_is_one_line(args, message):
    with pytest.raises(EngineError, match=message) as err:
        choose_engine(*args)
    assert "\n" not in str(err.value)


def test_the_scheduler_address_variable_moves_only_a_dask_batch(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://sched:8786")
    assert choose_engine("local").local
    if HAS_DASK:
        assert choose_engine("dask").address == "tcp://sched:8786"
        assert choose_engine("dask", "tcp://other:1").address == "tcp://other:1"


def test_without_the_extra_engine_dask_is_one_line_saying_what_to_install(tmp_path):
    """Before the output is touched or the article read; Dask is hidden as if not installed."""
    hide = ("import sys\n"
            "class Hide:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('distributed', 'dask'):\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Hide())\n"
            "from article_qa import cli; cli.main()\n")
    out = tmp_path / "answers.jsonl"
    done = subprocess.run([sys.executable, "-c", hide, "batch", "-", "-o", str(out), "--engine", "dask"],
                          input="Who?\n", capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "article-qa: error: --engine dask needs Dask, which is not installed: pip install 'article-qa[dask]'"]
    assert not out.exists()


# -- on a real local cluster -----------------------------------------------------------------------


def _questions() -> list[str]:
    """A few hundred lines: plain questions, follow-ups, lines naming an article, and bad lines."""
    asked = variants(seed_questions(), 240)
    lines = []
    for i, question in enumerate(asked):
        if i % 37 == 5:
            lines.append("{not json")
        if i % 41 == 3:
            lines.append(json.dumps({"id": f"n{i}", "question": 5}))
        if i % 53 == 7:
            lines.append(json.dumps({"id": "q1", "question": question}))  # a repeated id
        if i % 29 == 0:
            lines.append("")
        record = {"id": f"q{i}", "question": question}
        if i % 9 == 0:
            record["conversation"] = f"c{i % 4}"
        if i % 31 == 2:
            record["article"] = "no-such-article"
        lines.append(json.dumps(record))
    return lines


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes, shared by every test here; closed after them."""
    if not HAS_DASK:
        pytest.skip("the dask extra is not installed")
    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=50)
    client = Client(local)
    yield client
    client.close()
    local.close()


@pytest.fixture(scope="module")
def questions(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("engine") / "questions.jsonl"
    path.write_text("\n".join(_questions()) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def env(default_qa, index_dir):
    default_qa.ask("Where were the peace talks held?")  # both ONNX exports exist, as after a first run
    return {**os.environ, "ARTICLE_QA_INDEX_DIR": str(index_dir), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def local_output(questions, tmp_path_factory, index_dir, default_qa) -> bytes:
    """The local engine's output, from the real process, which must not import Dask."""
    default_qa.ask("Where were the peace talks held?")
    env = {**os.environ, "ARTICLE_QA_INDEX_DIR": str(index_dir), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path_factory.mktemp("local") / "answers.jsonl"
    done = subprocess.run([sys.executable, "-X", "importtime", *CLI[1:], "batch", str(questions), "-o", str(out)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]  # the bad lines
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not {"distributed", "dask"} & imported  # only --engine dask imports the engine
    return out.read_bytes()


@pytest.mark.slow
@needs_dask
def test_dask_writes_byte_for_byte_what_the_local_engine_writes(cluster, questions, local_output, env, tmp_path):
    out = tmp_path / "answers.jsonl"
    done = subprocess.run([*CLI, "batch", str(questions), "-o", str(out), "--engine", "dask", "--address",
                           cluster.scheduler.address], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    assert out.read_bytes() == local_output
    records = [json.loads(line) for line in local_output.decode().splitlines()]
    assert sum("error" in r for r in records) >= 15 and sum("answer" in r for r in records) >= 200
    assert done.stderr.splitlines()[-1] == f"article-qa: {sum('error' in r for r in records)} of {len(records)} " \
                                           "lines failed (see their \"error\" records)"


@pytest.mark.slow
@needs_dask
def test_a_corpus_with_lines_naming_their_article_answers_the_same_on_dask(cluster, news, news_qa, index_dir):
    from article_qa.batch.distributed import answer_on_dask, worker_spec

    lines = []
    for i, question in enumerate(variants(["When was the harbour lamp electrified?", "When did the new bridge open?",
                                           "Who is the U.S. envoy?"], 60)):
        record = {"id": f"q{i}", "question": question}
        if i % 3:
            record["article"] = ["sub/lamp.md", "bridge.txt", "nowhere.txt"][i % 3]
        lines.append(json.dumps(record))
    records = list(read_batch(io.BytesIO(("\n".join(lines) + "\n").encode())))
    qa = news_qa.with_settings(k=3)
    expected = [_render(r) for r in answer_records(qa, records)]
    got = [_render(r) for r in answer_on_dask(cluster, worker_spec(qa, None, None, index_dir), records,
                                              block_questions=8)]
    assert got == expected
    assert any('"error": "no article' in r for r in got) and any('"sub/lamp.md"' in r for r in got)


def _render(record) -> str:
    return JsonLinesFormat().render(record)


@pytest.mark.slow
@needs_dask
def test_a_worker_killed_mid_run_has_its_block_retried_and_the_run_is_complete(cluster, questions, default_qa,
                                                                              index_dir, local_output):
    from article_qa.batch.distributed import answer_on_dask, worker_spec

    with open(questions, "rb") as f:
        records = list(read_batch(f))
    qa = default_qa.with_settings(k=3)  # as the CLI opens it
    expected = local_output.decode("utf-8").splitlines(keepends=True)
    before = set(cluster.run(os.getpid).values())
    stream = answer_on_dask(cluster, worker_spec(qa, None, None, index_dir), records, block_questions=16)
    got = [_render(next(stream))]
    busy = [w for w, keys in cluster.processing().items() if keys]
    assert busy, "no block was running to kill"
    victim = cluster.run(os.getpid, workers=busy[:1])[busy[0]]
    os.kill(victim, signal.SIGKILL)  # mid-block: the scheduler must give its block to another worker
    got += [_render(r) for r in stream]
    assert got == expected
    cluster.wait_for_workers(2, timeout=120)  # the nanny restarted the killed process
    after = set(cluster.run(os.getpid).values())
    assert victim in before and victim not in after


@pytest.mark.slow
@needs_dask
def test_an_interrupted_dask_batch_keeps_its_lines_and_resume_completes_it(cluster, questions, local_output, env,
                                                                          tmp_path):
    out = tmp_path / "answers.jsonl"
    args = [*CLI, "batch", str(questions), "-o", str(out), "--engine", "dask", "--address", cluster.scheduler.address]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not out.exists() or out.read_bytes().count(b"\n") < 1:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no answers in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "article-qa: interrupted"
    kept = out.read_bytes()
    assert kept and local_output.startswith(kept) and len(kept) < len(local_output)  # whole records, none lost
    resumed = subprocess.run([*args, "--resume"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    assert out.read_bytes() == local_output
    assert "kept" in resumed.stderr


@pytest.mark.slow
@needs_dask
def test_a_worker_that_cannot_open_the_index_folder_is_one_line(cluster, default_qa, index_dir, tmp_path):
    from dataclasses import replace

    from article_qa.batch.distributed import answer_on_dask, worker_spec

    spec = replace(worker_spec(default_qa, None, None, index_dir), folder=str(tmp_path / "elsewhere"))
    with pytest.raises(EngineError) as err:
        list(answer_on_dask(cluster, spec, [q(1, "Who is the U.S. envoy?")]))
    message = str(err.value)
    assert "\n" not in message
    assert f"cannot open the index folder {tmp_path / 'elsewhere'}: no such folder" in message
    assert message.startswith("the Dask worker at tcp://") and "same path" in message
