"""Reader models: any Hugging Face QA model via --reader, segment ids, and the training loop."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import DATA

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_qa_model(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT QA model saved locally: no hub, no download."""
    import torch
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    from article_qa.index.embedding_model import default_model_path

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert-qa")
    tokenizer = BertTokenizerFast.from_pretrained(str(default_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_any_hugging_face_reader_by_path(tiny_qa_model, index_dir):
    from article_qa.qa.answer import Decision
    from article_qa.qa.pipeline import ArticleQA

    qa = ArticleQA.open(None, reader=str(tiny_qa_model), index_dir=index_dir)
    # Random weights: whether the best span beats "no answer" is chance, so the decision is set to
    # answer whenever there is a span; any span it gives must be an exact slice of the article.
    answering = qa.with_settings(decision=Decision(null_threshold=-1e6))
    answer = answering.ask("Where were the peace talks held?")
    assert qa.reader.name == str(tiny_qa_model)
    assert len(answer.hits) == 3
    assert answer.answered
    assert answer.text and qa.article.text[answer.start : answer.end] == answer.text
    assert any(h.passage.start <= answer.start and answer.end <= h.passage.end for h in answer.hits)


def test_unknown_reader_is_a_clear_error(index_dir, tmp_path):
    from article_qa.qa.pipeline import ArticleQA
    from article_qa.qa.reader_loading import ReaderError

    missing = str(tmp_path / "no-such-model")
    qa = ArticleQA.open(None, reader=missing, index_dir=index_dir)
    with pytest.raises(ReaderError) as info:
        qa.ask("Where?")
    message = str(info.value)
    assert message.startswith(f"cannot load reader {missing!r}: ") and "\n" not in message


def test_shipped_reader_uses_segment_ids():
    """peft's QA wrapper silently drops token_type_ids; ours must not."""
    import torch

    from article_qa.index.embedding_model import resolve_model
    from article_qa.qa.reader_loading import SHIPPED_READER, merged_network, shipped_config

    network = merged_network(resolve_model(None).path, SHIPPED_READER, shipped_config())
    ids = torch.tensor([[101, 2073, 2024, 102, 9371, 2001, 2182, 102]])
    mask = torch.ones_like(ids)
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1]])
    with torch.inference_mode():
        with_types = network(ids, mask, types)[0]
        without = network(ids, mask, torch.zeros_like(types))[0]
    assert not torch.allclose(with_types, without)


def test_shipped_reader_checksum_matches():
    from article_qa.qa.reader_loading import SHIPPED_READER, shipped_config, weights_file

    config = shipped_config()
    data = (SHIPPED_READER / weights_file(config)).read_bytes()
    assert hashlib.sha256(data).hexdigest() == config.get("weights_sha256", config.get("adapter_sha256"))
    assert len(data) < 30 * 1024 * 1024


def test_training_loop_runs_saves_and_resumes(tmp_path):
    from training.reader import CHECKPOINT_FILE, STATE_FILE, main

    out = tmp_path / "reader"
    common = ["--data", str(DATA / "train_sample.json"), "--out", str(out), "--batch-size", "4",
              "--max-length", "96", "--save-every", "1", "--threads", "1", "--holdout-articles", "0",
              "--probe-every", "0"]
    main(common + ["--max-steps", "2"])
    state = json.loads((out / STATE_FILE).read_text())
    assert state["step"] == 2 and state["examples_seen"] == 8
    reader = json.loads((out / "reader.json").read_text())
    assert reader["kind"] == "delta"
    assert reader["weights_sha256"] == hashlib.sha256((out / reader["weights"]).read_bytes()).hexdigest()
    first = (out / CHECKPOINT_FILE).read_bytes()
    main(common + ["--max-steps", "3"])
    state = json.loads((out / STATE_FILE).read_text())
    assert state["step"] == 3 and state["examples_seen"] == 12
    assert state["position"] >= 12
    assert (out / CHECKPOINT_FILE).read_bytes() != first


