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
  lost. `--resume` replaces only a batch output: every line one of its records (a `line`, an `id`,
  and an error or a question with its answer; only a last line cut by an interruption may be
  less), and, when the questions are a file, records of these questions' lines and ids. It opens
  the output without following a symbolic link and renames over the path it was given, so a link
  planted where the output should be never has its target replaced; a FIFO is refused at once.
- CSV (`csv=True`) for spreadsheet users: one row per record, the answer's text, offsets, score and
  verdict; a text cell that a spreadsheet would run as a formula (it starts with = + - @ or their
  full-width forms, also after spaces or invisible characters) gets a leading `'`, which is
  removed again when the file is read back for `--resume`.
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
from typing import Iterable, Mapping

from article_qa.batch.run import Done
from article_qa.index.printable import json_dumps, os_error, printable
from article_qa.qa.answer import VERDICTS

MAX_PREVIOUS_BYTES = 4 * 1024 * 1024 * 1024  # an earlier output read back for --resume
# "article": the id of the article the answer (or best guess) was read from; in a corpus that is
# what tells two answers apart, for one article its own id.
CSV_COLUMNS = ["line", "id", "conversation", "question", "read_as", "verdict", "answer", "article", "start", "end",
               "score", "best_guess", "error"]
# A cell a spreadsheet would run as a formula: one starting with = + - @ (or their full-width forms,
# which spreadsheets take as the same), a tab or a carriage return, also after spaces of any kind
# (a no-break space, an ideographic space) or invisible characters; after any `'` already there.
_FORMULA = re.compile(r"'*[\s\u200b-\u200d\u2060\ufeff]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]")
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

    def read(self, text: str) -> tuple[list[Earlier], int | None]:
        """The complete records, and the number of the first line that is not one (None when every
        line is; a last line cut by an interruption is dropped when it starts as a record does)."""
        records: list[Earlier] = []
        lines = _complete_lines(text)
        for number, raw in enumerate(lines, start=1):
            record = _json_record(raw)
            if record is None:
                return records, number
            records.append(record)
        tail = text[text.rfind("\n") + 1:]
        if tail and not (tail.startswith(_RECORD_START) or _RECORD_START.startswith(tail)):
            return records, len(lines) + 1
        return records, None


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

    def read(self, text: str) -> tuple[list[Earlier], int | None]:
        """Like JsonLinesFormat.read, for rows (a row cut inside a quoted cell ends the reading)."""
        records: list[Earlier] = []
        text = text[len(_BOM):] if text.startswith(_BOM) else text
        rows = csv.reader(io.StringIO("".join(_complete_lines(text, keep_ends=True)), newline=""))
        try:
            for n, row in enumerate(rows):
                if n == 0:
                    continue  # the header, which looks_like checked
                record = _csv_record(row)
                if record is None:
                    return records, rows.line_num
                records.append(record)
        except csv.Error:  # a row cut inside a quoted cell: dropped, like a cut JSON line
            pass
        return records, None


_TEXT_COLUMNS = {"id", "conversation", "question", "read_as", "answer", "article", "best_guess", "error"}


