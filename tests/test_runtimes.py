"""The fast paths give the answers of the reference ones: ONNX Runtime against PyTorch, the
optimised export against the checked one, background loading against loading in place."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from conftest import DATA
from article_qa.index.parallel import Loading
from article_qa.evaluation.squad import load_squad


def test_loading_in_the_background_loads_once():
    calls = []
    release = threading.Event()

    def load():
        release.wait(5)
        calls.append(1)
        return object()

    slot = Loading(load)
    slot.start()
    slot.start()  # a second start while loading does not load again
    release.set()
    first = slot.get()
    assert slot.get() is first
    assert len(calls) == 1


def test_a_background_failure_is_raised_where_the_value_is_used_then_retried():
    attempts = []

    def load():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("broken model")
        return "reader"

    slot = Loading(load)
    slot.start()
    with pytest.raises(ValueError, match="broken model"):
        slot.get()
    assert slot.get() == "reader"


def test_views_share_one_loading_reader():
    from article_qa.qa.pipeline import ArticleQA

    qa = ArticleQA(index=None)
    qa.use_reader("loaded once")
    assert qa.with_settings(k=7).reader == "loaded once"


def test_map_in_threads_keeps_the_order_of_the_items():
    from article_qa.index.parallel import map_in_threads

    slow_first = lambda x: (threading.Event().wait(0.02 if x == 0 else 0), x * x)[1]  # noqa: E731
    assert list(map_in_threads(slow_first, range(7), workers=3)) == [x * x for x in range(7)]
    assert list(map_in_threads(slow_first, [], workers=3)) == []


@pytest.mark.slow
def test_reading_on_all_cores_gives_the_spans_of_reading_on_one(default_qa):
    """Many windows (several batches in flight at once) and a chat-sized read."""
    reader = default_qa.reader
    passages = default_qa.index.passages
    questions = ["Where were the peace talks held?", "Who is the U.S. envoy?", "What did Moscow demand?"] * 4
    reads = [passages[i % len(passages):][:3] for i in range(len(questions))]
    workers = reader.workers
    try:
        reader.workers = 3
        parallel = reader.read_many(questions, reads)
        single_question = reader.read_many(questions[:1], reads[:1])
        reader.workers = 1
        sequential = reader.read_many(questions, reads)
    finally:
        reader.workers = workers
    assert [[(s.start, s.end) for s in spans] for spans in parallel] == [[(s.start, s.end) for s in spans] for spans in sequential]
    for got, expected in zip(parallel, sequential):
        np.testing.assert_allclose([s.margin for s in got], [s.margin for s in expected], atol=1e-3)
    assert [(s.start, s.end) for s in single_question[0]] == [(s.start, s.end) for s in sequential[0]]


@pytest.mark.slow
def test_encoding_on_all_cores_gives_the_vectors_of_encoding_on_one(default_qa):
    embedder = default_qa.index.embedder
    texts = [p.text for p in default_qa.index.passages]
    parallel = embedder.encode(texts, batch_size=4)
    backend = embedder._load_backend()
    workers = backend.workers
    try:
        backend.workers = 1
        sequential = embedder.encode(texts, batch_size=4)
    finally:
        backend.workers = workers
    np.testing.assert_allclose(parallel, sequential, atol=1e-5)


TINY = "encoder-0123456789abcdef"  # an export folder's name, as the tool makes them


def _tiny_graph(path, seed: int = 0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(32, 32)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(32,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])], initializer=[w, b],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_published_export_is_a_folder_that_gives_the_checked_exports_outputs(tmp_path):
    from article_qa.index.onnx_export import MODEL_FILE, WEIGHTS_FILE, publish, session

    checked, published = tmp_path / "tiny.raw.onnx", tmp_path / TINY / MODEL_FILE
    _tiny_graph(checked)
    x = np.random.default_rng(1).normal(size=(3, 32)).astype(np.float32)
    (expected,) = session(checked).run(None, {"x": x})
    publish(checked, published)
    assert not checked.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".article-qa-cache", TINY, "hashes.json"]  # no staging folder
    assert (published.parent / WEIGHTS_FILE).stat().st_size >= 32 * 32 * 4  # weights outside the graph
    (got,) = session(published).run(None, {"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_publishing_replaces_a_damaged_export_and_keeps_a_whole_one(tmp_path):
    from article_qa.index.onnx_export import MODEL_FILE, WEIGHTS_FILE, publish, session

    published = tmp_path / TINY / MODEL_FILE
    published.parent.mkdir()
    (published.parent / WEIGHTS_FILE).write_bytes(b"half of an old export")
    _tiny_graph(tmp_path / "a.onnx")
    publish(tmp_path / "a.onnx", published)
    session(published)  # loads: the damaged folder was replaced
    before = published.stat().st_mtime_ns
    _tiny_graph(tmp_path / "b.onnx")
    publish(tmp_path / "b.onnx", published)  # a second publisher: the first export stays
    assert published.stat().st_mtime_ns == before
    assert not (tmp_path / "b.onnx").exists()


def _copy_of_encoder_export(default_qa, folder):
    """The session's encoder export copied into `folder`: (the original's folder, the copy's weights)."""
    import shutil

    from article_qa.index.onnx_export import WEIGHTS_FILE, exported_model_path

    model = default_qa.index.embedder.model
    good = exported_model_path(model, default_qa.index.embedder.export_dir)
    copy = exported_model_path(model, folder)
    shutil.copytree(good.parent, copy.parent)
    return good.parent, copy.parent / WEIGHTS_FILE


