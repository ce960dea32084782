"""The HTTP side of `article-qa serve`: the page's three static files and a small JSON API.

    GET  /              the page (web/static/index.html, app.css, app.js)
    GET  /api/health         {"status": "ok", "article" (one article only), "articles", "passages",
                              "conversations", "waiting"}
    GET  /api/articles       ?q=words&offset=0&limit=1000 -> {"total", "matched", "offset", "limit",
                              "articles": [{"id", "title", "source", "passages"}]}
    GET  /api/article/{id}   {"id", "title", "source", "sha256", "text", "blocks": [{kind,start,end}],
                              "passages": [{index,start,end}]}; 404 for an id not served
    GET  /api/article        the same for a server of one article (404 over a corpus: it has many)
    POST /api/ask            {"question": "...", "conversation"?: "id", "article"?: "id"} -> `ask --json`'s
                              object + "conversation"; "article" searches that article only

Starlette rather than FastAPI: the API is three routes, FastAPI would add pydantic (the import cost
typer is pinned to avoid) and its free /docs page loads Swagger UI from a CDN, which this offline
page and its Content-Security-Policy rule out.

Safety, since a browser talks to it: the page inserts article and answer text as text (never HTML)
and the Content-Security-Policy below allows only this server's own script and style, so even a
mistake there could not run injected code; a server bound to loopback answers only requests whose
Host names loopback (a web page elsewhere cannot reach it by DNS rebinding); POST bodies must be JSON
(`Content-Type: application/json`, which a cross-site form cannot send without the browser asking
first) of at most MAX_BODY_BYTES; every error is JSON `{"error": "one line"}` with a 4xx status, and
no file path or link ever comes from a request: the articles are fixed when the server starts (a
link given to `serve --article` is fetched then, from the command line), and a request's
`"article"` is only looked up among their ids, so a page in the browser cannot make the server
read a file or reach other addresses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import re
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from article_qa.index.printable import json_dumps, quoted
from article_qa.web.service import RequestError, Service

class SafeJSONResponse(JSONResponse):
    """JSON as `--json` writes it: C1 and bidi controls, DEL and the Unicode line separators of an
    article or question escaped as \\uXXXX, so a client that prints a field raw shows no hidden text."""

    def render(self, content) -> bytes:
        return json_dumps(content, separators=(",", ":")).encode("utf-8")


# A question is at most 2,000 characters (qa.question.MAX_QUESTION_CHARS): even written with
# \uXXXX escapes it fits in 16 kB, so a larger body is not a question.
MAX_BODY_BYTES = 16 * 1024
# A large body goes out in pieces, each sent once the socket has taken the previous one, so a client
# that does not read holds at most one piece and the socket's buffer (see web.connections).
CHUNK_BYTES = 64 * 1024
ANSWER_CHECK_S = 5  # how long the worker waits to learn whether the asker is still connected

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

STATIC = {  # path -> (file in web/static, media type); nothing else is served from disk
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
}


def static_files() -> dict[str, bytes]:
    """The page's files as shipped in the package, by name."""
    folder = resources.files("article_qa.web") / "static"
    return {name: (folder / name).read_bytes() for name, _ in STATIC.values()}


