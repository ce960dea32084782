"""Shared fakes for the index tests, and a small script that builds an index in another process.

The fake embedder has the interface `index.store` uses (`model`, `max_tokens`, `token_spans`,
`encode`, `export`) and needs no model: its vectors are a hashed bag of words, deterministic across
processes, so a test can check that a loaded index holds exactly the vectors of its passages.

As a script (`python tests/helpers_index.py ...`) it opens an index with the fake embedder and
prints one JSON line with the status. `--pause` makes it print `PAUSED <point>` and sleep at one
point of the build, so a test can SIGKILL it there:
  encode            while encoding the passages (nothing written yet)
  before-replace:N  just before the N-th os.replace (1: the .faiss temp file is written but not
                    renamed; 2: the .faiss file is in place, the lexical file's temp is not renamed;
                    3: both data files are in place, the sidecar's temp file is not renamed)
  after-replace:N   just after the N-th os.replace (3: the new sidecar is in place, the old
                    data files are not yet removed)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from article_qa.index.embedding_model import ModelRef

FAKE_SHA = "f" * 64
_TOKEN = re.compile(r"\w+|[^\w\s]")


def fake_vectors(texts: list[str], dim: int = 16) -> np.ndarray:
    """Unit float32 vectors: a signed hashed bag of lower-cased words."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            h = zlib.crc32(word.encode("utf-8"))
            out[row, h % dim] += 1.0 if (h >> 16) & 1 else -1.0
        if not out[row].any():
            out[row, 0] = 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class FakeEmbedder:
    """Stands in for `index.embeddings.Embedder` without torch or a model."""

    def __init__(
        self,
        name: str = "fake-model",
        sha256: str | None = FAKE_SHA,
        max_tokens: int = 256,
        dim: int = 16,
        on_encode=None,
    ):
        self.model = ModelRef(name, f"/nonexistent/{name}", sha256)
        self.max_tokens = max_tokens
        self.dim = dim
        self.encode_calls = 0
        self.encoded_texts = 0
        self.export_calls = 0
        self.on_encode = on_encode  # called with the texts before encoding (to pause or log)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]

    def encode(self, texts: list[str], batch_size: int = 32, progress=None) -> np.ndarray:
        self.encode_calls += 1
        self.encoded_texts += len(texts)
        if self.on_encode is not None:
            self.on_encode(texts)
        vectors = fake_vectors(texts, self.dim)
        if progress:
            progress(len(texts), len(texts))
        return vectors

    def export(self):
        self.export_calls += 1
        return None


def article_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- script ---------------------------------------------------------------------------------------


def _pause(point: str) -> None:
    print(f"PAUSED {point}", flush=True)
    time.sleep(600)


def _install_pause(spec: str) -> None:
    kind, _, number = spec.partition(":")
    if kind not in ("before-replace", "after-replace"):
        return
    real_replace = os.replace
    calls = {"n": 0}

    def replace(src, dst, *args, **kwargs):
        calls["n"] += 1
        if kind == "before-replace" and calls["n"] == int(number):
            _pause(f"{spec} {Path(dst).name}")
        result = real_replace(src, dst, *args, **kwargs)
        if kind == "after-replace" and calls["n"] == int(number):
            _pause(f"{spec} {Path(dst).name}")
        return result

    os.replace = replace  # index.store calls os.replace through the os module


def main(argv: list[str] | None = None) -> int:
    from article_qa.index.article import load_article
    from article_qa.index.passages import Chunking
    from article_qa.index.store import open_index

    parser = argparse.ArgumentParser()
    parser.add_argument("--article", required=True)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--pause", default="")
    parser.add_argument("--encode-delay", type=float, default=0.0)
    parser.add_argument("--log", help="append a line here each time encode is called")
    parser.add_argument("--barrier", help="folder: wait until --parties processes are ready")
    parser.add_argument("--parties", type=int, default=1)
    args = parser.parse_args(argv)

    def on_encode(texts):
        if args.log:
            with open(args.log, "a") as f:
                f.write(f"{os.getpid()} {len(texts)}\n")
        if args.pause == "encode":
            _pause("encode")
        time.sleep(args.encode_delay)

    _install_pause(args.pause)
    article = load_article(args.article)
    embedder = FakeEmbedder(on_encode=on_encode)
    import faiss  # noqa: F401 - imported before the barrier so both processes race on open_index only

    if args.barrier:
        barrier = Path(args.barrier)
        (barrier / f"ready-{os.getpid()}").touch()
        deadline = time.monotonic() + 30
        while len(list(barrier.glob("ready-*"))) < args.parties and time.monotonic() < deadline:
            time.sleep(0.01)
    index = open_index(article, embedder, Chunking(max_tokens=args.max_tokens), Path(args.index_dir))
    status = index.status
    print(json.dumps({"action": status.action, "reason": status.reason, "passages": len(index.passages),
                      "encode_calls": embedder.encode_calls}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
