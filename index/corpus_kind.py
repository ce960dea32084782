"""Whether `--article` values make a corpus or name one article, decided without importing the
corpus machinery: a single article's `ask` keeps its start-up time."""

from __future__ import annotations

import os
import re
from typing import Sequence

JSONL_SUFFIXES = (".jsonl", ".ndjson")
GLOB_MAGIC = re.compile(r"[*?[]")
_LINK = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # as `index.article.is_url`


def is_corpus(specs: Sequence[str] | None) -> bool:
    """Whether the `--article` values make a corpus (several, a folder, a glob or a JSON Lines
    file) rather than one article, which keeps the single-article index and its speed."""
    if not specs:
        return False
    if len(specs) > 1:
        return True
    spec = specs[0]
    if spec == "-" or _LINK.match(spec):  # a link is one article (`index.fetch`), even with a "?" in it
        return False
    if os.path.isdir(spec):
        return True
    if os.path.exists(spec):
        return spec.lower().endswith(JSONL_SUFFIXES)
    return bool(GLOB_MAGIC.search(spec))
