"""Store a trained reader's delta in int8: `python -m training.quantize --reader runs/reader --out runs/reader-int8`.

Half the bytes of the float16 delta (10.7 MB instead of 21 MB in git and in the package). Each
matrix's change from the base weights is rounded to 255 levels per row; the model card measures
what that costs (the probe and the dev sets against the float16 reader). The confidence model is
kept: it reads the reader's logits, which must come out the same for the quantised reader to ship.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def quantize_reader(reader: Path, out: Path) -> None:
    from safetensors.torch import load_file, save_file

    from article_qa.qa.reader_loading import READER_CONFIG, weights_file
    from article_qa.qa.reader_network import quantize_delta
    from training.reader import write_reader_config

    config = json.loads((reader / READER_CONFIG).read_text())
    if config.get("kind") != "delta":
        raise SystemExit(f"{reader} holds no delta (kind {config.get('kind')!r}): nothing to quantise")
    out.mkdir(parents=True, exist_ok=True)
    delta = load_file(str(reader / weights_file(config)))
    save_file(quantize_delta(delta), str(out / weights_file(config)))
    for name in (READER_CONFIG, "train_state.json"):
        if (reader / name).is_file():
            shutil.copyfile(reader / name, out / name)
    state_path = out / "train_state.json"
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        state.setdefault("notes", []).append("delta stored in int8, one scale per row (training/quantize.py)")
        state_path.write_text(json.dumps(state, indent=2))
    write_reader_config(out)  # the new file's sha256; the confidence model is kept
    size = (out / weights_file(config)).stat().st_size
    print(f"{out / weights_file(config)}: {size / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", type=Path, required=True, help="a reader folder with a float16 delta")
    parser.add_argument("--out", type=Path, required=True, help="where to write the int8 reader folder")
    args = parser.parse_args(argv)
    quantize_reader(args.reader, args.out)


if __name__ == "__main__":
    main()
