"""Run the page and the API on uvicorn: listen first (a taken port is a one-line error before any
model loads), say where, serve until Ctrl-C, then shut down cleanly.

The socket is bound here rather than by uvicorn so that the address printed is the one really
listened on (`--port 0` picks a free port, which the tests and the benchmark use), and so that the
errors are ours: uvicorn logs a bind failure and calls sys.exit.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import signal
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Callable

from article_qa.index.printable import quoted
from article_qa.web.app import LOOPBACK_HOSTS, create_app
from article_qa.web.connections import BACKLOG, Limits, protocol_class
from article_qa.web.service import Service

SHUTDOWN_GRACE_S = 3  # answers in flight get this long after Ctrl-C; a second Ctrl-C stops at once


class ServeError(Exception):
    """The server cannot start (bad host, port taken); str(err) is a one-line message."""


class NotLoopbackWarning(UserWarning):
    """The server listens on an address other machines may reach."""


@dataclass
class Listener:
    """A bound, listening socket and how to reach it."""

    sock: socket.socket
    host: str  # as the user gave it
    url: str  # what to open in a browser on this machine
    loopback: bool

    def close(self) -> None:
        self.sock.close()


def listen(host: str = "127.0.0.1", port: int = 8765) -> Listener:
    """Bind and listen on host:port (port 0: any free port); warn when the address is not loopback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise ServeError(f"cannot listen on {quoted(host)}: {getattr(err, 'strerror', None) or err}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        hint = " (another server is using it: pass --port)" if err.errno == errno.EADDRINUSE else ""
        raise ServeError(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}") from None
    bound = ipaddress.ip_address(sock.getsockname()[0].split("%")[0])
    bound_port = sock.getsockname()[1]
    loopback = bound.is_loopback
    # 0.0.0.0 or :: (every interface): a browser on this machine reaches it through loopback.
    ip = ipaddress.ip_address("::1" if bound.version == 6 else "127.0.0.1") if bound.is_unspecified else bound
    shown = f"[{ip}]" if ip.version == 6 else str(ip)
    if not loopback:
        warnings.warn(
            f"listening on {host}:{bound_port}, which other machines may reach: anyone who can reach it can "
            "read the article and ask questions (the default --host 127.0.0.1 keeps it to this machine)",
            NotLoopbackWarning, stacklevel=2,
        )
    return Listener(sock, host, f"http://{shown}:{bound_port}/", loopback)


def build_server(qa, listener: Listener, limits: Limits | None = None):
    """A uvicorn server for `qa` on `listener` (run it with `.run(sockets=[listener.sock])`; set
    `.should_exit` to stop it from another thread, as the browser test does).

    Connections follow `web.connections` (time limits, a cap below the open-file limit). uvicorn's
    own `limit_concurrency` is not used: it counts only once a request has arrived, when the
    connection already holds a file, and logs every refusal."""
    import uvicorn

    allowed = LOOPBACK_HOSTS | {listener.host.lower().strip("[]")} if listener.loopback else None
    limits = limits or Limits.for_this_process()
    service = Service(qa)
    service.start()  # the models load while the user opens the page
    config = uvicorn.Config(
        create_app(service, allowed_hosts=allowed), http=protocol_class(limits), ws="none",
        timeout_keep_alive=limits.keep_alive_s, backlog=BACKLOG, log_level="warning", access_log=False,
        lifespan="on", server_header=False, timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return uvicorn.Server(config)


class Terminated(Exception):
    """SIGTERM arrived: stop like Ctrl-C (uvicorn shuts down, then re-raises the signal it caught)."""


@contextlib.contextmanager
def sigterm_stops_cleanly():
    """While serving on the main thread, SIGTERM raises Terminated instead of killing the process
    (exit 143): uvicorn re-sends the signal to this handler once it has shut down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(qa, listener: Listener, *, open_browser: bool = False,
          announce: Callable[[str], None] = lambda url: print(url, flush=True)) -> None:
    """Serve `qa` on `listener` until Ctrl-C or SIGTERM; returns after a clean shutdown."""
    server = build_server(qa, listener)
    announce(listener.url)
    if open_browser:
        threading.Thread(target=_open_when_started, args=(server, listener.url), daemon=True).start()
    try:
        with sigterm_stops_cleanly():
            server.run(sockets=[listener.sock])
    except (KeyboardInterrupt, Terminated):  # uvicorn shut down, then re-raised the signal it caught: done
        pass
    finally:
        listener.close()


def _open_when_started(server, url: str) -> None:
    deadline = time.monotonic() + 60
    while not server.started and not server.should_exit and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        return
    import webbrowser

    if not webbrowser.open(url):
        print(f"article-qa: no browser could be opened here; open {url} yourself", file=sys.stderr, flush=True)