def _csv_cells(record: dict) -> list:
    if "error" in record:
        return [record["line"], record.get("id") or "", "", "", "", "error", "", "", "", "", "", "", record["error"]]
    answer, guess = record.get("answer"), record.get("best_guess")
    chosen = answer or guess or {}
    article = chosen.get("article") if isinstance(chosen.get("article"), dict) else {}
    return [
        record["line"], record["id"], record.get("conversation") or "", record["question"],
        record.get("read_as") or "", record["verdict"], (answer or {}).get("text", ""), article.get("id", ""),
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


@dataclass(frozen=True)
class Earlier:
    """A record an earlier run wrote: its line and id, the Done it stands for (None for an error
    record, which is asked again), and what is written back when it is kept."""

    line: int
    id: str | None
    done: Done | None
    written: object


_RECORD_START = '{"id": '  # how every record the batch writes begins (json_dumps of a dict, "id" first)


def _json_record(raw: str) -> Earlier | None:
    """The record a JSON line of a batch output holds, or None when it is not one: an object with
    a positive `line`, an `id`, and an `error` (text) or a `question` (text) and its `answer`."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or type(record.get("line")) is not int or record["line"] < 1:
        return None
    id_, line = record.get("id", 0), record["line"]
    if "error" in record:
        ok = isinstance(record["error"], str) and (id_ is None or isinstance(id_, str))
        return Earlier(line, id_, None, raw) if ok else None
    if not isinstance(id_, str) or "answer" not in record:
        return None
    done = _done(line, id_, record.get("question"), record["answer"], record, raw)
    return None if done is None else Earlier(line, id_, done, raw)


def _csv_record(row: list[str]) -> Earlier | None:
    """The record a CSV row of a batch output holds, or None when it is not one."""
    if len(row) != len(CSV_COLUMNS):
        return None
    cells = dict(zip(CSV_COLUMNS, row))
    if not cells["line"].isdigit() or int(cells["line"]) < 1:
        return None
    line, id_ = int(cells["line"]), _unguard(cells["id"])
    if cells["verdict"] == "error":
        return Earlier(line, id_ or None, None, row)
    if cells["verdict"] not in VERDICTS or cells["error"]:
        return None
    answer = (_unguard(cells["answer"]) if cells["verdict"] == "answered"
              else _unguard(cells["best_guess"]) if cells["verdict"] == "not sure" else None)
    done = Done(line, id_, _unguard(cells["question"]), answer, row, _unguard(cells["read_as"]) or None)
    return Earlier(line, id_, done, row)


def _done(line: int, id_, question, answer, record: dict, raw: str) -> Done | None:
    """A Done for a JSON answer record, else None."""
    if not isinstance(id_, str) or not isinstance(question, str):
        return None
    read_as = record.get("read_as") if isinstance(record.get("read_as"), str) else None
    if answer is None:
        guess = record.get("best_guess")
        remembered = guess["text"] if isinstance(guess, dict) and isinstance(guess.get("text"), str) else None
        return Done(line, id_, question, remembered, raw, read_as)
    if isinstance(answer, dict) and isinstance(answer.get("text"), str):
        return Done(line, id_, question, answer["text"], raw, read_as)
    return None


def not_of_input(records: Iterable[Earlier], input_ids: Mapping[int, str | None]) -> str | None:
    """Why `records` are not the output of the input whose lines have `input_ids` (line → id of
    each line that is not blank), or None when they are: every record is on a line of the input,
    and an answer has that line's id (an error record is retried, whatever its line holds now)."""
    for record in records:
        if record.line not in input_ids:
            return f"its line for input line {record.line}, which the questions do not have"
        expected = input_ids[record.line]
        if record.done is not None and record.id != expected:
            shown = "no id" if expected is None else f'id "{printable(expected)}"'
            return (f'its answer for input line {record.line} has id "{printable(record.id)}", '
                    f"and that line of the questions has {shown}")
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
             protected: Iterable[Protected | None] = (),
             input_ids: Mapping[int, str | None] | None = None, stdout_closed: bool = False) -> "BatchOutput":
        """Check and claim the output. Raises OutputError, before any answering starts.

        `input_ids` (line → id of every input line that is not blank) lets `--resume` check that
        the output is this input's; without it only its records' form is checked. `stdout_closed`:
        the process was started with its standard output closed (`>&-`)."""
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
                return cls._resumed(fmt, path, target, protected, input_ids)
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
    def _resumed(cls, fmt, path: str, target: str, protected, input_ids=None) -> "BatchOutput":
        fd = _open_to_resume(path, target)
        out = None
        try:
            info = os.fstat(fd)
            _same_file(info, target, protected)
            _lock(fd, target)
            if info.st_size > MAX_PREVIOUS_BYTES:
                raise OutputError(f"{printable(target)} is too large to resume ({info.st_size} bytes)")
            records = _earlier_records(fmt, _read_all(fd).decode("utf-8", errors="replace"), target, input_ids)
            folder, base = os.path.split(path)
            folder = folder or "."
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
            out._temp, out._target = temp, path  # renamed over the path itself: a link there is replaced, never followed
            for record in records:
                if record.line not in out._earlier or (record.line not in out.previous and record.done is not None):
                    out._earlier[record.line] = record.written
                    if record.done is not None:
                        out.previous[record.line] = record.done
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


def _open_to_resume(path: str, target: str) -> int:
    """A read-only descriptor of the output to resume: a regular file, never through a symbolic
    link (a link planted in a shared folder would have its target replaced), and never blocking
    (a FIFO is refused at once instead of waiting for a writer)."""
    name = printable(target)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(f"{name} is a symbolic link; --resume never writes through one (it would replace "
                          "the file it points to): give the file's own path")
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{name} is a folder; --output needs a file")
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"--resume needs a regular file, and {name} is not one")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise OutputError(f"{name} changed while it was being opened; run the batch again")
    return fd


def _earlier_records(fmt, text: str, target: str, input_ids) -> list[Earlier]:
    """The records of the output to resume; OutputError unless every line is one of fmt's records
    (and, when `input_ids` is given, of this input): anything else would be lost by the rewrite."""
    name = printable(target)
    if not text.strip():
        return []
    if not fmt.looks_like(text):
        other = JsonLinesFormat() if isinstance(fmt, CsvFormat) else CsvFormat()
        if other.looks_like(text) and other.read(text)[1] is None:
            hint = "without --csv" if isinstance(other, JsonLinesFormat) else "with --csv"
            raise OutputError(f"{name} holds {other.name}, not {fmt.name}; resume it {hint}")
        raise OutputError(f"{name} is not an article-qa batch output, and --resume would replace it; "
                          "choose another --output")
    records, bad = fmt.read(text)
    if bad is not None:
        raise OutputError(f"{name} is not an article-qa batch output (its line {bad} is not a batch record), "
                          "and --resume would replace it; choose another --output")
    why = None if input_ids is None else not_of_input(records, input_ids)
    if why:
        raise OutputError(f"{name} is not the batch output of these questions ({why}), and --resume would "
                          "replace it; choose another --output")
    return records


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