def create_app(service: Service, *, allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS) -> Starlette:
    """The ASGI app. `allowed_hosts` (host names without port) guards against DNS rebinding; None
    allows any Host, for a server deliberately bound to a non-loopback address."""
    files = static_files()

    def static(path: str):
        name, media_type = STATIC[path]
        body = files[name]

        async def endpoint(request: Request) -> Response:
            return Response(body, media_type=media_type)

        return endpoint

    async def health(request: Request) -> Response:
        return SafeJSONResponse(service.health())

    async def articles(request: Request) -> Response:
        params = request.query_params
        listed = service.articles(params.get("q", ""), params.get("offset", "0"), params.get("limit"))
        return chunked(json_dumps(listed, separators=(",", ":")).encode(), "application/json")  # up to ~1,000 entries

    async def article(request: Request) -> Response:
        # A corpus's article is read from its database: off the event loop, which serves the others.
        body = await run_in_threadpool(service.article_json, request.path_params.get("id"))
        return chunked(body, "application/json")

    async def ask(request: Request) -> Response:
        body = await read_json_object(request)
        future = service.submit(body.get("question"), body.get("conversation"),
                                wanted=still_connected(request, asyncio.get_running_loop()),
                                article=body.get("article"))
        return SafeJSONResponse(await asyncio.wrap_future(future))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        try:
            yield
        finally:
            service.close()

    routes = [Route(path, static(path), methods=["GET"]) for path in STATIC]
    routes += [
        Route("/api/health", health, methods=["GET"]),
        Route("/api/articles", articles, methods=["GET"]),
        Route("/api/article", article, methods=["GET"]),
        Route("/api/article/{id:path}", article, methods=["GET"]),
        Route("/api/ask", ask, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={RequestError: _request_error, HTTPException: _http_error, 500: _server_error},
    )
    app.add_middleware(Guard, allowed_hosts=allowed_hosts)
    return app


def chunked(body: bytes, media_type: str) -> Response:
    """`body` sent CHUNK_BYTES at a time (with its Content-Length), never all buffered at once."""
    view = memoryview(body)

    async def pieces():
        for start in range(0, len(body), CHUNK_BYTES):
            yield bytes(view[start:start + CHUNK_BYTES])

    return StreamingResponse(pieces(), media_type=media_type, headers={"content-length": str(len(body))})


def still_connected(request: Request, loop: asyncio.AbstractEventLoop):
    """A check for the worker thread, just before the reader runs: is the asker still connected?
    A question whose client has gone is not answered (it would only delay the others)."""

    def check() -> bool:
        try:
            gone = asyncio.run_coroutine_threadsafe(request.is_disconnected(), loop).result(ANSWER_CHECK_S)
        except (RuntimeError, TimeoutError, concurrent.futures.CancelledError):  # loop stopping or busy: answer
            return True
        return not gone

    return check


async def read_json_object(request: Request) -> dict:
    """The POST body as a JSON object, or RequestError with what is wrong (413 before reading a body
    that says it is too large; a body without Content-Length is read only up to the limit)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise RequestError(415, 'send the body as JSON with "Content-Type: application/json"')
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise RequestError(413, f"request body is {int(length):,} bytes; the limit is {MAX_BODY_BYTES:,}")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise RequestError(413, f"request body is over the limit of {MAX_BODY_BYTES:,} bytes")
    except ClientDisconnect:  # nobody reads the answer; this only ends the request without a traceback
        raise RequestError(400, "the client disconnected before sending the whole body") from None
    try:
        value = json.loads(bytes(body))
    except UnicodeDecodeError:
        raise RequestError(400, "request body is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as err:
        raise RequestError(400, f"request body is not valid JSON: {err.msg} at column {err.colno}") from None
    except (ValueError, RecursionError) as err:  # huge integers, deep nesting
        raise RequestError(400, f"request body is not usable JSON: {str(err).splitlines()[0][:120]}") from None
    if not isinstance(value, dict):
        raise RequestError(422, 'request body must be a JSON object like {"question": "..."}')
    return value


def _error(status: int, message: str) -> JSONResponse:
    return SafeJSONResponse({"error": message}, status_code=status)


async def _request_error(request: Request, exc: RequestError) -> Response:
    return _error(exc.status, exc.message)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    messages = {404: f"no such page: {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    response = _error(exc.status_code, messages.get(exc.status_code, str(exc.detail)))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error(500, f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


class Guard:
    """Pure ASGI middleware: refuses a Host that is not allowed and adds the security headers to
    every response (errors included)."""

    def __init__(self, app, allowed_hosts: frozenset[str] | None):
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        if self.allowed_hosts is not None:
            raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            host = _host_name(raw)
            if host not in self.allowed_hosts:
                shown = host or (f"the malformed Host {quoted(raw[:100])}" if raw.strip() else "a missing Host")
                response = _error(400, f"this server answers only requests for {', '.join(sorted(self.allowed_hosts))}, not {shown}")
                await response(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


_HOST = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{1,5})?")


def _host_name(host: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1', '[::1]:8765' -> '::1', 'LocalHost' -> 'localhost'; a value
    that is not a host name or [IPv6] with an optional numeric port ('localhost:1@evil.com',
    '127.0.0.1:abc') -> '' (refused like a missing Host)."""
    match = _HOST.fullmatch(host.strip().lower())
    if not match:
        return ""
    return match.group("ip6") or match.group("name")