def test_trained_folder_is_a_reader_that_matches_the_trained_network(tmp_path):
    """The float16 delta the folder ships reproduces the float32 network that was trained."""
    import torch
    from safetensors.torch import load_file

    from article_qa.index.embedding_model import resolve_model
    from article_qa.qa.reader_loading import merged_network, shipped_config
    from training.reader import CHECKPOINT_FILE, main

    out = tmp_path / "reader"
    main(["--data", str(DATA / "train_sample.json"), "--out", str(out), "--batch-size", "4",
          "--max-length", "96", "--threads", "1", "--holdout-articles", "0", "--probe-every", "0",
          "--max-steps", "2", "--lr", "1e-3"])
    base = resolve_model(None).path
    shipped = merged_network(base, out, shipped_config(out))
    trained = merged_network(base, out, shipped_config(out))
    trained.load_state_dict(load_file(str(out / CHECKPOINT_FILE)), strict=False)
    ids = torch.tensor([[101, 2073, 2024, 102, 9371, 2001, 2182, 1996, 2062, 102]])
    mask, types = torch.ones_like(ids), torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 1, 1]])
    with torch.inference_mode():
        a, b = shipped(ids, mask, types), trained(ids, mask, types)
    assert torch.allclose(a[0], b[0], atol=1e-2) and torch.allclose(a[1], b[1], atol=1e-2)


def test_label_uses_the_occurrence_nearest_the_question():
    from training.examples import best_occurrence

    context = ("In 1990 the bridge was painted. Many years later, the old tower collapsed in 1990 "
               "after the storm, which nobody expected.")
    second = context.index("1990", 10)
    assert best_occurrence(context, "1990", 3, "When did the old tower collapse?") == second
    assert best_occurrence(context, "1990", 3, "When was the bridge painted?") == 3


def test_device_round_trip_rebuilds_the_reader_trained_on_float16_base(tmp_path):
    """What training/device_train.sh does on a GPU, on the CPU: prepare the carried float16 base,
    train on it, split the delta into parts under 16 MiB, join them back against the float32 base."""
    import torch
    from safetensors.torch import load_file

    from article_qa.index.embedding_model import resolve_model
    from article_qa.qa.reader_loading import merged_network, shipped_config
    from article_qa.qa.reader_network import QAModel, load_encoder
    from training.device import PART_BYTES, join, prepare, split
    from training.reader import CHECKPOINT_FILE, main

    carry = tmp_path / "carry"
    prepare(DATA / "train_sample.json", carry)
    assert (carry / "base" / "model.safetensors").stat().st_size < 50 * 2**20  # float16
    trained = tmp_path / "there"
    main(["--data", str(carry / "train_sample.json"), "--base", str(carry / "base"), "--out", str(trained),
          "--batch-size", "4", "--max-length", "96", "--threads", "1", "--holdout-articles", "0",
          "--probe-every", "0", "--max-steps", "1", "--lr", "1e-3"])
    parts = tmp_path / "parts"
    split(trained, parts)
    assert all(f.stat().st_size < PART_BYTES + 2**20 for f in parts.glob("delta-*.safetensors"))
    assert len(list(parts.glob("delta-*.safetensors"))) >= 2
    here = tmp_path / "here"
    join(parts, here)
    rebuilt = merged_network(resolve_model(None).path, here, shipped_config(here))
    reference = QAModel(load_encoder(carry / "base"))  # the network as trained there
    reference.load_state_dict(load_file(str(trained / CHECKPOINT_FILE)), strict=False)
    reference.eval()
    ids = torch.tensor([[101, 2073, 2024, 102, 9371, 2001, 2182, 1996, 2062, 102]])
    mask, types = torch.ones_like(ids), torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 1, 1]])
    with torch.inference_mode():
        a, b = rebuilt(ids, mask, types), reference(ids, mask, types)
    assert torch.allclose(a[0], b[0], atol=2e-2) and torch.allclose(a[1], b[1], atol=2e-2)


