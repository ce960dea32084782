"""A link read as an article: the page fetched over HTTP(S), within limits, and kept in the cache.

`--article https://…` (and `:open URL` in chat) fetches the page here; `index.article` reads the
bytes as it reads a file (an HTML page as its story, a PDF as its text). Only the command line
opens links: the web server never fetches a URL a request names.

The rules that hold:
- only `http://` and `https://` links, also for every redirect; at most `Limits.max_redirects`
  redirects, followed here one by one (urllib's own following is turned off) so that each hop is
  checked;
- no answer for `Limits.timeout_s` seconds (connecting, or between two pieces of the body) is a
  time-out, and so is a whole fetch taking longer than that past its first byte (a server trickling
  a page byte by byte);
- a body over `Limits.max_bytes` (20 MB, the article limit) is refused, by its Content-Length
  before reading and by counting while reading; a compressed body is limited after inflating;
- the answer must be HTML (`text/html`, `application/xhtml+xml`) or a PDF (`application/pdf`, or
  any body that starts like one); a body without a type is taken when it starts like one of them;
- every failure is one line (`FetchError`): no such host, refused, a status other than 200, not
  HTML or PDF, too large, timed out, too many redirects, a certificate that does not verify.

The cache: the page is kept in the cache folder (`CacheLayout.pages`) by its URL, as its body and a
small JSON record of what the server said about it. While it is fresh it is read from there (no
request, and its text, hence its index, is the same: nothing is indexed again). Freshness follows
the server's headers as a private cache does (RFC 9111): `Cache-Control: no-store` is never kept,
`no-cache` is always revalidated, else `max-age`, else `Expires` minus `Date`, else a tenth of the
time since `Last-Modified` (at most a day), less `Age`; without any of these the page is stale at
once. A stale page with an `ETag` or `Last-Modified` is asked for again conditionally, and a 304
keeps the stored body. `refresh=True` (`--refresh`) fetches anew whatever the cache holds.
A record that does not match its body (checksum) is ignored and the page fetched again.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import time
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from article_qa.index.printable import printable

# This module is imported only when a link is read (`index.article.is_url` tells links from paths).

MAX_PAGE_BYTES = 20_000_000  # the article limit (index.article.MAX_ARTICLE_BYTES)
USER_AGENT = "article-qa/0.1 (reads one article a person asked for)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf", "application/x-pdf")
_UNTYPED = ("", "application/octet-stream", "binary/octet-stream")
_RECORD_VERSION = 1
_MAX_RECORD_BYTES = 64_000
_HEURISTIC_MAX_S = 86_400.0
_CHUNK = 1 << 16


class FetchError(ValueError):
    """A link that cannot be read as an article; str(err) is one line for the user."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 20.0
    max_bytes: int = MAX_PAGE_BYTES
    max_redirects: int = 5


@dataclass(frozen=True)
class Page:
    """What a link gave: the page's bytes and what they are (`kind` "html" or "pdf")."""

    url: str  # as the user gave it
    final_url: str  # after redirects
    kind: str
    charset: str | None
    data: bytes
    from_cache: bool = False


def fetch(url: str, cache_dir: Path | None = None, *, refresh: bool = False, limits: Limits = Limits(),
          now: float | None = None) -> Page:
    """The page at `url`, from the cache folder `cache_dir` while fresh (None: no cache), else from
    the server (kept in the cache when allowed). Raises FetchError."""
    _check_scheme(url, url)
    now = time.time() if now is None else now
    store = _Store(cache_dir) if cache_dir is not None else None
    cached = None if store is None or refresh else store.load(url, limits.max_bytes)
    if cached is not None and cached.fresh_until > now:
        return cached.page
    validators = {}
    if cached is not None:
        if cached.etag:
            validators["If-None-Match"] = cached.etag
        if cached.last_modified:
            validators["If-Modified-Since"] = cached.last_modified
    answer = _get(url, limits, validators)
    if answer.status == 304 and cached is not None:
        record = dict(cached.record, **_freshness_fields(answer.headers, now, cached.record))
        if store is not None:
            store.save_record(url, record)
        return cached.page
    page = Page(url, answer.url, answer.kind, answer.charset, answer.data)
    if store is not None and not _no_store(answer.headers):
        store.save(page, _freshness_fields(answer.headers, now, {}))
    return page


# -- the request --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    url: str
    headers: dict
    kind: str = ""
    charset: str | None = None
    data: bytes = b""


def _opener():
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None  # answered as an HTTPError with its 3xx status: followed by `_get`, checked

    return urllib.request.build_opener(NoRedirect)


