"""Where a batch's answers go: checked before any work, locked, streamed, and rewritten whole on
`--resume`. A batch must never destroy or duplicate what it was given.

- Checked first, before the index is built (minutes for a big article): a missing folder, a
  folder, no permission, a full device (`/dev/full`: a write of 0 bytes already fails), a closed
  standard output.
- Never the same file as the questions or the article, compared by device and inode after links
  are followed: `batch x -o x` must not empty `x`, nor `-o` naming the article overwrite it.
- One writer at a time: an exclusive lock (flock) on the output; a second batch stops with a clear
  error instead of interleaving its lines with the first one's.
- Streamed: each record is written and flushed as it comes, so an interrupted run keeps everything
  it finished. A plain run leaves an existing output alone until its first record is ready.
- `--resume`: the records of an earlier run are read back by input line number (a cut last line
  is dropped); kept records and new answers are written in input order into a temporary file
  beside the output, which is renamed over it, the same atomic discipline as the index. The result
  is exactly one record per input line however often the job was interrupted. When interrupted
  again, the earlier run's records of the lines not reached yet are copied first, so nothing is
  lost. A file that is not an article-qa output is never replaced by `--resume`.
- CSV (`csv=True`) for spreadsheet users: one row per record, the answer's text, offsets, score and
  verdict; a text cell that a spreadsheet would run as a formula (it starts with = + - @) gets a
  leading `'`, which is removed again when the file is read back for `--resume`.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterable

from article_qa.batch.run import Done
from article_qa.index.printable import json_dumps, os_error, printable
from article_qa.qa.answer import VERDICTS

MAX_PREVIOUS_BYTES = 4 * 1024 * 1024 * 1024  # an earlier output read back for --resume
CSV_COLUMNS = ["line", "id", "conversation", "question", "read_as", "verdict", "answer", "start", "end",
               "score", "best_guess", "error"]
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_BOM = "\ufeff"


class OutputError(Exception):
    """The output cannot be used; str(err) is one line for the user."""


@dataclass(frozen=True)
class Protected:
    """A file the output must not be: the questions or the article."""

    label: str  # "the questions", "the article"
    name: str
    device: int
    inode: int


def protect(label: str, path: str | os.PathLike | None, fd: int | None = None) -> Protected | None:
    """The identity of the regular file at `path` (links followed) or behind `fd`; None when there
    is none to protect (a pipe, a terminal, a file that does not exist)."""
    try:
        info = os.fstat(fd) if fd is not None else os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return Protected(label, str(path) if path is not None else "standard input", info.st_dev, info.st_ino)


def _same_file(info: os.stat_result, name: str | None, protected: Iterable[Protected | None]) -> None:
    """Refuse an output that is one of the protected files (`name` None: standard output)."""
    if not stat.S_ISREG(info.st_mode):
        return
    for p in protected:
        if p is not None and (info.st_dev, info.st_ino) == (p.device, p.inode):
            what = "standard output" if name is None else f"the output {printable(name)}"
            raise OutputError(f"{what} is the same file as {p.label} ({printable(p.name)}); "
                              "choose another --output")


# -- formats --------------------------------------------------------------------------------------


class JsonLinesFormat:
    name = "JSON Lines"

    def header(self, to_file: bool) -> str:
        return ""

    def render(self, item: dict | Done) -> str:
        return (item.written if isinstance(item, Done) else json_dumps(item)) + "\n"

    def looks_like(self, text: str) -> bool:
        head = text.lstrip()
        return not head or head.startswith("{")

    def read(self, text: str) -> dict[int, tuple[Done | None, str]]:
        """Complete records by line: (a Done when it is an answer, None for an error; its text)."""
        found: dict[int, tuple[Done | None, str]] = {}
        for raw in _complete_lines(text):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict) or type(record.get("line")) is not int or record["line"] < 1:
                continue
            line = record["line"]
            done = _done(line, record.get("id"), record.get("question"), record.get("answer", 0), record, raw)
            if line not in found or (found[line][0] is None and done is not None):
                found[line] = (done, raw)
        return found


class CsvFormat:
    name = "CSV"

    def header(self, to_file: bool) -> str:
        # A byte-order mark is what makes spreadsheet programs read the file as UTF-8.
        return (_BOM if to_file else "") + _csv_row(CSV_COLUMNS)

    def render(self, item: dict | Done) -> str:
        if isinstance(item, Done):
            return _csv_row(item.written)
        return _csv_row([_guard(cell) if column in _TEXT_COLUMNS else cell
                         for column, cell in zip(CSV_COLUMNS, _csv_cells(item))])

    def looks_like(self, text: str) -> bool:
        head = text[len(_BOM):] if text.startswith(_BOM) else text
        return not head or head.startswith(_csv_row(CSV_COLUMNS).rstrip("\r\n"))

    def read(self, text: str) -> dict[int, tuple[Done | None, str]]:
        found: dict[int, tuple[Done | None, str]] = {}
        text = text[len(_BOM):] if text.startswith(_BOM) else text
        rows = csv.reader(io.StringIO("".join(_complete_lines(text, keep_ends=True)), newline=""))
        try:
            for n, row in enumerate(rows):
                if n == 0 or len(row) != len(CSV_COLUMNS):
                    continue
                cells = dict(zip(CSV_COLUMNS, row))
                if not cells["line"].isdigit() or int(cells["line"]) < 1:
                    continue
                line = int(cells["line"])
                answer = (_unguard(cells["answer"]) if cells["verdict"] == "answered"
                          else _unguard(cells["best_guess"]) if cells["verdict"] == "not sure" else None)
                done = None if cells["error"] or cells["verdict"] not in VERDICTS else Done(
                    line, _unguard(cells["id"]), _unguard(cells["question"]), answer, row,
                    _unguard(cells["read_as"]) or None)
                if line not in found or (found[line][0] is None and done is not None):
                    found[line] = (done, row)
        except csv.Error:  # a row cut inside a quoted cell: dropped, like a cut JSON line
            pass
        return found


_TEXT_COLUMNS = {"id", "conversation", "question", "read_as", "answer", "best_guess", "error"}


def _csv_cells(record: dict) -> list:
    if "error" in record:
        return [record["line"], record.get("id") or "", "", "", "", "error", "", "", "", "", "", record["error"]]
    answer, guess = record.get("answer"), record.get("best_guess")
    chosen = answer or guess or {}
    return [
        record["line"], record["id"], record.get("conversation") or "", record["question"],
        record.get("read_as") or "", record["verdict"], (answer or {}).get("text", ""),
        chosen.get("start", ""), chosen.get("end", ""), chosen.get("score", ""),
        (guess or {}).get("text", ""), "",
    ]


def _csv_row(cells) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def _guard(cell) -> str:
    text = "" if cell is None else str(cell)
    return "'" + text if _FORMULA.match(text) else text


def _unguard(text: str) -> str:
    return text[1:] if text.startswith("'") and _FORMULA.match(text[1:]) else text


def _done(line: int, id_, question, answer, record: dict, raw: str) -> Done | None:
    """A Done for a JSON record that is an answer (not an error), else None."""
    if "error" in record or not isinstance(id_, str) or not isinstance(question, str):
        return None
    read_as = record.get("read_as") if isinstance(record.get("read_as"), str) else None
    if answer is None:
        guess = record.get("best_guess")
        remembered = guess["text"] if isinstance(guess, dict) and isinstance(guess.get("text"), str) else None
        return Done(line, id_, question, remembered, raw, read_as)
    if isinstance(answer, dict) and isinstance(answer.get("text"), str):
        return Done(line, id_, question, answer["text"], raw, read_as)
    return None


def _complete_lines(text: str, keep_ends: bool = False) -> list[str]:
    """The lines of `text` that end with a newline: a last line cut by an interruption is dropped."""
    end = text.rfind("\n")
    lines = text[: end + 1].splitlines(keepends=True)
    return lines if keep_ends else [line.rstrip("\r\n") for line in lines]


# -- the output ------------------------------------------------------------------------------------


class BatchOutput:
    """Where records go. Use `open`, then `write` each record, then `close(complete=...)`."""

    def __init__(self, fmt, stream, name: str, to_file: bool):
        self.format = fmt
        self.stream = stream  # a text stream; flushed after every record
        self.name = name
        self.to_file = to_file
        self.previous: dict[int, Done] = {}  # kept records of an earlier run, by line (--resume)
        self._earlier: dict[int, str | list] = {}  # every complete earlier record, by line
        self._fds: list[int] = []
        self._fd: int | None = None  # the descriptor to truncate at the first write (plain runs)
        self._temp: str | None = None  # --resume: the file renamed over `_target` when closing
        self._target: str | None = None
        self._started = False
        self._created: str | None = None  # a plain run's output that did not exist before it
        self._last_line = 0
        self.kept = self.written = 0

    @classmethod
    def open(cls, target: str, *, csv: bool = False, resume: bool = False,
             protected: Iterable[Protected | None] = (), stdout_closed: bool = False) -> "BatchOutput":
        """Check and claim the output. Raises OutputError, before any answering starts.
        `stdout_closed`: the process was started with its standard output closed (`>&-`)."""
        fmt = CsvFormat() if csv else JsonLinesFormat()
        protected = list(protected)
        if target == "-":
            if resume:
                raise OutputError("--resume needs --output FILE to know what was already answered")
            return cls._stdout(fmt, protected, stdout_closed)
        path = os.path.expanduser(target)
        try:
            exists = os.path.lexists(path)
            if resume and exists:
                return cls._resumed(fmt, path, target, protected)
            out = cls._plain(fmt, path, target, protected)
            out._created = None if exists else path
            return out
        except OSError as err:
            raise OutputError(_cannot(target, err)) from None

    @classmethod
    def _stdout(cls, fmt, protected, closed: bool) -> "BatchOutput":
        stream = sys.stdout
        if stream is None or closed:
            raise OutputError("standard output is closed; write the answers to a file with --output FILE")
        try:
            fd = stream.fileno()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            fd = None  # not a real descriptor (a test runner's capture): nothing to check
        if fd is not None:
            try:
                info = os.fstat(fd)
                _same_file(info, None, protected)
                os.write(fd, b"")  # a 0-byte write still fails on /dev/full or a broken descriptor
            except OSError as err:
                raise OutputError(f"cannot write to standard output: {err.strerror or err}") from None
        return cls(fmt, stream, "standard output", to_file=False)

    @classmethod
    def _plain(cls, fmt, path: str, target: str, protected) -> "BatchOutput":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            info = os.fstat(fd)
            _same_file(info, target, protected)
            _lock(fd, target)
            os.write(fd, b"")  # /dev/full fails here, before the index is built
            stream = open(fd, "w", encoding="utf-8", newline="", closefd=False)
        except BaseException:
            os.close(fd)
            raise
        out = cls(fmt, stream, target, to_file=True)
        out._fds.append(fd)
        out._fd = fd if stat.S_ISREG(info.st_mode) else None
        return out

    @classmethod
    def _resumed(cls, fmt, path: str, target: str, protected) -> "BatchOutput":
        real = os.path.realpath(path)
        if os.path.isdir(real):
            raise OutputError(f"{printable(target)} is a folder; --output needs a file")
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        out = None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OutputError(f"--resume needs a regular file, and {printable(target)} is not one")
            _same_file(info, target, protected)
            _lock(fd, target)
            if info.st_size > MAX_PREVIOUS_BYTES:
                raise OutputError(f"{printable(target)} is too large to resume ({info.st_size} bytes)")
            text = _read_all(fd).decode("utf-8", errors="replace")
            other = JsonLinesFormat() if isinstance(fmt, CsvFormat) else CsvFormat()
            if text.strip() and not fmt.looks_like(text):
                if other.looks_like(text):
                    hint = "without --csv" if isinstance(other, JsonLinesFormat) else "with --csv"
                    raise OutputError(f"{printable(target)} holds {other.name}, not {fmt.name}; resume it {hint}")
                raise OutputError(f"{printable(target)} is not an article-qa batch output, and --resume would "
                                  "replace it; choose another --output")
            folder, base = os.path.split(real)
            _remove_dead_temps(folder, base)
            temp_fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{base}.{os.getpid()}.", suffix=".tmp")
            try:
                os.fchmod(temp_fd, stat.S_IMODE(info.st_mode))
                _lock(temp_fd, target)
                stream = open(temp_fd, "w", encoding="utf-8", newline="", closefd=False)
            except BaseException:
                os.close(temp_fd)
                os.unlink(temp)
                raise
            out = cls(fmt, stream, target, to_file=True)
            out._fds += [fd, temp_fd]
            out._temp, out._target = temp, real
            for line, (done, written) in fmt.read(text).items():
                out._earlier[line] = written
                if done is not None:
                    out.previous[line] = done
            return out
        except BaseException:
            if out is None:
                os.close(fd)
            raise

    # -- writing ------------------------------------------------------------------------------
    def write(self, item: dict | Done) -> None:
        """Write one record and flush it."""
        if not self._started:
            self._start()
        line = item.line if isinstance(item, Done) else item["line"]
        self.stream.write(self.format.render(item))
        self.stream.flush()
        self._last_line = max(self._last_line, line)
        if isinstance(item, Done):
            self.kept += 1
        else:
            self.written += 1

    def _start(self) -> None:
        self._started = True
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a plain run replaces the file, once it has something to write
        header = self.format.header(self.to_file)
        if header:
            self.stream.write(header)
            self.stream.flush()

    def close(self, complete: bool) -> None:
        """Finish: on --resume the new file replaces the old one, also when the run was interrupted
        (`complete=False`), after the earlier records of the lines not reached yet are copied."""
        try:
            if self._temp is None:
                if complete and not self._started:
                    self._start()  # nothing to write (an empty input): the output is emptied all the same
                self.stream.flush()
                if not complete and not self._started and self._created:
                    os.unlink(self._created)  # failed before its first record: leave no empty file
                return
            if not complete and not self._started:
                return  # failed before answering anything: the earlier output stays as it was
            if not self._started:
                self._start()
            if not complete:
                for line in sorted(n for n in self._earlier if n > self._last_line):
                    written = self._earlier[line]
                    self.stream.write(self.format.render(Done(line, "", "", None, written)))
            self.stream.flush()
            os.fsync(self.stream.fileno())
            os.replace(self._temp, self._target)
            self._temp = None
        finally:
            if self._temp is not None:
                try:
                    os.unlink(self._temp)
                except OSError:
                    pass
            if self.stream is not sys.stdout:
                try:
                    self.stream.close()
                except OSError:
                    pass
            for fd in self._fds:
                os.close(fd)
            self._fds = []


def _lock(fd: int, name: str) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one writer is the user's business there
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError(f"{printable(name)} is being written by another article-qa batch; wait for it "
                          "to finish or choose another --output") from None


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _remove_dead_temps(folder: str, base: str) -> None:
    """Temp files an earlier --resume of this very output left when it was killed (SIGKILL): only
    names `.<base>.<pid>.<8 random>.tmp` whose pid is gone."""
    from article_qa.index.private_files import pid_alive

    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[a-z0-9_]{8}\.tmp")
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for name in entries:
        match = pattern.fullmatch(name)
        if match and not pid_alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _cannot(target: str, err: OSError) -> str:
    if err.errno == errno.EISDIR or os.path.isdir(os.path.expanduser(target)):
        return f"{printable(target)} is a folder; --output needs a file"
    return os_error(err, target, verb="write")
