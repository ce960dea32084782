"""Where article-qa keeps what it makes: one cache folder, and the names inside it.

The folder is `--index-dir`, else `$ARTICLE_QA_INDEX_DIR`, else the user's cache folder (e.g.
~/.cache/article-qa); `~` is expanded in either. Inside it:

    <16 hex>-<8 hex>/   one article's index: index.json and its data files   `index_folder`
                        (or a corpus's: corpus.sqlite and its search files, `corpus_store`)
    onnx/               the ONNX exports of the encoder and the reader         `exports`
    hashes.json         checksums of big files, by inode, size and ctime       `hash_cache`
    chat_history        the chat's line history (what the user typed)          `chat_history`
    pages/              web pages read by URL: <32 hex>.page and .json        `pages`

Everything that needs one of these asks a `CacheLayout` for it, so that the names and the rule
for choosing the folder live here only. Whether the folder may be used at all is
`index/private_files.py`'s rule (`problem`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

ENV_INDEX_DIR = "ARTICLE_QA_INDEX_DIR"
SIDECAR = "index.json"  # in an index folder: what the index depends on, and its data files
INDEX_LOCK = ".lock"  # in an index folder: held while the index is built
EXPORTS = "onnx"
HASH_CACHE_FILE = "hashes.json"
CHAT_HISTORY = "chat_history"
PAGES = "pages"  # web pages fetched by URL (index/fetch.py)
# In a corpus's index folder (`index/corpus_store.py`): its database (and SQLite's journal beside
# it while a write is in progress) and its two search files.
CORPUS_DATABASE = "corpus.sqlite"
CORPUS_DATA_FILES = re.compile(r"(vectors|lexical|ivf)-[0-9a-f]{16}\.(npz|faiss|tantivy|f16|ids)")
_INDEX_FOLDER = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")


def default_root() -> Path:
    """`$ARTICLE_QA_INDEX_DIR`, else the per-user cache folder (e.g. ~/.cache/article-qa)."""
    if os.environ.get(ENV_INDEX_DIR):
        return Path(os.environ[ENV_INDEX_DIR]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("article-qa", appauthor=False))


def index_key(article_sha256: str, model_name: str) -> str:
    """The name of an article's index folder: the article's checksum and the model's name, so that
    each (article, model) pair has its own index."""
    model = hashlib.sha256(model_name.encode()).hexdigest()[:8]
    return f"{article_sha256[:16]}-{model}"


def is_index_folder_name(name: str) -> bool:
    """Whether `name` is an index folder's (as `index_key` makes them)."""
    return bool(_INDEX_FOLDER.fullmatch(name))


@dataclass(frozen=True)
class CacheLayout:
    """The cache folder `root` and the places in it."""

    root: Path

    @classmethod
    def at(cls, index_dir: str | os.PathLike[str] | None = None) -> "CacheLayout":
        """The layout of the folder in use: `index_dir` (`~` expanded), else the default."""
        return cls(Path(index_dir).expanduser() if index_dir else default_root())

    @property
    def exports(self) -> Path:
        return self.root / EXPORTS

    @property
    def hash_cache(self) -> Path:
        return self.root / HASH_CACHE_FILE

    @property
    def chat_history(self) -> Path:
        return self.root / CHAT_HISTORY

    @property
    def pages(self) -> Path:
        return self.root / PAGES

    def index_folder(self, article_sha256: str, model_name: str) -> Path:
        return self.root / index_key(article_sha256, model_name)

    def problem(self) -> str | None:
        """Why the folder must not be used (another user's, writable by others), or None."""
        from article_qa.index.private_files import folder_problem

        return folder_problem(self.root)
