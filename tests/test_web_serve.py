"""`article-qa serve` as a user runs it: it prints the address, answers there, stops cleanly on
Ctrl-C, says so in one line when the port is taken, and warns when it listens beyond loopback."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from article_qa.cli import app
from article_qa.web.server import NotLoopbackWarning, listen

ROOT = Path(__file__).resolve().parent.parent
START_S = 120  # loading the models on a busy 2-core machine


def read_line(proc: subprocess.Popen, stream, pattern: str, deadline: float) -> tuple[str, str]:
    """Read `stream` until a line matches `pattern`; returns (match, everything read)."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    seen = ""
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = stream.readline()
        if not line:
            break
        seen += line
        match = re.search(pattern, line)
        if match:
            return match.group(0), seen
    raise AssertionError(f"no line matching {pattern!r} (exit {proc.poll()}); read:\n{seen}")


def start_serve(index_dir: Path, *args: str, **env_changes: str) -> subprocess.Popen:
    env = dict(os.environ, ARTICLE_QA_INDEX_DIR=str(index_dir), NO_COLOR="1", PYTHONPATH=str(ROOT), **env_changes)
    return subprocess.Popen(
        [sys.executable, "-c", "from article_qa import cli; cli.main()", "serve", "--port", "0", *args],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, encoding="utf-8",
    )


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("serve did not stop within 30 s of Ctrl-C")
    return proc.returncode, stderr


@pytest.mark.slow
def test_serve_prints_its_address_answers_opens_a_browser_and_stops_on_ctrl_c(index_dir, default_qa, tmp_path):
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"  # what --open runs, through the standard BROWSER variable
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{opened}"\n', encoding="utf-8")
    browser.chmod(0o755)
    proc = start_serve(index_dir, "--open", BROWSER=f"{browser} %s")
    try:
        url, _ = read_line(proc, proc.stdout, r"http://127\.0\.0\.1:\d+/", time.monotonic() + START_S)
        with urllib.request.urlopen(url + "api/health", timeout=30) as response:
            assert json.load(response)["status"] == "ok"
        request = urllib.request.Request(
            url + "api/ask", data=json.dumps({"question": "Where were the peace talks held?"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.load(response)["answer"]["text"] == "Brussels, Belgium"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b'<script type="module" src="/app.js">' in response.read()
        deadline = time.monotonic() + 30
        while not (opened.exists() and opened.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.read_text() == url
    finally:
        code, stderr = stop(proc)
    assert code == 0, stderr
    assert stderr.strip().splitlines()[-1] == "article-qa: stopped"
    assert "Traceback" not in stderr


def test_serve_beyond_loopback_warns(tmp_path):
    # The warning comes as soon as the port is open; a missing article then stops it before any model loads.
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0", "--article", str(tmp_path / "none.txt")])
    lines = result.stderr.strip().splitlines()
    assert re.fullmatch(r"article-qa: warning: listening on 0\.0\.0\.0:\d+, which other machines may reach: "
                        r"anyone who can reach it can read the article and ask questions \(the default --host "
                        r"127\.0\.0\.1 keeps it to this machine\)", lines[0]), lines
    assert lines[1:] == [f"article-qa: error: article not found: {tmp_path / 'none.txt'}"]
    assert result.exit_code == 2


def test_taken_port_is_one_line_error_before_loading_anything():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"article-qa: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another server is using it: pass --port)")


def test_listen_reports_the_real_address_and_warns_beyond_loopback(recwarn):
    local = listen("127.0.0.1", 0)
    try:
        assert local.loopback and local.url == f"http://127.0.0.1:{local.sock.getsockname()[1]}/"
        assert not [w for w in recwarn if issubclass(w.category, NotLoopbackWarning)]
    finally:
        local.close()
    with pytest.warns(NotLoopbackWarning, match="other machines may reach"):
        everywhere = listen("0.0.0.0", 0)
    try:
        assert not everywhere.loopback
        assert everywhere.url == f"http://127.0.0.1:{everywhere.sock.getsockname()[1]}/"
    finally:
        everywhere.close()


def test_help_does_not_import_the_web_server():
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "from article_qa import cli; cli.main()", "--help"],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert done.returncode == 0 and "serve" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported
    assert not {"starlette", "uvicorn", "article_qa.web", "anyio"} & imported
