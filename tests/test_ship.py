"""Tests for training/ship.py's model card: it says what the shipped weights were trained on and how."""

from __future__ import annotations

from training.ship import model_card

READER = {"base_sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", "kind": "delta",
          "weights": "delta.safetensors", "weights_sha256": "ab" * 32,
          "confidence": {"answer_threshold": 0.5, "guess_floor": 0.1, "calibrator": {"names": ["margin"]},
                         "fitted_on": {"questions": 10, "articles": 2, "kinds": {"answerable": 6, "antonym": 4}},
                         "check": {"threshold_on_fit": 0.5, "check": {"f1": 70.0, "ece": 0.02}}}}


def state(**changes) -> dict:
    base = {"step": 120, "examples_seen": 3840, "seconds": 198.0, "planned_steps": 100,
            "config": {"mode": "full", "planned_steps": 100, "lr": 1e-4, "batch_size": 32, "max_length": 384,
                       "negative_rate": 0.4, "negative_kinds": ["antonym"], "trainable_parameters": 10,
                       "held_out_articles": [1, 2]},
            "curve": [{"step": 0, "windows": 0, "minutes": 0.0, "has_answer_f1": 5.0, "no_answer_auc": 0.5},
                      {"step": 120, "windows": 3840, "minutes": 3.3, "has_answer_f1": 75.1, "no_answer_auc": 0.96}],
            "notes": ["trained on a GPU from float16 base weights (training/device.py)"]}
    return {**base, **changes}


def test_card_says_where_and_how_long_the_weights_trained():
    card = model_card(state(), READER, {"dev.json": {"f1": 60.5}}, "## Notes\nhand-written")
    assert "3.3 min on one NVIDIA H100 GPU" in card
    assert "Steps: 120 (the last 20 after the schedule ended, at its final LR)" in card
    assert "| 120 | 3840 | 3.3 | 75.1 | 0.96 |" in card
    assert "6 answerable, 4 antonym" in card and "| f1 | 60.5 |" in card
    assert card.rstrip().endswith("hand-written")


def test_card_of_a_cpu_run_within_its_schedule():
    card = model_card(state(step=90, notes=[]), READER, {}, "")
    assert "on a 2-core CPU (fp32)" in card and "Steps: 90;" in card


def test_shipping_the_shipped_folder_onto_itself_keeps_its_weights(tmp_path):
    import json

    from training.ship import main

    folder = tmp_path / "reader_weights"
    folder.mkdir()
    (folder / "reader.json").write_text(json.dumps(READER))
    (folder / "train_state.json").write_text(json.dumps(state()))
    (folder / "delta.safetensors").write_bytes(b"weights")
    main(["--reader", str(folder), "--to", str(folder)])
    assert (folder / "delta.safetensors").read_bytes() == b"weights"
    assert "3.3 min on one NVIDIA H100 GPU" in (folder / "MODEL_CARD.md").read_text()
