"""A real `article-qa serve` server in the test process: uvicorn on a free loopback port, in a
thread, for the API and browser tests."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request

WAIT_S = 60  # a shared 2-core machine: generous, it only matters when something is wrong


@contextlib.contextmanager
def running(qa):
    """A real uvicorn server for `qa` on a free loopback port, in a thread; yields its URL."""
    from article_qa.web.server import build_server, listen

    listener = listen("127.0.0.1", 0)
    server = build_server(qa, listener)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener.sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield listener.url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    """GET `url` (or POST `body` as JSON to it): the status and the JSON it answered, errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err)


LAMP = "Lamp History\n\nThe old harbour lamp was electrified in 1901 by the town council of Kirkwall.\n\n" \
       "It was painted red in 1950 and still burns every night.\n"
BRIDGE = "Bridge News\n\nThe new Tay bridge opened in March 2024 after ten years of work, said engineer Maria Lopez.\n"


def write_news(folder):
    """A small corpus folder (the shipped article, a Markdown file in a subfolder, a text file);
    returns {id: text} of its articles, the text their offsets count in."""
    import shutil

    from article_qa.index.article import default_article_path, load_article

    (folder / "sub").mkdir(parents=True)
    shutil.copy(default_article_path(), folder / "ukraine.txt")
    (folder / "sub" / "lamp.md").write_text(LAMP, encoding="utf-8")
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    return {article_id: load_article(folder / article_id).text for article_id in ("ukraine.txt", "sub/lamp.md", "bridge.txt")}