def _get(url: str, limits: Limits, validators: dict) -> _Answer:
    """GET `url`, following redirects by hand; the final 200 (or 304) answer with its body."""
    import urllib.error
    import urllib.request

    opener = _opener()
    current = url
    for hop in range(limits.max_redirects + 1):
        request = urllib.request.Request(current, headers={
            "User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate",
            "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.1", **validators})
        try:
            response = opener.open(request, timeout=limits.timeout_s)
        except urllib.error.HTTPError as err:
            headers = {k.lower(): v for k, v in (err.headers or {}).items()}
            err.close()
            if err.code == 304 and validators:
                return _Answer(304, current, headers)
            if err.code in (301, 302, 303, 307, 308) and headers.get("location"):
                following = urljoin(current, headers["location"].strip())
                _check_scheme(following, url, redirect=True)
                current = following
                continue
            raise FetchError(f"cannot open {_label(url)}: the server answered {err.code} "
                             f"{_reason(err.code, err.reason)}") from None
        except (urllib.error.URLError, OSError, HTTPException, ValueError) as err:
            raise FetchError(_network_error(err, current, url, limits)) from None
        with response:
            return _read(response, url, limits)
    raise FetchError(f"cannot open {_label(url)}: it redirects more than {limits.max_redirects} times")


def _read(response, url: str, limits: Limits) -> _Answer:
    headers = {k.lower(): v for k, v in response.headers.items()}
    content_type = response.headers.get_content_type() if "content-type" in headers else ""
    charset = response.headers.get_content_charset()
    if content_type not in HTML_TYPES + PDF_TYPES + _UNTYPED:
        raise FetchError(f"cannot read {_label(url)}: it is {content_type}, not an HTML page or a PDF")
    length = headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > limits.max_bytes and not headers.get("content-encoding"):
        raise FetchError(_too_large(url, int(length), limits))
    data = _body(response, url, limits, headers.get("content-encoding", "").strip().lower())
    if data.startswith(b"%PDF-"):
        kind = "pdf"
    elif content_type in HTML_TYPES:
        kind = "html"
    elif content_type in PDF_TYPES:
        raise FetchError(f"cannot read {_label(url)}: it says it is a PDF, but it does not start like one")
    else:
        from article_qa.index.formats import detect

        if detect("", data) != "html":
            shown = content_type or "a body without a type"
            raise FetchError(f"cannot read {_label(url)}: it is {shown}, not an HTML page or a PDF")
        kind = "html"
    return _Answer(response.status, response.geturl(), headers, kind, charset, data)


def _body(response, url: str, limits: Limits, encoding: str) -> bytes:
    """The body, read piece by piece against the size limit and the deadline, inflated if compressed."""
    inflate = None
    if encoding in ("gzip", "x-gzip"):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflate = zlib.decompressobj()
    elif encoding not in ("", "identity"):
        raise FetchError(f"cannot read {_label(url)}: it is sent {encoding}-compressed, which article-qa does not read")
    deadline = time.monotonic() + limits.timeout_s
    pieces, size = [], 0
    try:
        while True:
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            if inflate is not None:
                chunk = inflate.decompress(chunk, limits.max_bytes + 1 - size)
                if inflate.unconsumed_tail:
                    raise FetchError(_too_large(url, None, limits))
            size += len(chunk)
            if size > limits.max_bytes:
                raise FetchError(_too_large(url, None, limits))
            pieces.append(chunk)
            if time.monotonic() > deadline:
                raise FetchError(f"cannot open {_label(url)}: the page did not arrive within "
                                 f"{limits.timeout_s:g} s (timed out)")
    except (OSError, HTTPException) as err:
        raise FetchError(_network_error(err, url, url, limits)) from None
    except zlib.error:
        raise FetchError(f"cannot read {_label(url)}: its compressed body is damaged") from None
    return b"".join(pieces)


def _check_scheme(target: str, url: str, redirect: bool = False) -> None:
    parts = urlsplit(target)
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "no scheme"
        if redirect:
            raise FetchError(f"cannot open {_label(url)}: it redirects to a {scheme}: address; "
                             "only http and https links are followed")
        raise FetchError(f"cannot open {_label(url)}: only http:// and https:// links are read, not {scheme}:")
    if not parts.hostname:
        raise FetchError(f"cannot open {_label(target)}: the link names no host")


def _network_error(err: Exception, current: str, url: str, limits: Limits) -> str:
    import urllib.error

    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    host = urlsplit(current).hostname or ""
    where = f"cannot open {_label(url)}"
    if isinstance(reason, socket.gaierror):
        return f"{where}: no such host {host!r} (or no network)"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"{where}: no answer within {limits.timeout_s:g} s (timed out)"
    if isinstance(reason, ConnectionRefusedError):
        return f"{where}: the connection to {host} was refused (no web server there)"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"{where}: its certificate does not verify ({reason.verify_message or 'invalid'})"
    if isinstance(reason, HTTPException):
        return f"{where}: the server's answer is not valid HTTP or was cut off ({type(reason).__name__})"
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return f"{where}: {' '.join(str(text).split())[:160]}"