def test_device_prepare_carries_the_pool_only_when_given(tmp_path, monkeypatch):
    """`prepare --pool` puts the people-written negatives where device_train.sh looks for them; a
    later prepare without one removes it, so a run never trains on an earlier call's pool."""
    from training.device import POOL_FILE, main

    script = (Path(__file__).resolve().parents[1] / "training" / "device_train.sh").read_text()
    assert f".device/{POOL_FILE}" in script
    monkeypatch.chdir(tmp_path)
    carry = Path(".device")
    main(["prepare", "--data", str(DATA / "train_sample.json"), "--pool", str(DATA / "tiny_squad2.json")])
    assert (carry / POOL_FILE).read_bytes() == (DATA / "tiny_squad2.json").read_bytes()
    main(["prepare", "--data", str(DATA / "train_sample.json")])
    assert not (carry / POOL_FILE).exists() and (carry / "train_sample.json").is_file()
    with pytest.raises(SystemExit):
        main(["prepare", "--data", str(DATA / "train_sample.json"), "--pool", "missing.json"])


def test_changed_reader_weights_are_refused_even_after_their_checksum_was_remembered(tmp_path):
    """The weights' sha256 is remembered in the hash cache (not hashed at every start); a file
    changed afterwards has a new state, is hashed again and refused."""
    import shutil

    from article_qa.index.cache_layout import CacheLayout
    from article_qa.qa.reader_loading import SHIPPED_READER, ReaderError, load_reader

    folder = tmp_path / "reader"
    shutil.copytree(SHIPPED_READER, folder)
    cache = CacheLayout(tmp_path / "cache")
    cache.exports.mkdir(parents=True)
    load_reader(str(folder), cache)  # remembers the checksum
    assert str(folder / "delta.safetensors") in (tmp_path / "cache" / "hashes.json").read_text()
    weights = folder / "delta.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ReaderError, match="fail their checksum"):
        load_reader(str(folder), cache)


def test_int8_delta_rounds_each_row_to_within_half_a_step():
    import torch

    from article_qa.qa.reader_network import INT8_SCALE, dequantize_delta, quantize_delta

    torch.manual_seed(0)
    delta = {"encoder.encoder.layer.0.attention.self.query.weight": (torch.randn(8, 16) * 1e-3).half(),
             "encoder.encoder.layer.0.attention.self.query.bias": (torch.randn(8) * 1e-3).half(),
             "qa_outputs.weight": torch.randn(2, 16)}
    stored = quantize_delta(delta)
    name = "encoder.encoder.layer.0.attention.self.query.weight"
    assert stored[name].dtype == torch.int8 and stored[name + INT8_SCALE].shape == (8, 1)
    assert stored["qa_outputs.weight"].dtype == torch.float32  # the head is kept as it is
    back = dequantize_delta(stored)
    step = stored[name + INT8_SCALE]
    assert torch.all((back[name] - delta[name].float()).abs() <= step / 2 + 1e-9)
    assert set(back) == set(delta)
    with pytest.raises(ValueError, match="without its scale"):
        dequantize_delta({name: stored[name]})


def test_quantized_reader_reads_like_the_float16_one(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from article_qa.index.embedding_model import resolve_model
    from article_qa.qa.reader_network import dequantize_delta, load_with_delta, quantize_delta
    from article_qa.qa.reader_loading import SHIPPED_READER

    base = resolve_model(None).path
    shipped = dequantize_delta(load_file(str(SHIPPED_READER / "delta.safetensors")))
    as_float16 = {n: (t if n.startswith("qa_outputs") else t.half()) for n, t in shipped.items()}
    save_file(quantize_delta(as_float16), str(tmp_path / "int8.safetensors"))
    a = load_with_delta(base, as_float16)
    b = load_with_delta(base, load_file(str(tmp_path / "int8.safetensors")))
    ids = torch.tensor([[101, 2073, 2024, 1996, 2831, 102, 1996, 2831, 2020, 2218, 1999, 9371, 102]])
    mask, types = torch.ones_like(ids), torch.tensor([[0] * 6 + [1] * 7])
    with torch.inference_mode():
        (sa, ea), (sb, eb) = a(ids, mask, types), b(ids, mask, types)
    assert torch.allclose(sa, sb, atol=0.1) and torch.allclose(ea, eb, atol=0.1)
    assert sa.argmax() == sb.argmax() and ea.argmax() == eb.argmax()
