"""`article-qa serve` over a corpus, through the real server on 127.0.0.1: the list of articles
(filtered, paged, counted), each article's text, blocks and passages by id, a clear 404 for an id
it does not serve, questions over all articles or within one (only its passages are read), and a
server of one article that answers these routes as one article and otherwise as before."""

from __future__ import annotations

import time
import urllib.parse

import pytest

from helpers_web import call, running
from test_web_serve import START_S, read_line, start_serve, stop

pytestmark = pytest.mark.slow
LAMP_QUESTION = "When was the harbour lamp electrified?"
BRIDGE_QUESTION = "When did the Tay bridge open?"


@pytest.fixture(scope="module")
def url(news_qa):
    with running(news_qa) as url:
        yield url


def article_url(url: str, article_id: str) -> str:
    return url + "api/article/" + urllib.parse.quote(article_id, safe="")


def test_the_list_names_every_article_with_its_passages_and_filters(url, news, news_qa):
    folder, texts = news
    status, listed = call(url + "api/articles")
    assert status == 200
    assert (listed["total"], listed["matched"], listed["offset"]) == (3, 3, 0)
    assert [a["id"] for a in listed["articles"]] == ["bridge.txt", "ukraine.txt", "sub/lamp.md"]  # the folder's order
    lamp = listed["articles"][2]
    assert lamp == {"id": "sub/lamp.md", "title": "Lamp History", "source": str(folder / "sub" / "lamp.md"),
                    "passages": len(news_qa.index.passage_ids("sub/lamp.md"))}
    assert sum(a["passages"] for a in listed["articles"]) == news_qa.index.passage_count
    health = call(url + "api/health")[1]
    assert health["articles"] == 3 and health["passages"] == news_qa.index.passage_count and "article" not in health

    # Every word of the filter, in any case, is in the title or the id; the counts say what matched.
    for query, ids in [("lamp", ["sub/lamp.md"]), ("LAMP hist", ["sub/lamp.md"]), ("sub/", ["sub/lamp.md"]),
                       ("news", ["bridge.txt"]), (".txt", ["bridge.txt", "ukraine.txt"]), ("lamp bridge", [])]:
        _, found = call(url + "api/articles?q=" + urllib.parse.quote(query))
        assert [a["id"] for a in found["articles"]] == ids, query
        assert (found["total"], found["matched"]) == (3, len(ids))
    _, paged = call(url + "api/articles?offset=1&limit=1")
    assert [a["id"] for a in paged["articles"]] == ["ukraine.txt"] and (paged["total"], paged["limit"]) == (3, 1)
    for query, word in [("limit=0", "limit"), ("limit=1001", "limit"), ("offset=-1", "offset"),
                        ("limit=%C2%B2", "limit"), ("q=" + "x" * 201, "q")]:
        status, error = call(url + "api/articles?" + query)
        assert status == 422 and f'"{word}"' in error["error"], query


def test_each_article_by_id_gives_its_text_blocks_and_passages(url, news, news_qa):
    _, texts = news
    for article_id, text in texts.items():
        status, article = call(article_url(url, article_id))
        assert status == 200, article
        assert article["id"] == article_id and article["text"] == text
        assert article["title"] == news_qa.index.refs[article_id].title
        passages = news_qa.index.passages(news_qa.index.passage_ids(article_id).tolist())
        assert article["passages"] == [{"index": p.index, "start": p.start, "end": p.end} for p in passages] != []
        for p in passages:
            assert text[p.start:p.end] == p.text
        for block in article["blocks"]:
            assert text[block["start"]:block["end"]].strip() == text[block["start"]:block["end"]] != ""
    # The id's slash may come as it is, too.
    assert call(url + "api/article/sub/lamp.md")[1]["text"] == texts["sub/lamp.md"]


def test_an_id_it_does_not_serve_is_a_clear_404(url):
    for path in ["api/article/nope.txt", "api/article/..%2F..%2Fetc%2Fpasswd", "api/article/"]:
        status, error = call(url + path)
        assert status == 404 and error["error"].startswith("no article '") and "in the corpus (its ids: " in error["error"], path
    assert "'nope.txt'" in call(url + "api/article/nope.txt")[1]["error"]
    status, error = call(url + "api/article")
    assert status == 404 and "holds 3 articles" in error["error"] and "GET /api/articles" in error["error"]
    status, error = call(url + "api/ask", {"question": LAMP_QUESTION, "article": "nope.txt"})
    assert status == 404 and error["error"].startswith("no article 'nope.txt' in the corpus")
    status, error = call(url + "api/ask", {"question": LAMP_QUESTION, "article": 3})
    assert status == 422 and '"article" must be a string' in error["error"]


def test_a_question_searches_every_article_and_names_the_answers(url, news, news_qa):
    _, texts = news
    status, got = call(url + "api/ask", {"question": LAMP_QUESTION})
    assert status == 200, got
    got.pop("conversation")
    assert got == news_qa.conversation().ask(LAMP_QUESTION).to_dict()
    answer = got["answer"]
    assert answer["text"] == "1901" and answer["article"]["id"] == "sub/lamp.md"
    assert texts["sub/lamp.md"][answer["start"]:answer["end"]] == "1901"
    for passage in got["passages"]:
        assert texts[passage["article"]["id"]][passage["start"]:passage["end"]] == passage["text"]
    assert len({p["article"]["id"] for p in got["passages"]}) > 1  # the search went through all of them