@pytest.mark.slow
def test_a_damaged_encoder_export_is_made_again(default_qa, tmp_path):
    from article_qa.index.embeddings import Embedder
    from article_qa.index.onnx_export import WEIGHTS_FILE

    model = default_qa.index.embedder.model
    good, weights = _copy_of_encoder_export(default_qa, tmp_path)
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    embedder = Embedder(model, export_dir=tmp_path)
    vectors = embedder.encode(["Where were the peace talks held?"])
    assert embedder.runtime_in_use == "onnx"
    assert weights.stat().st_size == (good / WEIGHTS_FILE).stat().st_size
    np.testing.assert_allclose(vectors, default_qa.index.embedder.encode(["Where were the peace talks held?"]), atol=1e-5)


@pytest.mark.slow
def test_onnx_encoder_matches_sentence_transformers(default_qa):
    """Issue #4's check: cosine >= 0.999 and the same top passages as PyTorch."""
    from article_qa.index.embeddings import Embedder

    embedder = default_qa.index.embedder
    (document,) = load_squad(DATA / "seed_dev.squad.json")
    questions = [q.question for q in document.questions]
    texts = questions + [p.text for p in default_qa.index.passages]
    fast = embedder.encode(texts)
    assert embedder.runtime_in_use == "onnx"
    reference = Embedder(embedder.model, runtime="torch").encode(texts)
    assert (fast * reference).sum(axis=1).min() >= 0.999
    n = len(questions)
    top = lambda vectors: np.argsort(-(vectors[:n] @ vectors[n:].T), axis=1)[:, :3]  # noqa: E731
    assert (top(fast) == top(reference)).all()


@pytest.mark.slow
def test_onnx_reader_matches_pytorch(default_qa):
    from article_qa.qa.reader import make_windows, pad
    from article_qa.qa.reader_loading import READER_CONFIG, SHIPPED_READER, _torch_runner, merged_network, shipped_config

    reader = default_qa.reader
    assert reader.name == "onnx"
    passages = default_qa.index.passages[:4]
    arrays = pad(make_windows(reader.tokenizer, "Where were the peace talks held?", passages,
                              reader.max_length, reader.stride))
    config = shipped_config(SHIPPED_READER)
    assert (SHIPPED_READER / READER_CONFIG).is_file()
    network = merged_network(default_qa.index.embedder.model.path, SHIPPED_READER, config)
    mask = arrays["attention_mask"].astype(bool)
    for fast, reference in zip(reader.runner(arrays), _torch_runner(network)(arrays)):
        np.testing.assert_allclose(fast[mask], reference[mask], atol=1e-3)


# -- exports are not trusted as found ----------------------------------------------------------------


def _published_tiny(tmp_path, seed: int = 0, name: str = TINY):
    from article_qa.index.onnx_export import MODEL_FILE, publish

    raw = tmp_path / f"{name}-{seed}.raw.onnx"
    _tiny_graph(raw, seed)
    published = tmp_path / name / MODEL_FILE
    publish(raw, published)
    return published


def test_an_export_overwritten_in_place_is_refused_with_a_warning(tmp_path):
    from article_qa.index.onnx_export import WEIGHTS_FILE, ExportChanged, ExportWarning, session

    published = _published_tiny(tmp_path)
    session(published)
    weights = published.parent / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-16:] = bytes(16)  # the same size, other values: ONNX Runtime loads it without a murmur
    with open(weights, "r+b") as f:  # in place, as the attack did
        f.write(bytes(data))
    with pytest.warns(ExportWarning, match="changed since it was made"), pytest.raises(ExportChanged):
        session(published)


def test_an_export_swapped_for_another_valid_model_is_refused(tmp_path):
    import shutil

    from article_qa.index.onnx_export import MODEL_FILE, WEIGHTS_FILE, ExportChanged, ExportWarning, session

    published = _published_tiny(tmp_path, seed=0)
    other = _published_tiny(tmp_path, seed=1, name="reader-0123456789abcdef")
    for name in (MODEL_FILE, WEIGHTS_FILE):
        shutil.copyfile(other.parent / name, published.parent / name)
    with pytest.warns(ExportWarning), pytest.raises(ExportChanged):
        session(published)


