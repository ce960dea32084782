"""Load on `article-qa serve`: `python -m bench.serve_load INDEX_DIR CLIENTS QUESTIONS CLI...`.

Run by `python -m bench` (row "serve") as a child process, like bench.latency. In one run:
1. in process: the same questions through `ArticleQA.conversation().ask`, one client's
   conversation after another (the latency a single user of the library sees);
2. a real `article-qa serve --port 0` process (the CLI command given after the arguments), with
   CLIENTS threads at once, each its own conversation over keep-alive HTTP, QUESTIONS each: per
   question latency as the client sees it (queueing included), errors, and whether each answer is
   the in-process one;
3. Ctrl-C (SIGINT) to the server: it must stop by itself, exit 0.
Also the page weight: bytes of the HTML, CSS and JS as served. Every request goes to 127.0.0.1,
every loop is bounded. Prints one JSON line prefixed with RESULT_MARKER.
"""

from __future__ import annotations

import http.client
import json
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

RESULT_MARKER = "BENCH-SERVE "
START_S = 300
REQUEST_S = 120


def client_questions(clients: int, per_client: int) -> list[list[str]]:
    from bench.questions import seed_questions, variants

    every = variants(seed_questions(), clients * per_client, offset=800)  # 400 distinct questions
    return [every[c * per_client : (c + 1) * per_client] for c in range(clients)]


def in_process(index_dir: str, work: list[list[str]]) -> tuple[list[float], list[list[dict]], float]:
    from article_qa.qa.pipeline import ArticleQA

    qa = ArticleQA.open(None, index_dir=index_dir)
    for question in ["Warm-up: " + q for q in work[0][:4]]:
        qa.ask(question)
    times, answers = [], []
    started = time.perf_counter()
    for questions in work:
        chat = qa.conversation()
        mine = []
        for question in questions:
            t = time.perf_counter()
            mine.append(chat.ask(question).to_dict())
            times.append((time.perf_counter() - t) * 1000)
        answers.append(mine)
    return times, answers, time.perf_counter() - started


def start_server(cli: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*cli, "serve", "--port", "0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and selector.select(timeout=max(0.0, deadline - time.monotonic())):
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if match:
            return proc, match.group(0)
    proc.kill()
    raise RuntimeError(f"article-qa serve printed no address: {proc.stderr.read()[-500:]}")


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_S)

    def get(self, path: str) -> bytes:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        return body

    def ask(self, question: str, conversation: str | None) -> dict:
        body = {"question": question} if conversation is None else {"question": question, "conversation": conversation}
        self.connection.request("POST", "/api/ask", json.dumps(body), {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /api/ask: {response.status} {data[:200]!r}")
        return json.loads(data)


def load(url: str, work: list[list[str]], expected: list[list[dict]]) -> dict:
    times: list[float] = []
    errors: list[str] = []
    mismatches: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(work))

    def run(c: int) -> None:
        client = Client(url)
        conversation = None
        barrier.wait()
        for i, question in enumerate(work[c]):
            t = time.perf_counter()
            try:
                got = client.ask(question, conversation)
            except Exception as err:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"client {c} question {i}: {err}")
                client = Client(url)  # a fresh connection after a failure
                continue
            elapsed = (time.perf_counter() - t) * 1000
            conversation = got.pop("conversation")
            with lock:
                times.append(elapsed)
                if got != expected[c][i]:
                    mismatches.append(f"client {c} question {i}: {question!r}")

    threads = [threading.Thread(target=run, args=(c,)) for c in range(len(work))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"server_ms": times, "errors": errors, "mismatches": mismatches, "load_wall_s": wall}


def main(argv: list[str]) -> None:
    index_dir, clients, per_client, cli = argv[0], int(argv[1]), int(argv[2]), argv[3:]
    work = client_questions(clients, per_client)
    in_process_ms, expected, in_process_wall = in_process(index_dir, work)

    proc, url = start_server(cli)
    try:
        client = Client(url)
        page = {name: len(client.get(path)) for name, path in [("html", "/"), ("css", "/app.css"), ("js", "/app.js")]}
        article_bytes = len(client.get("/api/article"))
        for question in ["Warm-up: " + q for q in work[0][:4]]:  # the server's models load (not timed)
            client.ask(question, None)
        client.connection.close()
        result = load(url, work, expected)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    print(RESULT_MARKER + json.dumps({
        **result,
        "in_process_ms": in_process_ms,
        "in_process_wall_s": in_process_wall,
        "clients": clients,
        "questions_per_client": per_client,
        "page_bytes": page,
        "article_json_bytes": article_bytes,
        "shutdown_rc": proc.returncode,
        "shutdown_stderr_tail": stderr.strip().splitlines()[-1:] if stderr.strip() else [],
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
