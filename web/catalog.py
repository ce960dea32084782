"""The articles `article-qa serve` shows: one article, or every article of a corpus, as the page's
list (filtered and paged) and each article's text, layout blocks and passages.

The list lives in memory (ids, titles and passage counts: small even for a large corpus); an
article's text is read from the corpus's database only when it is asked for, and the few read last
are kept encoded. Every lookup is by exact id: nothing a request sends is ever used as a path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from article_qa.index.printable import json_dumps, quoted
from article_qa.web.blocks import article_blocks

MAX_PAGE = 1000  # articles in one answer of GET /api/articles; "total" and "matched" say how many there are
MAX_FILTER_CHARS = 200
KEPT_ARTICLES = 8  # encoded articles kept (the page opens the answer's article, often the same few)


class UnknownArticle(KeyError):
    """No article of this id is served; str(err) (args[0]) is a one-line message."""


@dataclass(frozen=True)
class Entry:
    """An article as the list shows it."""

    id: str
    title: str
    source: str
    passages: int

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "source": self.source, "passages": self.passages}

    @property
    def searched(self) -> str:
        """What the filter looks in: the title and the id, case-folded."""
        return f"{self.title}\n{self.id}".casefold()


class Catalog:
    """The served articles of `qa` (an `ArticleQA` over one article or a corpus).

    A corpus's article is read through the corpus index's own SQLite connection (opened for use
    from any thread; SQLite serialises calls on it): the service's worker searches with it while
    these reads, one at a time under `_lock`, run on Starlette's thread pool."""

    def __init__(self, qa):
        self.qa = qa
        self.is_corpus = bool(getattr(qa, "is_corpus", False))
        if self.is_corpus:
            index = qa.index
            counts = dict(index.db.execute("SELECT article, count(*) FROM passages GROUP BY article"))
            self.entries = [Entry(ref.id, ref.title, ref.source, int(counts.get(ref.id, 0)))
                            for ref in index.refs.values()]
        else:
            ref = qa.article.ref()
            self.entries = [Entry(ref.id, ref.title, ref.source, len(qa.index.passages))]
        self._by_id = {entry.id: entry for entry in self.entries}
        self._searched = [entry.searched for entry in self.entries]  # folded once, not per keystroke
        self._encoded: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()  # the page's reads of the database, one at a time

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def passage_count(self) -> int:
        return sum(entry.passages for entry in self.entries)

    def page(self, query: str = "", offset: int = 0, limit: int = MAX_PAGE) -> dict:
        """The articles whose title or id hold every word of `query`, from `offset`, at most `limit`,
        in the corpus's order, with how many there are in all and how many match."""
        words = query.casefold().split()
        matched = [entry for entry, where in zip(self.entries, self._searched) if all(w in where for w in words)] \
            if words else self.entries
        return {
            "total": len(self.entries),
            "matched": len(matched),
            "offset": offset,
            "limit": limit,
            "articles": [entry.to_dict() for entry in matched[offset:offset + limit]],
        }

    def resolve(self, article_id: str) -> str | None:
        """The id to limit a question to (None for the only article there is), or UnknownArticle."""
        self._entry(article_id)
        return article_id if self.is_corpus else None

    def article(self, article_id: str) -> dict:
        """The article's id, title, source, sha256, text, layout blocks and passages (offsets of its text)."""
        entry = self._entry(article_id)
        if self.is_corpus:
            with self._lock:
                row = self.qa.index.db.execute("SELECT text, sha256 FROM articles WHERE id = ?", (entry.id,)).fetchone()
                passages = self.qa.index.db.execute(
                    'SELECT pid, start, "end" FROM passages WHERE article = ? ORDER BY ord', (entry.id,)).fetchall()
            if row is None:  # removed from the database by another process since the server started
                raise UnknownArticle(f"the article {quoted(entry.id)} is no longer in the corpus's index")
            text, sha256 = row
            spans = [{"index": pid, "start": start, "end": end} for pid, start, end in passages]
        else:
            article = self.qa.article
            text, sha256 = article.text, article.sha256
            spans = [{"index": p.index, "start": p.start, "end": p.end} for p in self.qa.index.passages]
        return {
            "id": entry.id,
            "title": entry.title,
            "source": entry.source,
            "sha256": sha256,
            "text": text,
            "blocks": [b.to_dict() for b in article_blocks(text)],
            "passages": spans,
        }

    def article_json(self, article_id: str) -> bytes:
        """`article` encoded as the API sends it; the last KEPT_ARTICLES are kept."""
        with self._lock:
            body = self._encoded.get(article_id)
            if body is not None:
                self._encoded.move_to_end(article_id)
                return body
        body = json_dumps(self.article(article_id), separators=(",", ":")).encode()
        with self._lock:
            self._encoded[article_id] = body
            while len(self._encoded) > KEPT_ARTICLES:
                self._encoded.popitem(last=False)
        return body

    def _entry(self, article_id: str) -> Entry:
        entry = self._by_id.get(article_id)
        if entry is None:
            ids = [entry.id for entry in self.entries]
            shown = ", ".join(quoted(i) for i in ids[:5]) + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")
            where = "in the corpus" if self.is_corpus else "here"
            asked = article_id if len(article_id) <= 100 else article_id[:100] + "…"
            raise UnknownArticle(f"no article {quoted(asked)} {where} (its ids: {shown}; GET /api/articles lists them)")
        return entry
