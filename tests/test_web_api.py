"""`article-qa serve`'s JSON API in process, through Starlette's test client: answers are exactly
`ask --json`'s, offsets slice the article, follow-ups work, and bad requests get a 4xx JSON error
with a message, never a 500 (the client re-raises any server exception, so a crash fails the test)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("httpx", reason="Starlette's test client needs httpx (pip install -e '.[test]')")
from starlette.testclient import TestClient  # noqa: E402

from article_qa.cli import app as cli_app  # noqa: E402
from article_qa.web.app import CONTENT_SECURITY_POLICY, MAX_BODY_BYTES, create_app  # noqa: E402
from article_qa.web.service import RequestError, Service  # noqa: E402

pytestmark = pytest.mark.slow
BASE = "http://127.0.0.1:8765"
PEACE_TALKS = "Where were the peace talks held?"
WHO_ANNOUNCED = "Who announced that Ukraine is dropping its NATO bid?"
FOLLOW_UP = "How did he speak to journalists?"


@pytest.fixture(scope="module")
def client(default_qa):
    with TestClient(create_app(Service(default_qa)), base_url=BASE) as client:
        yield client


def ask(client, question, conversation=None):
    body = {"question": question}
    if conversation is not None:
        body["conversation"] = conversation
    response = client.post("/api/ask", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_answers_equal_ask_json(client, cli_env):
    runner = CliRunner()
    for question in [PEACE_TALKS, "Who is the U.S. envoy?", "What is the capital of Peru?",
                     "Where were the \x1b[31mpeace talks\x1b[0m held?\t"]:
        result = runner.invoke(cli_app, ["ask", question, "--json"])
        assert result.exit_code == 0, result.output
        expected = json.loads(result.stdout)
        got = ask(client, question)
        conversation = got.pop("conversation")
        assert isinstance(conversation, str) and conversation
        assert got == expected


def test_offsets_slice_the_article(client, default_qa):
    article = client.get("/api/article").json()
    text = default_qa.article.text
    assert article["text"] == text
    assert article["source"] == default_qa.article.source
    assert article["passages"] == [{"index": p.index, "start": p.start, "end": p.end} for p in default_qa.index.passages]
    for block in article["blocks"]:
        assert text[block["start"] : block["end"]].strip() == text[block["start"] : block["end"]] != ""
    got = ask(client, PEACE_TALKS)
    answer = got["answer"]
    assert answer["text"] == "Brussels, Belgium"
    assert text[answer["start"] : answer["end"]] == answer["text"]
    # The answer lies in a block, so the page can mark it in place.
    assert any(b["start"] <= answer["start"] and answer["end"] <= b["end"] for b in article["blocks"])
    assert got["passages"]
    for passage in got["passages"]:
        assert text[passage["start"] : passage["end"]] == passage["text"]


def test_follow_ups_continue_a_conversation(client, default_qa):
    chat = default_qa.conversation()
    expected_first, expected_follow_up = chat.ask(WHO_ANNOUNCED).to_dict(), chat.ask(FOLLOW_UP).to_dict()
    first = ask(client, WHO_ANNOUNCED)
    conversation = first.pop("conversation")
    follow_up = ask(client, FOLLOW_UP, conversation)
    assert follow_up.pop("conversation") == conversation
    assert first == expected_first
    assert follow_up == expected_follow_up
    assert follow_up["read_as"] == "How did Zelensky speak to journalists?"
    # Without the conversation the same question is not a follow-up, and gets a new conversation.
    alone = ask(client, FOLLOW_UP)
    assert "read_as" not in alone and alone["conversation"] != conversation


def test_health_page_and_headers(client, default_qa):
    health = client.get("/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["passages"] == len(default_qa.index.passages)
    for path, media in [("/", "text/html"), ("/app.css", "text/css"), ("/app.js", "text/javascript")]:
        response = client.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith(media)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert client.post("/api/ask", json={}).headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def _chunks(total: int, size: int = 1 << 20):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


TEN_MB = 10 * 1024 * 1024
JSON = {"content-type": "application/json"}
BAD_REQUESTS = [
    ("not JSON", dict(content=b"{not json", headers=JSON), 400, "not valid JSON"),
    ("invalid UTF-8", dict(content=b'{"question": "\xff"}', headers=JSON), 400, "UTF-8"),
    ("nested too deeply", dict(content=b"[" * 100_000 + b"]" * 100_000, headers=JSON), 413, "limit"),
    ("deep but small", dict(content=b"[" * 5000 + b"]" * 5000, headers=JSON), 400, "JSON"),
    ("form, not JSON", dict(content=b"question=hi", headers={"content-type": "application/x-www-form-urlencoded"}), 415, "application/json"),
    ("no content type", dict(content=b'{"question": "hi"}'), 415, "application/json"),
    ("empty body", dict(content=b"", headers=JSON), 400, "not valid JSON"),
    ("a JSON array", dict(json=["Where?"]), 422, "JSON object"),
    ("missing question", dict(json={"q": "Where?"}), 422, 'missing "question"'),
    ("question null", dict(json={"question": None}), 422, 'missing "question"'),
    ("question a number", dict(json={"question": 7}), 422, "must be a string, not a number"),
    ("question a list", dict(json={"question": ["Where?"]}), 422, "not an array"),
    ("question a boolean", dict(json={"question": True}), 422, "not a boolean"),
    ("empty question", dict(json={"question": " \t\x1b[0m "}), 422, "empty question"),
    ("question too long", dict(json={"question": "why " * 501}), 422, "the limit is 2,000"),
    ("conversation a number", dict(json={"question": "Where?", "conversation": 3}), 422, '"conversation" must be a string'),
    ("conversation not an id", dict(json={"question": "Where?", "conversation": "../../etc/passwd"}), 422, "an id this server gave"),
    ("unknown conversation", dict(json={"question": "Where?", "conversation": "nope"}), 404, "unknown conversation 'nope'"),
    ("10 MB body", dict(content=b" " * TEN_MB, headers=JSON), 413, "the limit is 16,384"),
    ("10 MB body, chunked", dict(content=_chunks(TEN_MB), headers=JSON), 413, "over the limit"),
]


@pytest.mark.parametrize("what,request_kwargs,status,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_4xx_json_with_a_message(client, what, request_kwargs, status, message):
    if what == "10 MB body, chunked":
        request_kwargs = dict(request_kwargs, content=_chunks(TEN_MB))  # a generator is used up once
    response = client.post("/api/ask", **request_kwargs)
    assert response.status_code == status, (what, response.text)
    error = response.json()["error"]
    assert isinstance(error, str) and message in error and "\n" not in error


def test_wrong_paths_methods_and_hosts_get_json_errors(client):
    for method, path, host, status, message in [
        ("GET", "/api/ask", None, 405, "GET is not allowed"),
        ("GET", "/etc/passwd", None, 404, "no such page"),
        ("GET", "/../index/data/article.txt", None, 404, "no such page"),
        ("GET", "/static/app.js", None, 404, "no such page"),
        ("GET", "/api/health", "evil.example", 400, "answers only requests for"),
        ("GET", "/api/health", "evil.example:8765", 400, "not evil.example"),
    ]:
        headers = {"host": host} if host else {}
        response = client.request(method, path, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert message in response.json()["error"]
    for host in ["localhost:8765", "127.0.0.1", "[::1]:8765", "LOCALHOST"]:
        assert client.get("/api/health", headers={"host": host}).status_code == 200, host


def test_any_host_when_bound_beyond_loopback(default_qa):
    with TestClient(create_app(Service(default_qa), allowed_hosts=None), base_url="http://192.0.2.7:8765") as other:
        assert other.get("/api/health", headers={"host": "my-laptop.lan:8765"}).status_code == 200


def test_conversations_are_bounded_oldest_dropped(default_qa):
    service = Service(default_qa, max_conversations=2, max_turns=2)
    try:
        first = service.ask(PEACE_TALKS)["conversation"]
        second = service.ask(WHO_ANNOUNCED)["conversation"]
        assert service.ask(FOLLOW_UP, second)["read_as"] == "How did Zelensky speak to journalists?"
        service.ask("Who is the U.S. envoy?")  # a third conversation: the least recently used goes
        with pytest.raises(RequestError) as dropped:
            service.ask("And who else?", first)
        assert dropped.value.status == 404 and "dropped" in dropped.value.message
        assert service.health()["conversations"] == 2
        for question in ["Who is the U.S. envoy?", "What did he say?", "When do talks continue?"]:
            service.ask(question, second)
        assert len(service.conversations.get(second).turns) == 2  # only the latest turns are kept
    finally:
        service.close()


def test_too_many_waiting_is_503_not_a_queue(default_qa):
    service = Service(default_qa, max_waiting=0)
    try:
        with TestClient(create_app(service), base_url=BASE) as busy:
            response = busy.post("/api/ask", json={"question": PEACE_TALKS})
            assert response.status_code == 503 and "busy" in response.json()["error"]
    finally:
        service.close()


def test_body_limit_fits_the_longest_question(client):
    # The longest accepted question, every character written as a \\uXXXX escape, fits the body limit.
    body = json.dumps({"question": "é" * 2000}, ensure_ascii=True)
    assert len(body) <= MAX_BODY_BYTES
    response = client.post("/api/ask", content=body.encode(), headers=JSON)
    assert response.status_code == 200, response.text


def test_control_characters_in_the_article_are_escaped_in_json(index_dir):
    """A right-to-left override or a C1 control in an article reaches the client as \\uXXXX, as in
    `ask --json`, never raw (a client printing the field would show text that is not there)."""
    from article_qa.index.article import article_from_text
    from article_qa.qa.pipeline import ArticleQA

    text = "The envoy was Steve Witkoff.\u202e\u0085 The talks were held in Brussels on Sunday."
    qa = ArticleQA.open(article_from_text(text, "controls"), index_dir=index_dir)
    with TestClient(create_app(Service(qa)), base_url=BASE) as client:
        raw = client.get("/api/article").content
        assert b"\\u202e" in raw and b"\\u0085" in raw
        assert "\u202e".encode() not in raw and "\u0085".encode() not in raw
        assert client.get("/api/article").json()["text"] == text
        answered = client.post("/api/ask", json={"question": "Who was the envoy?\u202e"})
        assert answered.status_code == 200 and "\u202e".encode() not in answered.content