def test_an_export_made_before_manifests_is_made_again_quietly(tmp_path):
    import warnings

    from article_qa.index.onnx_export import MANIFEST_FILE, ExportChanged, session

    published = _published_tiny(tmp_path)
    (published.parent / MANIFEST_FILE).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ExportChanged):
            session(published)


def test_temp_files_of_dead_exporters_are_removed_when_exporting(tmp_path):
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)
    leftovers = {
        f"{TINY}.{dead}.raw.onnx": False,  # an interrupted first export of version 0.1: removed
        f"{TINY}.{dead}.k2j4h1ab.raw.onnx": False,
        f"{TINY}.{dead}.abcdefgh.tmp": False,  # a staging folder
        f"{TINY}.{os.getppid()}.abcdefgh.raw.onnx": True,  # a live exporter's: kept
        "notes.onnx": True,  # not a name of the tool's: kept
    }
    for name in leftovers:
        if name.endswith(".tmp"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "model.data").write_bytes(b"x" * 1000)
        else:
            (tmp_path / name).write_bytes(b"x" * 1000)
    _published_tiny(tmp_path)
    assert {name: (tmp_path / name).exists() for name in leftovers} == leftovers


@pytest.mark.slow
def test_encoder_weights_overwritten_in_place_are_exported_again(default_qa, tmp_path):
    """An attack: 4 MB of the cached export's weights overwritten in place."""
    from article_qa.index.embeddings import Embedder
    from article_qa.index.onnx_export import WEIGHTS_FILE, ExportWarning

    model = default_qa.index.embedder.model
    good, weights = _copy_of_encoder_export(default_qa, tmp_path)
    with open(weights, "r+b") as f:
        f.seek(weights.stat().st_size // 2)
        f.write(bytes(4 * 1024 * 1024))
    embedder = Embedder(model, export_dir=tmp_path)
    with pytest.warns(ExportWarning, match="changed since it was made"):
        vectors = embedder.encode(["Where were the peace talks held?"])
    assert embedder.runtime_in_use == "onnx"
    assert weights.read_bytes() == (good / WEIGHTS_FILE).read_bytes()
    np.testing.assert_allclose(vectors, default_qa.index.embedder.encode(["Where were the peace talks held?"]), atol=1e-5)


# -- a full cache disk --------------------------------------------------------------------------------

_WRITES_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)),) * 2)
"""


def test_an_export_that_cannot_be_written_leaves_no_temporary_file(tmp_path):
    """A failed export left its raw file (87 MB for the encoder) in the cache for ever."""
    import subprocess
    import sys

    code = _WRITES_LIMITED + """
import torch
from pathlib import Path
from article_qa.index.onnx_export import export_graph
try:
    export_graph(torch.nn.Embedding(1000, 256), Path(sys.argv[1]) / "encoder-0123456789abcdef" / "model.onnx",
                 ["input_ids"], ["hidden"])
except OSError as err:
    print(err.strerror)
"""
    onnx_dir = tmp_path / "onnx"
    done = subprocess.run([sys.executable, "-c", code, "100000", str(onnx_dir)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "File too large"  # the 1 MB graph could not be written
    assert sorted(p.name for p in onnx_dir.iterdir()) == [".article-qa-cache"]


@pytest.mark.slow
def test_when_the_exports_cannot_be_written_it_says_so_once_and_answers(default_qa, tmp_path):
    """Exports failing for lack of space: the raw exports stayed, nothing said why, and every later
    run failed the same way under the "once, ~15 s" message. Writes here stop at 20 MB (the raw
    exports are ~90 MB each), as on a cache disk with 20 MB left."""
    import shutil
    import subprocess
    import sys

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    shutil.copytree(default_qa.index.status.path, cache / default_qa.index.status.path.name)  # no indexing
    env = {**os.environ, "ARTICLE_QA_INDEX_DIR": str(cache), "NO_COLOR": "1"}
    code = _WRITES_LIMITED + "from article_qa import cli; cli.main()"
    done = subprocess.run([sys.executable, "-c", code, str(20 * 2**20), "ask", "Who is the Ukrainian president?",
                           "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Zelensky" in json.loads(done.stdout)["answer"]["text"]
    assert done.stderr.splitlines() == [
        "Preparing the models for first use (once, ~15 s)…",
        "article-qa: warning: could not export the models to ONNX (File too large); answering with PyTorch "
        "(slower) until they can be exported",
    ]
    left = [p.name for p in (cache / "onnx").iterdir()]
    assert [n for n in left if n.endswith((".tmp", ".onnx")) or n.startswith(("encoder-", "reader-"))] == [], left
