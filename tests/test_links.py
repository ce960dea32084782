"""Links and web pages through the real pipeline and the commands: a page asked about twice is
fetched and indexed once (while fresh), `--refresh` fetches it again, `:open URL` in chat, the
answers' source is the link, `--json` names the article, and the web server never fetches a link a
request names. The pages come from a real HTTP server on 127.0.0.1 the test starts."""

from __future__ import annotations

import json

import pytest
from helpers_site import STORY_PAGE, Site
from typer.testing import CliRunner

from article_qa.cli import app

pytestmark = pytest.mark.slow
FRESH = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "max-age=3600"}
UNION = "Who is the union leader?"


@pytest.fixture()
def site():
    server = Site()
    yield server
    server.close()


def run(*args, input=None):
    return CliRunner().invoke(app, list(args), input=input)


def test_a_link_asked_twice_is_fetched_and_indexed_once_until_refresh(site, cli_env):
    url = site.add("/ferry.html", STORY_PAGE, headers=FRESH)
    first = run("index", "--article", url, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["action"] == "built" and json.loads(first.stdout)["article"] == url
    again = run("index", "--article", url, "--json")
    assert json.loads(again.stdout)["action"] == "reused"
    assert len(site.requests("/ferry.html")) == 1  # fresh: read from the cache, no request
    answer = run("ask", UNION, "--article", url, "--json")
    assert answer.exit_code == 0, answer.output
    record = json.loads(answer.stdout)
    assert record["answer"]["text"] == "Maria Okafor"
    named = {"id": url, "title": "Ferry strike ends after nine days", "source": url}
    assert record["answer"]["article"] == named and all(p["article"] == named for p in record["passages"])
    assert len(site.requests("/ferry.html")) == 1
    refreshed = run("index", "--article", url, "--json", "--refresh")
    assert json.loads(refreshed.stdout)["action"] == "reused"  # fetched again, the same text: the same index
    assert len(site.requests("/ferry.html")) == 2


def test_offsets_of_an_answer_from_a_link_slice_the_text_article_qa_prints(site, cli_env):
    url = site.add("/ferry.html", STORY_PAGE, headers=FRESH)
    text = run("text", "--article", url).stdout
    record = json.loads(run("ask", "How many passengers did the first ferry carry?", "--article", url, "--json").stdout)
    answer = record["answer"]
    assert answer is not None and "212" in answer["text"]
    assert text[answer["start"]:answer["end"]] == answer["text"]


def test_ask_json_names_the_shipped_article_even_when_it_does_not_say(cli_env):
    record = json.loads(run("ask", "Who is buying Yahoo?", "--json").stdout)
    assert record["verdict"] != "answered" and record["passages"]
    assert {(p["article"]["id"], p["article"]["source"]) for p in record["passages"]} == {("default", "default article")}


def test_a_pipe_gets_no_from_line(cli_env):
    out = run("ask", "Where were the peace talks held?").stdout
    assert out.startswith("Answer: Brussels") and "from:" not in out


def test_a_bad_link_is_one_line_with_exit_2_in_ask_and_batch(site, cli_env, tmp_path):
    url = site.url("/missing.html")
    for args in (["ask", UNION, "--article", url], ["batch", "-", "--article", url]):
        result = run(*args, input="Who?\n")
        assert result.exit_code == 2, result.output
        assert result.stderr == f"article-qa: error: cannot open {url}: the server answered 404 Not Found\n"


def test_batch_answers_about_a_link(site, cli_env):
    url = site.add("/ferry.html", STORY_PAGE, headers=FRESH)
    result = run("batch", "-", "--article", url, input=UNION + "\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["answer"]["text"] == "Maria Okafor"


def test_chat_opens_a_link(site, cli_env):
    url = site.add("/ferry.html", STORY_PAGE, headers=FRESH)
    result = run("chat", input=f":open {url}\n{UNION}\n:open {site.url('/nope')}\n{UNION}\n")
    assert result.exit_code == 0, result.output
    assert f"article-qa chat · {url} · “Ferry strike ends after nine days” ·" in result.stderr
    assert result.stdout.count("Maria Okafor") >= 2  # the failed :open kept the page
    assert f"article-qa: error: cannot open {site.url('/nope')}: the server answered 404 Not Found" in result.stderr


def test_the_web_server_never_fetches_a_link_a_request_names(site, default_qa):
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from article_qa.web.app import create_app
    from article_qa.web.service import Service

    url = site.add("/ferry.html", STORY_PAGE, headers=FRESH)
    with TestClient(create_app(Service(default_qa)), base_url="http://127.0.0.1:8765") as client:
        response = client.post("/api/ask", json={"question": UNION, "article": url})
        assert response.status_code == 404  # an id among the served articles, never a link to open
        assert response.json()["error"].startswith(f"no article {url!r}")
        assert client.post("/api/ask", json={"question": "Where were the peace talks held?"}).status_code == 200
    assert site.seen == []
