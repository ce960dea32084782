"""A small real web site for tests: an HTTP server on 127.0.0.1 (a free port) that the test starts,
serving the routes the test writes, and recording every request it gets (path and headers).

A route is a `Route`: status, headers and body, optionally a delay before answering and a body
sent in slow pieces. Stopped when the test ends (the `site` fixture of the tests that use it)."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    delay_s: float = 0.0  # before the status line
    trickle_s: float = 0.0  # between pieces of the body (then sent 100 bytes at a time, unchunked)
    length: bool = True  # send Content-Length (else the body ends when the connection closes)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict


class Site:
    """The server, its routes (path -> Route) and the requests it got, in order."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802 - the name http.server calls
                site.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = site.routes.get(self.path)
                if route is None:
                    route = Route(b"<html><body><p>no such page</p></body></html>", status=404)
                if route.delay_s:
                    time.sleep(route.delay_s)
                try:
                    self.send_response(route.status)
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    if route.length:
                        self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    if route.trickle_s:
                        for start in range(0, len(route.body), 100):
                            self.wfile.write(route.body[start:start + 100])
                            self.wfile.flush()
                            time.sleep(route.trickle_s)
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a time-out, a body too large): as a real server sees it

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def add(self, path: str, body: bytes | str = b"", **route) -> str:
        """Serve `body` at `path`; returns the page's URL."""
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **route)
        return self.url(path)

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


STORY_PAGE = """<!doctype html><html><head><title>Ferry strike ends | The Harbour Times</title>
<meta property="og:title" content="Ferry strike ends"></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather</a></li><li><a href="/subscribe">Subscribe today</a></li></ul></nav></header>
<main><article>
<h1>Ferry strike ends after nine days</h1>
<p class="byline">By Ann Reporter</p>
<p>The ferry workers of Gull Rock ended their strike on Tuesday after nine days, when the harbour board
agreed to a new contract that raises their pay by six percent over two years.</p>
<p>The first ferry left the pier at seven in the morning, carrying 212 passengers and a van of fresh bread
for the island's only bakery, which had closed for lack of flour.</p>
<div class="share"><a href="/share/fb">Share on Facebook</a> <a href="/share/tw">Share on Twitter</a></div>
<p>Union leader Maria Okafor said the agreement was fair. "We wanted to be heard, and we were," she told
reporters on the pier, adding that the workers would return to full service by Thursday.</p>
<p>The harbour board chairman, Peter Lind, said the strike had cost the board about 40,000 euros a day
in lost fares, and that the new contract would be paid for by a small rise in ticket prices.</p>
</article></main>
<aside><h2>Related stories</h2><ul><li><a href="/a">Lighthouse keeper retires at 90</a></li>
<li><a href="/b">Storm closes the northern road</a></li><li><a href="/c">Bakery wins regional prize</a></li></ul></aside>
<section id="comments"><h3>Comments</h3><p>Great news for the island!</p></section>
<footer><p>Copyright 2026 The Harbour Times. All rights reserved. Privacy policy. Cookie settings.</p></footer>
</body></html>"""

NAVIGATION_PAGE = """<!doctype html><html><head><title>Site map</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather</a></li></ul></nav></body></html>"""
