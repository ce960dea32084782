"""How the `article-qa` process starts and ends: closed standard streams made safe, SIGINT and
SIGTERM, the libraries kept quiet and offline, and the exit without the interpreter's teardown.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

# The standard streams the shell closed (`<&-`, `>&-`), by name: "stdin", "stdout", "stderr".
# Set once by `guard_standard_streams`; the commands pass what they need of it on explicitly.
_closed: set[str] = set()


def closed(stream: str) -> bool:
    """Whether the shell started us with standard `stream` ("stdin", "stdout", "stderr") closed."""
    return stream in _closed


def run(app: Callable[[], None]) -> None:
    """Run the typer `app` as the console script. Once a command is done, the process leaves
    without the interpreter's teardown: freeing two loaded models and a few hundred modules took
    0.12-0.16 s of a 0.8 s `ask`. Output is flushed and exit handlers run first, so nothing is lost."""
    guard_standard_streams()
    try:
        app()
        code: object = 0
    except SystemExit as done:
        code = done.code
    except OSError as err:  # the output cannot be written: /dev/full, a closed stdout, a disk error
        code = output_failed(err)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    _leave(code)


class _ClosedStream(io.RawIOBase):
    """Stands for a standard stream the shell closed: using it raises EBADF with words, so the user
    gets one line instead of a traceback or an answer silently lost."""

    def __init__(self, name: str):
        super().__init__()
        self.name_in_words = name

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise OSError(errno.EBADF, f"{self.name_in_words} is closed")

    def write(self, data) -> int:
        raise OSError(errno.EBADF, f"{self.name_in_words} is closed")


def guard_standard_streams() -> None:
    """Make closed standard streams safe. A closed descriptor 0-2 would be handed to the next file
    the tool opens (an index, an output file), and whatever writes to "stderr" would then write
    into it; each is held by /dev/null instead. A closed stdin or stdout reads or writes as an
    error ("standard output is closed"); a closed stderr discards messages, as the user asked."""
    for fd, key, name in ((0, "stdin", "standard input"), (1, "stdout", "standard output"),
                          (2, "stderr", "standard error")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        _closed.add(key)
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if fd == 2:
            sys.stderr = open(os.devnull, "w", encoding="utf-8")
            continue
        raw = _ClosedStream(name)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(buffered, encoding="utf-8", line_buffering=fd == 1)
        if fd == 0:
            sys.stdin = stream
        else:
            sys.stdout = stream


def output_failed(err: OSError) -> int:
    """One line for an output that cannot be written; status 1. A reader that left (`| head`)
    is not an error worth a line."""
    from article_qa.terminal.messages import error_line
    from article_qa.index.printable import printable

    if err.errno == errno.EPIPE:
        return 1
    reason = str(err.strerror or err)
    if _stdout_broken():
        line = f"cannot write the output: {reason}"
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # drop what is buffered: said once
    elif err.filename:
        line = f"{printable(str(err.filename))}: {reason}"
    else:
        line = reason  # e.g. "standard input is closed"
    try:
        error_line(line)
    except OSError:
        pass
    return 1


def _stdout_broken() -> bool:
    if closed("stdout"):
        return True
    try:
        os.write(sys.stdout.fileno(), b"")  # a 0-byte write still fails on /dev/full or a bad fd
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return True
    return False


def _leave(code: int) -> None:
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError) as err:  # a closed pipe (`| head`): the reader has what it wanted
            if stream is sys.stdout and isinstance(err, OSError) and err.errno != errno.EPIPE:
                code = code or output_failed(err)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers:
        run_exit_handlers()
    os._exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that a batch finishes its output file on the way out."""


@contextmanager
def terminated_as_interrupted():
    import signal

    def terminate(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except (ValueError, OSError):  # not the main thread (a test runner): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def ctrl_c_interrupts() -> None:
    """Ctrl-C cancels the line or the question even when the chat was started from something that
    ignores SIGINT (a shell's background job, nohup, some CI runners): Python then leaves SIGINT
    ignored at startup and Ctrl-C would do nothing at the prompt."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def quiet_libraries() -> None:
    """Keep third-party chatter off the user's terminal and the network off unless asked."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # no "Retrying in 8s" lines before our error


def offline_unless_hub(*names: Optional[str]) -> None:
    """Nothing reaches the network unless the user names a model that is not a local folder."""
    if all(n is None or Path(n).expanduser().exists() or n.lower() in {"all-minilm-l6-v2", "default"} for n in names):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