def _reason(code: int, given: object) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return " ".join(str(given or "").split())[:80]


def _too_large(url: str, size: int | None, limits: Limits) -> str:
    from article_qa.index.sizes import human_size

    limit = human_size(limits.max_bytes, whole=True)
    shown = f"over {limit}" if size is None else human_size(size, round_up=True)
    return f"cannot read {_label(url)}: it is {shown}; article-qa handles articles up to {limit}"


def _label(url: str) -> str:
    return printable(url)


# -- freshness ----------------------------------------------------------------------------------------


def _directives(headers: dict) -> dict[str, str]:
    out = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            out[name.strip().lower()] = value.strip().strip('"')
    return out


def _no_store(headers: dict) -> bool:
    return "no-store" in _directives(headers)


def _date(value: str | None) -> float | None:
    import email.utils

    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed is not None and parsed.tzinfo is not None else None


def lifetime(headers: dict) -> float:
    """How many seconds a page stays fresh after it was received, from its headers (lower-case names)."""
    directives = _directives(headers)
    if "no-cache" in directives or "no-store" in directives:
        return 0.0
    if "max-age" in directives:
        try:
            life = float(int(directives["max-age"]))
        except ValueError:
            return 0.0
    else:
        date = _date(headers.get("date")) or time.time()
        expires, modified = headers.get("expires"), _date(headers.get("last-modified"))
        if expires is not None:
            when = _date(expires)
            life = (when - date) if when is not None else 0.0
        elif modified is not None:
            life = min(_HEURISTIC_MAX_S, max(0.0, (date - modified) / 10))
        else:
            life = 0.0
    try:
        age = float(int(headers.get("age", "0").strip() or 0))
    except ValueError:
        age = 0.0
    return max(0.0, life - age)


def _freshness_fields(headers: dict, now: float, before: dict) -> dict:
    """What the cache record keeps of an answer's headers (a 304 may leave a validator out)."""
    return {"fetched_at": now, "fresh_until": now + lifetime(headers),
            "etag": headers.get("etag") or before.get("etag"),
            "last_modified": headers.get("last-modified") or before.get("last_modified")}


# -- the cache ----------------------------------------------------------------------------------------


def page_key(url: str) -> str:
    """The name a URL's page has in the cache's pages folder (32 hex digits)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class _Cached:
    page: Page
    record: dict

    @property
    def fresh_until(self) -> float:
        return float(self.record.get("fresh_until") or 0.0)

    @property
    def etag(self) -> str | None:
        return self.record.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.record.get("last_modified")


class _Store:
    """The pages folder: `<key>.page` (the body) and `<key>.json` (its record), written atomically
    (`index.private_files`), read only as regular files within size limits."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def load(self, url: str, max_bytes: int) -> _Cached | None:
        from article_qa.index.private_files import read_regular

        key = page_key(url)
        try:
            record = json.loads(read_regular(self.folder / f"{key}.json", _MAX_RECORD_BYTES))
            if not isinstance(record, dict) or record.get("version") != _RECORD_VERSION or record.get("url") != url:
                return None
            data = read_regular(self.folder / f"{key}.page", max_bytes)
        except (OSError, ValueError):
            return None
        if hashlib.sha256(data).hexdigest() != record.get("sha256") or record.get("kind") not in ("html", "pdf"):
            return None
        charset = record.get("charset") if isinstance(record.get("charset"), str) else None
        page = Page(url, str(record.get("final_url") or url), record["kind"], charset, data, from_cache=True)
        return _Cached(page, record)

    def save(self, page: Page, freshness: dict) -> None:
        from article_qa.index.private_files import write_atomic

        record = {"version": _RECORD_VERSION, "url": page.url, "final_url": page.final_url, "kind": page.kind,
                  "charset": page.charset, "sha256": hashlib.sha256(page.data).hexdigest(), **freshness}
        try:
            self._folder()
            key = page_key(page.url)
            write_atomic(self.folder / f"{key}.page", page.data)
            write_atomic(self.folder / f"{key}.json", json.dumps(record).encode())
        except OSError:
            pass  # a cache that cannot be written: the page is read all the same (the index says so)

    def save_record(self, url: str, record: dict) -> None:
        from article_qa.index.private_files import write_atomic

        try:
            self._folder()
            write_atomic(self.folder / f"{page_key(url)}.json", json.dumps(record).encode())
        except OSError:
            pass

    def _folder(self) -> None:
        from article_qa.index.private_files import private_folder

        private_folder(self.folder.parent, parents=True)
        private_folder(self.folder)
