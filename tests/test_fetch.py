"""A link read as an article (index/fetch.py), against a real HTTP server on 127.0.0.1 that each
test starts (tests/helpers_site.py): the story of the page, redirects, 404, a slow server, an
oversized body, a type that is not HTML or PDF, a PDF, and the page cache (reuse, revalidation,
--refresh, no-store, cache clear)."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from helpers_pdf import make_pdf
from helpers_site import STORY_PAGE, Site
from typer.testing import CliRunner

from article_qa.cli import app
from article_qa.index.article import ArticleError, article_ref, load_article
from article_qa.index.cache import cache_usage, clear_cache
from article_qa.index.cache_layout import CacheLayout
from article_qa.index.fetch import FetchError, Limits, fetch, lifetime, page_key

FRESH = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "max-age=3600"}


@pytest.fixture()
def site():
    server = Site()
    yield server
    server.close()


@pytest.fixture()
def cache(tmp_path) -> CacheLayout:
    return CacheLayout(tmp_path / "cache")


def test_a_link_is_read_as_the_story_of_its_page(site, cache, tmp_path):
    url = site.add("/news/ferry.html", STORY_PAGE, headers=FRESH)
    article = load_article(url, cache=cache)
    saved = tmp_path / "ferry.html"
    saved.write_text(STORY_PAGE, encoding="utf-8")
    assert article.text == load_article(saved).text  # as the same page saved from the browser
    assert article.source == url and article.format == "html"
    assert "Subscribe" not in article.text and "carrying 212 passengers" in article.text
    assert article_ref(article).to_dict() == {"id": url, "title": "Ferry strike ends after nine days", "source": url}
    assert "Subscribe today" in load_article(url, cache=cache, html="whole").text


def test_a_redirect_chain_is_followed_and_the_source_stays_the_link_given(site, cache):
    final = site.add("/c", STORY_PAGE)
    site.add("/b", status=302, headers={"Location": final})
    first = site.add("/a", status=301, headers={"Location": "/b"})  # relative, as servers send them
    article = load_article(first, cache=cache)
    assert article.source == first and "ended their strike" in article.text
    assert [s.path for s in site.seen] == ["/a", "/b", "/c"]


def test_too_many_redirects_and_a_redirect_off_http_are_one_line(site, cache):
    loop = site.add("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match=r"^cannot open .*/loop: it redirects more than 2 times$"):
        fetch(loop, limits=Limits(max_redirects=2))
    assert len(site.requests("/loop")) == 3
    away = site.add("/away", status=302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(ArticleError, match=r"it redirects to a file: address; only http and https links are followed$"):
        load_article(away, cache=cache)


@pytest.mark.parametrize("link, message", [
    ("ftp://127.0.0.1/story.html", "only http:// and https:// links are read, not ftp:"),
    ("file:///etc/passwd", "only http:// and https:// links are read, not file:"),
    ("http:///story.html", "the link names no host"),
    ("http://no-such-host.invalid/story.html", "no such host 'no-such-host.invalid'"),
])
def test_links_that_cannot_be_opened_are_one_line(link, message, cache):
    with pytest.raises(ArticleError) as caught:
        load_article(link, cache=cache)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_404_is_one_line_with_exit_2(site, tmp_path, monkeypatch):
    monkeypatch.setenv("ARTICLE_QA_INDEX_DIR", str(tmp_path / "cache"))
    url = site.url("/gone.html")
    result = CliRunner().invoke(app, ["text", "--article", url])
    assert result.exit_code == 2
    assert result.stderr == f"article-qa: error: cannot open {url}: the server answered 404 Not Found\n"
    assert not (tmp_path / "cache" / "pages").exists() or not list((tmp_path / "cache" / "pages").glob("*.page"))


def test_a_slow_server_times_out(site):
    silent = site.add("/silent", STORY_PAGE, delay_s=3)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"^cannot open .*/silent: no answer within 0.5 s \(timed out\)$"):
        fetch(silent, limits=Limits(timeout_s=0.5))
    assert time.monotonic() - started < 2.5
    # a server that answers at once but trickles the page never gets past the deadline
    trickle = site.add("/trickle", STORY_PAGE, trickle_s=0.1)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"the page did not arrive within 0.5 s \(timed out\)$"):
        fetch(trickle, limits=Limits(timeout_s=0.5))
    assert time.monotonic() - started < 2.5


def test_an_oversized_body_is_refused(site):
    big = "<html><body>" + "<p>word</p>" * 2000 + "</body></html>"
    sized = site.add("/big", big)
    with pytest.raises(FetchError, match=r"it is 22.1 kB; article-qa handles articles up to 10 kB$"):  # by its length
        fetch(sized, limits=Limits(max_bytes=10_000))
    unsized = site.add("/big-unsized", big, length=False)  # no Content-Length: counted while reading
    with pytest.raises(FetchError, match=r"it is over 10 kB; article-qa handles articles up to 10 kB$"):
        fetch(unsized, limits=Limits(max_bytes=10_000))
    bomb = site.add("/bomb", gzip.compress(b"<html><body>" + b" " * 5_000_000 + b"</body></html>"),
                    headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match=r"it is over 10 kB"):  # limited after inflating
        fetch(bomb, limits=Limits(max_bytes=10_000))


def test_a_compressed_page_is_inflated(site, cache):
    url = site.add("/gz", gzip.compress(STORY_PAGE.encode()),
                   headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"})
    assert "carrying 212 passengers" in load_article(url, cache=cache).text


@pytest.mark.parametrize("content_type, shown", [("text/plain", "text/plain"), ("image/png", "image/png"),
                                                 ("application/json; charset=utf-8", "application/json")])
def test_a_type_other_than_html_or_pdf_is_refused(site, cache, content_type, shown):
    url = site.add("/data", "The ferry leaves at nine.", headers={"Content-Type": content_type})
    with pytest.raises(ArticleError) as caught:
        load_article(url, cache=cache)
    assert str(caught.value) == f"cannot read {url}: it is {shown}, not an HTML page or a PDF"


def test_a_pdf_by_link_is_read_as_its_text(site, cache):
    url = site.add("/report.pdf", make_pdf([["The ferry to Gull Rock leaves at nine in the morning."]]),
                   headers={"Content-Type": "application/pdf"})
    article = load_article(url, cache=cache)
    assert article.format == "pdf" and article.source == url
    assert "leaves at nine in the morning" in article.text
    untyped = site.add("/download", make_pdf([["A report sent without its type."]]),
                       headers={"Content-Type": "application/octet-stream"})
    assert "sent without its type" in load_article(untyped, cache=cache).text


def test_the_charset_the_server_names_is_used(site, cache):
    page = STORY_PAGE.replace("Maria Okafor", "Marïa Økafor")
    url = site.add("/latin", page.encode("latin-1", "replace"), headers={"Content-Type": "text/html; charset=latin-1"})
    assert "Marïa Økafor said" in load_article(url, cache=cache).text


def test_a_fresh_page_is_read_from_the_cache_without_a_request(site, cache):
    url = site.add("/fresh", STORY_PAGE, headers=FRESH)
    first = load_article(url, cache=cache)
    again = load_article(url, cache=cache)
    assert again == first
    assert len(site.requests("/fresh")) == 1
    assert (cache.pages / f"{page_key(url)}.page").read_bytes() == STORY_PAGE.encode()
    refreshed = load_article(url, cache=cache, refresh=True)  # --refresh: fetched anew
    assert refreshed == first
    assert len(site.requests("/fresh")) == 2
    assert "if-none-match" not in site.requests("/fresh")[1].headers


def test_a_page_that_changed_is_read_anew_when_stale(site, cache):
    url = site.add("/stale", STORY_PAGE, headers={"Content-Type": "text/html", "Cache-Control": "max-age=60"})
    fetch(url, cache.pages, now=1_000_000.0)
    site.add("/stale", STORY_PAGE.replace("212 passengers", "300 passengers"), headers={"Content-Type": "text/html"})
    assert fetch(url, cache.pages, now=1_000_030.0).from_cache  # still fresh
    later = fetch(url, cache.pages, now=1_000_090.0)
    assert not later.from_cache and b"300 passengers" in later.data
    assert len(site.requests("/stale")) == 2


def test_a_stale_page_is_revalidated_and_a_304_keeps_it(site, cache):
    url = site.add("/etag", STORY_PAGE, headers={"Content-Type": "text/html", "Cache-Control": "no-cache",
                                                 "ETag": '"v1"'})
    fetch(url, cache.pages)
    site.add("/etag", b"", status=304, headers={"ETag": '"v1"'})
    page = fetch(url, cache.pages)
    assert page.from_cache and page.data == STORY_PAGE.encode()
    assert site.requests("/etag")[1].headers["if-none-match"] == '"v1"'


def test_no_store_is_never_kept(site, cache):
    url = site.add("/private", STORY_PAGE, headers={"Content-Type": "text/html", "Cache-Control": "no-store"})
    load_article(url, cache=cache)
    load_article(url, cache=cache)
    assert len(site.requests("/private")) == 2
    assert not (cache.pages / f"{page_key(url)}.page").exists()


def test_a_record_that_does_not_match_its_page_is_ignored(site, cache):
    url = site.add("/tampered", STORY_PAGE, headers=FRESH)
    load_article(url, cache=cache)
    (cache.pages / f"{page_key(url)}.page").write_bytes(STORY_PAGE.replace("Gull Rock", "Evil Rock").encode())
    assert "Gull Rock" in load_article(url, cache=cache).text
    assert len(site.requests("/tampered")) == 2


@pytest.mark.parametrize("headers, seconds", [
    ({"cache-control": "max-age=600"}, 600),
    ({"cache-control": "public, max-age=600", "age": "100"}, 500),
    ({"cache-control": "max-age=600, no-cache"}, 0),
    ({"date": "Wed, 02 Dec 2026 10:00:00 GMT", "expires": "Wed, 02 Dec 2026 11:00:00 GMT"}, 3600),
    ({"date": "Wed, 02 Dec 2026 10:00:00 GMT", "expires": "0"}, 0),
    ({"date": "Wed, 02 Dec 2026 10:00:00 GMT", "last-modified": "Wed, 02 Dec 2026 00:00:00 GMT"}, 3600),
    ({"date": "Wed, 02 Dec 2026 10:00:00 GMT", "last-modified": "Wed, 02 Dec 2020 00:00:00 GMT"}, 86400),
    ({}, 0),
])
def test_freshness_follows_the_servers_headers(headers, seconds):
    assert lifetime(headers) == pytest.approx(seconds)


def test_cache_clear_removes_the_saved_pages_and_keeps_a_users_file(site, cache):
    url = site.add("/kept", STORY_PAGE, headers=FRESH)
    load_article(url, cache=cache)
    assert {e.kind for e in cache_usage(cache.root).entries} == {"pages"}
    mine = cache.pages / "notes.txt"
    mine.write_text("mine")
    cleared = clear_cache(cache.root)
    assert mine.read_text() == "mine" and cleared.kept == {"foreign": [1, 4]}
    assert not (cache.pages / f"{page_key(url)}.page").exists()
    mine.unlink()
    load_article(url, cache=cache, refresh=True)
    clear_cache(cache.root)
    assert not cache.pages.exists()


def test_the_cache_record_says_what_the_server_said(site, cache):
    url = site.add("/record", STORY_PAGE, headers={**FRESH, "ETag": '"abc"'})
    fetch(url, cache.pages, now=5_000.0)
    record = json.loads((cache.pages / f"{page_key(url)}.json").read_text())
    assert record["url"] == url and record["etag"] == '"abc"' and record["fresh_until"] == 5_000.0 + 3600
    assert record["kind"] == "html" and record["charset"] == "utf-8"


def test_a_host_with_no_web_server_is_one_line(cache):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ArticleError, match=r"^cannot open http://127.0.0.1:\d+/x: the connection to 127.0.0.1 was "
                                           r"refused \(no web server there\)$"):
        load_article(f"http://127.0.0.1:{port}/x", cache=cache)
