"""How `article-qa serve` treats connections, so that no client can lock the others out: uvicorn's
h11 protocol with time limits, a cap on open connections, and its own 400 answer as JSON with the
security headers.

The rules that hold (each armed per connection, on the event loop, no thread):
- a request (headers and body) must arrive within `request_s` of the connection opening or of the
  previous answer; a client that sends nothing, or one byte at a time, is disconnected then (uvicorn
  alone never times out a connection that has not yet sent a request);
- an idle kept-alive connection is closed after `keep_alive_s` (uvicorn's `timeout_keep_alive`);
- a client that stops reading an answer is disconnected once the socket's write buffer (64 kB) has
  stayed full for `stall_s`, so what is buffered per connection stays bounded (the app sends large
  bodies in chunks, each waiting for the buffer to drain);
- at most `max_connections` are open at once, fixed below the open-file limit at start (with room
  for the accept bursts still in flight); one more is answered 503 and closed at once, and the refusals
  are logged once per episode, not per attempt.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from article_qa.web.app import SECURITY_HEADERS

REQUEST_S = 10.0
KEEP_ALIVE_S = 5.0
STALL_S = 30.0
MAX_CONNECTIONS = 1000
FD_MARGIN = 32  # files the process may still open while serving (logs, a lazily loaded model)
# asyncio accepts up to `backlog` waiting connections in one go, and again on each turn of the loop
# while more wait, before the protocols of the earlier ones have run: a refused connection's file is
# closed three or four turns after its accept. So several bursts must fit under the file limit
# (measured: with 32 a burst and room for one, 150 connections at once past a cap of 59 ran out of
# files under a limit of 128); uvicorn's default of 2,048 would not fit at all.
BACKLOG = 16
BURSTS_IN_FLIGHT = 4
TIMEOUT_ENV = "ARTICLE_QA_SERVE_TIMEOUT_S"  # one value for all three time limits (the tests use 1-2 s)


@dataclass
class Limits:
    """The time limits and the connection cap of one server, and its refusal log state."""

    request_s: float = REQUEST_S
    keep_alive_s: float = KEEP_ALIVE_S
    stall_s: float = STALL_S
    max_connections: int = MAX_CONNECTIONS
    refused: int = field(default=0, compare=False)  # in the current episode of refusals

    @classmethod
    def for_this_process(cls) -> "Limits":
        """Defaults, the time limits from $ARTICLE_QA_SERVE_TIMEOUT_S when set, and the cap below the
        open-file limit: a connection is one file, and an accept that fails for lack of files makes
        asyncio log a traceback per attempt."""
        limits = cls(max_connections=connection_cap(open_file_limit(), open_files()))
        seconds = _env_seconds(TIMEOUT_ENV)
        if seconds is not None:
            limits.request_s = limits.keep_alive_s = limits.stall_s = seconds
        return limits

    def refuse(self, open_now: int) -> None:
        """Count a refused connection; the first of an episode says so on stderr."""
        self.refused += 1
        if self.refused == 1:
            _say(f"warning: {open_now} connections are open, the limit; refusing more (503) until some close")

    def accept(self) -> None:
        """A connection was accepted: an episode of refusals, if any, is over and said so once."""
        if self.refused:
            _say(f"accepting connections again ({self.refused:,} refused)")
            self.refused = 0


def open_file_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 64


def connection_cap(file_limit: int | None, open_now: int) -> int:
    """MAX_CONNECTIONS, or fewer so that they, the accept bursts still in flight (BURSTS_IN_FLIGHT x
    BACKLOG) and FD_MARGIN fit in the files left under the limit (at least 1)."""
    if file_limit is None:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, file_limit - open_now - FD_MARGIN - BURSTS_IN_FLIGHT * BACKLOG))


def protocol_class(limits: Limits) -> type:
    """The uvicorn `http` protocol class for a server with `limits`."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the rules of this module; `limits` is set by `protocol_class`."""

    limits: Limits = Limits()
    _request_timer = None
    _stall_timer = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.limits.refuse(len(self.connections))
            transport.write(_response_bytes(503, "busy: too many connections are open; try again in a moment"))
            transport.close()
            self.transport = None
            return
        self.limits.accept()
        super().connection_made(transport)
        self._arm_request_timer()

    def connection_lost(self, exc) -> None:
        if self.transport is None:  # refused in connection_made
            return
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_request_timer()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.limits.stall_s, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse: 400 as JSON `{"error": ...}` with the security headers, then close."""
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.write(_response_bytes(400, "this is not a valid HTTP request"))
        self.transport.close()

    # -- timers --
    def _arm_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
        self._request_timer = self.loop.call_later(self.limits.request_s, self._request_overdue)

    def _request_overdue(self) -> None:
        """Still waiting for (part of) a request: disconnect; a request being answered is left alone."""
        self._request_timer = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()

    def _stalled(self) -> None:
        self._stall_timer = None
        if not self.transport.is_closing():
            self.transport.abort()  # drops what is buffered; connection_lost frees the sender

    def _cancel_timers(self) -> None:
        for name in ("_request_timer", "_stall_timer"):
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)


def _response_bytes(status: int, message: str) -> bytes:
    """A complete `Connection: close` response with a JSON error and the security headers."""
    body = json.dumps({"error": message}).encode()
    reason = {400: "Bad Request", 503: "Service Unavailable"}[status]
    headers = {"content-type": "application/json", "content-length": str(len(body)), "connection": "close",
               **SECURITY_HEADERS}
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def _env_seconds(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _say(message: str) -> None:
    print(f"article-qa: {message}", file=sys.stderr, flush=True)
