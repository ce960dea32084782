"""The server stays up for everyone (issue 22, items 10-12), tested on a real `serve` process on
127.0.0.1 with stand-in models (tests/serve_stub.py) and time limits of a second or two: idle and
slow clients are disconnected, connections are capped below the open-file limit with one line
said, a client that does not read holds little memory, a client gone mid-body or before its answer
costs nothing, SIGTERM stops cleanly, and malformed Hosts, requests and questions are refused."""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STUB = Path(__file__).resolve().parent / "serve_stub.py"


class Server:
    """A running stub server: its port, and its stderr read so far."""

    def __init__(self, *, file_limit: int | None = None, **env: str):
        environment = dict(os.environ, NO_COLOR="1", **env)
        environment.setdefault("ARTICLE_QA_SERVE_TIMEOUT_S", "1")

        def limit_files():
            if file_limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        self.proc = subprocess.Popen(
            [sys.executable, str(STUB), "--port", "0"], cwd=ROOT, env=environment, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit_files)
        line = self.proc.stdout.readline().decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, (line, self.proc.poll())
        self.port = int(match.group(1))
        self.stderr = ""

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def request(self, raw: bytes, timeout: float = 10) -> bytes:
        """Send `raw` on a new connection and read the whole answer (the server closes after it)."""
        with self.connect(timeout) as sock:
            sock.sendall(raw)
            return read_all(sock)

    def get(self, path: str, host: str = "127.0.0.1") -> bytes:
        return self.request(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())

    def post_json(self, body: dict) -> bytes:
        data = json.dumps(body).encode()
        return self.request(b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))

    def read_stderr(self, seconds: float) -> str:
        """What the server wrote on stderr within `seconds` (it keeps running)."""
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and selector.select(timeout=left):
            data = os.read(self.proc.stderr.fileno(), 65536)  # unbuffered: select stays true to it
            if not data:
                break
            self.stderr += data.decode("utf-8", "replace")
        return self.stderr

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        try:
            _, rest = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("serve did not stop within 30 s")
        self.stderr += rest.decode("utf-8", "replace")
        return self.proc.returncode


@pytest.fixture
def server_factory():
    started: list[Server] = []

    def start(**kwargs) -> Server:
        server = Server(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.communicate()


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_idle_and_slow_connections_are_dropped_and_the_server_answers_after(server_factory):
    server = server_factory()
    idle = [server.connect(timeout=5) for _ in range(50)]
    slow = server.connect(timeout=5)
    slow.sendall(b"GET /api/health HTTP/1.1\r\n")
    started = time.monotonic()
    for _ in range(8):  # a header line every 0.25 s: never a whole request within the 1 s limit
        time.sleep(0.25)
        try:
            slow.sendall(b"X-Slow: 1\r\n")
        except (BrokenPipeError, ConnectionResetError):
            break
    try:
        assert all(closed_by_server(sock) for sock in idle)
        assert closed_by_server(slow) and time.monotonic() - started < 6
    finally:
        for sock in [*idle, slow]:
            sock.close()
    assert b'"status":"ok"' in server.get("/api/health")
    assert server.stop() == 0
    assert "Traceback" not in server.stderr


def test_connections_are_capped_below_the_file_limit_and_refusals_said_once(server_factory):
    server = server_factory(file_limit=128, ARTICLE_QA_SERVE_TIMEOUT_S="15")
    held = []
    try:
        for _ in range(150):
            held.append(server.connect(timeout=5))
        time.sleep(0.5)
        refused = sum(_peek(sock).startswith(b"HTTP/1.1 503") for sock in held)
        stderr = server.read_stderr(1.5)
    finally:
        for sock in held:
            sock.close()
    assert "Traceback" not in stderr and "out of system resource" not in stderr, stderr[:2000]
    refusals = [line for line in stderr.splitlines() if "refusing more" in line]
    assert len(refusals) == 1, stderr[:2000]
    deadline = time.monotonic() + 10
    while b'"status":"ok"' not in server.get("/api/health") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert b'"status":"ok"' in server.get("/api/health")
    assert "accepting connections again" in server.read_stderr(0.5)
    assert 0 < refused < 150


def _peek(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    try:
        return sock.recv(64, socket.MSG_PEEK)
    except (BlockingIOError, TimeoutError, ConnectionResetError):  # nothing sent yet: accepted
        return b""


def test_a_client_that_does_not_read_holds_little_memory(server_factory):
    server = server_factory(ARTICLE_QA_STUB_ARTICLE_BYTES=str(5_000_000), ARTICLE_QA_SERVE_TIMEOUT_S="30")
    assert len(server.get("/api/article")) > 5_000_000  # the article's JSON is made once, here
    before = server.rss_kb()
    readers = []
    for _ in range(20):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /api/article HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        readers.append(sock)
    time.sleep(2)
    grown_mb = (server.rss_kb() - before) / 1024
    for sock in readers:
        sock.close()
    assert grown_mb < 25, f"20 clients that do not read grew the server by {grown_mb:.0f} MB"


def test_a_client_gone_mid_body_or_before_its_answer_costs_nothing(server_factory):
    server = server_factory(ARTICLE_QA_STUB_ANSWER_S="1", ARTICLE_QA_SERVE_TIMEOUT_S="30")
    with server.connect() as sock:  # says 100 bytes, sends 10, leaves
        sock.sendall(b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"question")
    first = server.connect(timeout=30)
    body = json.dumps({"question": "first"}).encode()
    ask = (b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s")
    first.sendall(ask % (len(body), body))
    time.sleep(0.3)
    for number in range(5):  # asked while "first" is answered, then abandoned
        with server.connect() as sock:
            body = json.dumps({"question": f"gone {number}"}).encode()
            sock.sendall(ask % (len(body), body))
    time.sleep(0.3)
    started = time.monotonic()
    assert b'"Brussels"' in server.post_json({"question": "last"})
    waited = time.monotonic() - started
    assert b'"Brussels"' in read_all(first)
    first.close()
    assert server.stop() == 0
    answered = re.findall(r"stub: answered (.*)", server.stderr)
    assert answered == ["first", "last"], server.stderr
    assert waited < 4
    assert "Traceback" not in server.stderr and "Exception in ASGI" not in server.stderr, server.stderr


def test_sigterm_stops_cleanly(server_factory):
    server = server_factory()
    assert b'"status":"ok"' in server.get("/api/health")
    assert server.stop(signal.SIGTERM) == 0, server.stderr
    assert server.stderr.strip().splitlines()[-1] == "article-qa: stopped"


def test_malformed_hosts_requests_and_invisible_questions_are_refused(server_factory):
    server = server_factory()
    for host in ["localhost:1@evil.com", "127.0.0.1:abc", "localhost:8765/x"]:
        answer = server.get("/api/health", host=host)
        assert answer.startswith(b"HTTP/1.1 400"), (host, answer[:200])
        assert b"answers only requests for" in answer
    assert server.get("/api/health", host="localhost:8765").startswith(b"HTTP/1.1 200")
    garbage = server.request(b"NOT HTTP\r\n\r\n")  # uvicorn's own 400
    head, _, body = garbage.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"content-security-policy: default-src 'none'" in head.lower()
    assert b"x-content-type-options: nosniff" in head.lower() and "error" in json.loads(body)
    for question in ["\u200b\u200c\u200d", "\ufeff \u2060"]:
        answer = server.post_json({"question": question})
        assert answer.startswith(b"HTTP/1.1 422") and b"empty question" in answer, answer[:300]
    assert server.stop() == 0
    assert "stub: answered" not in server.stderr
