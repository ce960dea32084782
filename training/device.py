"""Train the reader on a lent GPU machine in one call, and bring the weights back.

That machine has PyTorch and transformers but no internet, neither our base model's package nor
the training data, and it moves at most 64 MiB out and 16 MiB a file back. So:

1. here: `python -m training.device prepare --data squad1_train.json.gz --pool squad2_pool13.json`
   writes `.device/`: the base weights in float16 (45 MB instead of 90), the tokenizer, the
   training data and the pool of SQuAD 2.0's people-written unanswerable questions (1.7 MB), which
   the script then mixes in from the first step (its held-out articles stay out, for calibration);
2. there (device tool, `carry: [".device"]`): `bash training/device_train.sh` trains (bf16, full
   fine-tuning, two passes by default) and splits the float16 delta into files under 16 MiB;
3. here: `python -m training.device join --parts FOLDER --out runs/reader` rebuilds the reader
   folder, the delta now taken against the float32 base the product uses (the network trained on
   the float16 base; the difference is rounding, far below what the logits notice). Then
   calibrate and ship as after a CPU run.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

CARRY = Path(".device")
PART_BYTES = 15 * 1024 * 1024


POOL_FILE = "pool.json"  # the name device_train.sh looks for


def prepare(data: Path, carry: Path = CARRY, pool: Path | None = None) -> None:
    from safetensors.torch import load_file, save_file

    from article_qa.index.embedding_model import WEIGHTS_FILE, default_model_path

    base = default_model_path()
    target = carry / "base"
    target.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if f.is_file() and f.name != WEIGHTS_FILE and f.suffix in {".json", ".txt"}:
            shutil.copyfile(f, target / f.name)
    weights = {k: v.half().contiguous() for k, v in load_file(str(base / WEIGHTS_FILE)).items()}
    save_file(weights, str(target / WEIGHTS_FILE))
    shutil.copyfile(data, carry / data.name)
    if pool is not None:
        shutil.copyfile(pool, carry / POOL_FILE)
    elif (carry / POOL_FILE).exists():
        (carry / POOL_FILE).unlink()  # a pool left from an earlier prepare is not this run's
    exclude = Path(".git/info/exclude")
    if exclude.is_file() and f"/{carry}/" not in exclude.read_text():
        with open(exclude, "a") as f:
            f.write(f"/{carry}/\n")
    size = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
    print(f"{carry}: {size / 2**20:.1f} MiB to carry")


def split(reader: Path, out: Path, prefix: str = "") -> None:
    """The reader folder's delta as several files under 16 MiB, plus its state and reader.json
    (names start with `prefix`, so several runs can come back from one call)."""
    from safetensors.torch import load_file, save_file

    from article_qa.qa.reader_network import DELTA_FILE

    out.mkdir(parents=True, exist_ok=True)
    delta = load_file(str(reader / DELTA_FILE))
    part, size, n = {}, 0, 0
    for name in sorted(delta):
        nbytes = delta[name].numel() * delta[name].element_size()
        if part and size + nbytes > PART_BYTES:
            save_file(part, str(out / f"{prefix}delta-{n}.safetensors"))
            part, size, n = {}, 0, n + 1
        part[name] = delta[name]
        size += nbytes
    save_file(part, str(out / f"{prefix}delta-{n}.safetensors"))
    for name in ("train_state.json", "reader.json"):
        shutil.copyfile(reader / name, out / f"{prefix}{name}")


def join(parts: Path, out: Path, prefix: str = "") -> None:
    """A reader folder from the parts: delta against the float32 base, state, reader.json."""
    import torch
    from safetensors.torch import load_file, save_file

    from article_qa.index.embedding_model import WEIGHTS_FILE, default_model_path
    from article_qa.qa.reader_network import DELTA_FILE
    from training.reader import write_reader_config

    delta = {}
    for f in sorted(parts.glob(f"{prefix}delta-*.safetensors")):
        delta.update(load_file(str(f)))
    base32 = load_file(str(default_model_path() / WEIGHTS_FILE))
    rebased = {}
    for name, d in delta.items():
        if name.startswith("qa_outputs."):
            rebased[name] = d
            continue
        key = name[len("encoder."):]
        base16 = base32[key].half().float()  # what the network trained on there
        rebased[name] = (base16 + d.float() - base32[key].float()).to(torch.float16).contiguous()
    out.mkdir(parents=True, exist_ok=True)
    save_file(rebased, str(out / DELTA_FILE))
    state = json.loads((parts / f"{prefix}train_state.json").read_text())
    state.setdefault("notes", []).append("trained on a GPU from float16 base weights (training/device.py)")
    (out / "train_state.json").write_text(json.dumps(state, indent=2))
    previous = json.loads((parts / f"{prefix}reader.json").read_text())
    previous.pop("confidence", None)  # the calibration belongs to other weights
    (out / "reader.json").write_text(json.dumps(previous, indent=2) + "\n")
    write_reader_config(out)
    print(f"joined {len(delta)} tensors into {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="here: write .device/ (base weights in float16, tokenizer, data)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--pool", type=Path, default=None,
                   help="SQuAD 2.0 JSON of people-written unanswerable questions, mixed in from the start")
    s = sub.add_parser("split", help="there: cut a trained reader folder into files under 16 MiB")
    s.add_argument("reader", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--prefix", default="", help="start every file name with this (one run of several)")
    j = sub.add_parser("join", help="here: a reader folder from the parts that came back")
    j.add_argument("--parts", type=Path, required=True)
    j.add_argument("--out", type=Path, required=True)
    j.add_argument("--prefix", default="", help="the run's file-name prefix given to split")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        for path in (args.data, args.pool):
            if path is not None and not path.is_file():
                parser.error(f"{path}: no such file")
        prepare(args.data, pool=args.pool)
    elif args.step == "split":
        split(args.reader, args.out, args.prefix)
    else:
        join(args.parts, args.out, args.prefix)


if __name__ == "__main__":
    main()