def test_asking_within_one_article_reads_only_its_passages(url, news, news_qa):
    _, texts = news
    status, got = call(url + "api/ask", {"question": LAMP_QUESTION, "article": "bridge.txt"})
    assert status == 200, got
    conversation = got.pop("conversation")
    assert got == news_qa.conversation().ask(LAMP_QUESTION, within="bridge.txt").to_dict()
    assert got["passages"] and {p["article"]["id"] for p in got["passages"]} == {"bridge.txt"}
    assert got["answer"] is None or got["answer"]["article"]["id"] == "bridge.txt"
    for passage in got["passages"]:
        assert texts["bridge.txt"][passage["start"]:passage["end"]] == passage["text"]
    # The same conversation may go on over all the articles, or within another.
    _, wide = call(url + "api/ask", {"question": BRIDGE_QUESTION, "conversation": conversation})
    assert wide["conversation"] == conversation and wide["answer"]["text"] == "March 2024"
    _, lamp = call(url + "api/ask", {"question": BRIDGE_QUESTION, "article": "sub/lamp.md"})
    assert {p["article"]["id"] for p in lamp["passages"]} == {"sub/lamp.md"}


def test_one_article_answers_the_corpus_routes_as_one_article(default_qa):
    with running(default_qa) as url:
        _, listed = call(url + "api/articles")
        ref = default_qa.article.ref()
        assert listed == {"total": 1, "matched": 1, "offset": 0, "limit": 1000, "articles": [
            {"id": "default", "title": ref.title, "source": ref.source, "passages": len(default_qa.index.passages)}]}
        _, one = call(url + "api/article")
        assert call(article_url(url, "default"))[1] == one
        assert one["text"] == default_qa.article.text and one["source"] == default_qa.article.source
        assert call(url + "api/health")[1]["article"] == default_qa.article.source
        status, error = call(article_url(url, "other.txt"))
        assert status == 404 and error["error"].startswith("no article 'other.txt' here")
        question = "Where were the peace talks held?"
        _, within = call(url + "api/ask", {"question": question, "article": "default"})
        _, plain = call(url + "api/ask", {"question": question})
        within.pop("conversation"), plain.pop("conversation")
        assert within == plain and plain["answer"]["text"] == "Brussels, Belgium"
        assert call(url + "api/ask", {"question": question, "article": "other.txt"})[0] == 404


def test_serve_over_a_folder_says_how_many_articles_and_answers_there(index_dir, news, news_qa):
    folder, _ = news
    proc = start_serve(index_dir, "--article", str(folder))
    try:
        line, _ = read_line(proc, proc.stdout, r"serving .* at http://127\.0\.0\.1:\d+/", time.monotonic() + START_S)
        assert line.startswith("serving 3 articles at "), line
        url = line.split(" at ")[1]
        assert call(url + "api/articles")[1]["total"] == 3
        status, got = call(url + "api/ask", {"question": BRIDGE_QUESTION})
        assert status == 200 and got["answer"]["text"] == "March 2024" and got["answer"]["article"]["id"] == "bridge.txt"
    finally:
        code, stderr = stop(proc)
    assert code == 0 and "Traceback" not in stderr, stderr


def test_a_large_corpus_is_listed_a_page_at_a_time_and_says_how_many(tmp_path):
    """1,200 articles (the fake embedder: no model is needed to list them): one answer holds at most
    1,000, says how many there are and how many match, and the filter and the pages reach them all."""
    import json
    from types import SimpleNamespace

    from helpers_index import FakeEmbedder
    from article_qa.index.corpus_sources import list_corpus
    from article_qa.index.corpus_store import open_corpus
    from article_qa.index.passages import Chunking

    lines = tmp_path / "big.jsonl"
    lines.write_text("".join(json.dumps({"id": f"a{i:04d}", "title": ("Harbour report " if i % 100 == 7 else "Report ") + str(i),
                                         "text": f"Report {i}: the lamp was lit on day {i}."}) + "\n" for i in range(1200)))
    index = open_corpus(list_corpus([str(lines)]), FakeEmbedder(), Chunking(max_tokens=60, min_tokens=3), tmp_path / "cache")
    qa = SimpleNamespace(is_corpus=True, index=index, start_loading=lambda: None)
    with running(qa) as url:
        _, first = call(url + "api/articles")
        assert (first["total"], first["matched"], first["limit"], len(first["articles"])) == (1200, 1200, 1000, 1000)
        _, rest = call(url + "api/articles?offset=1000")
        ids = [a["id"] for a in first["articles"] + rest["articles"]]
        assert ids == [f"a{i:04d}" for i in range(1200)]
        _, harbour = call(url + "api/articles?q=harbour")
        assert harbour["matched"] == 12 and [a["title"] for a in harbour["articles"]][-1] == "Harbour report 1107"
        _, last = call(article_url(url, "a1107"))
        assert last["text"] == "Report 1107: the lamp was lit on day 1107." and last["title"] == "Harbour report 1107"
    index.close()
