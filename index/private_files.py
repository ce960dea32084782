"""Files in the cache folder, made and read so that the folder cannot be turned against its user.

The cache (`--index-dir`, by default the user's cache folder) holds indexes, ONNX exports, a hash
cache and the chat history, and the tool writes there on every first run. A folder that another
user owns, or may write to, could hold planted symbolic links: a run that writes
`.hashes.json.<pid>.tmp` by a predictable name through such a link overwrites whatever file the
link points to, with the runner's rights. So:

- a cache folder must belong to the user and be writable by nobody else, or it is not used at all
  (`folder_problem`; the callers keep the index in memory and say why);
- folders inside it are never followed when they are symbolic links (`private_folder`);
- temporary files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` under random names
  (`tempfile.mkstemp`) in the folder of the file they replace, then renamed over it;
- files are read with `O_NOFOLLOW`, only when they are regular files, and only up to a size limit;
- only the tool's own names are ever removed; temporary files of processes that died mid-write
  (an interrupted export leaves 87 MB) are removed by the next writer (`remove_stale_temps`);
- every folder the tool writes into (the cache folder, an index folder, `onnx`) holds its marker
  `.article-qa-cache` (`private_folder` writes it): `article-qa cache clear` removes only what
  carries it, so a folder of the user's that merely looks like the tool's is never emptied.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable

TEMP_SUFFIX = ".tmp"
# Temporary names carry the writer's pid, so a later run can tell a dead writer's leftovers from a
# live writer's work: ".index.json.1234.k2j4h1ab.tmp" (mkstemp), "encoder-….1234.tmp" and
# "encoder-….1234.raw.onnx" (the names of version 0.1, cleaned up too).
_TEMP_NAME = re.compile(r"^(?P<base>.+)\.(?P<pid>\d+)(?:\.[a-z0-9_]{8})?\.(?:tmp|raw\.onnx)$")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
MARKER = ".article-qa-cache"
_MARKER_HEAD = b"article-qa cache marker\n"
_MARKER_TEXT = _MARKER_HEAD + (
    b"article-qa writes into this folder as part of its cache; `article-qa cache clear` removes only\n"
    b"the folders that hold this file and the files of article-qa's own layout beside it.\n"
)


class UnsafeFolder(OSError):
    """A cache folder that must not be used (another user's, writable by others, a symbolic link).

    An OSError, so code that falls back to memory when the cache cannot be written does the same
    here; `strerror` says why, in words."""

    def __init__(self, path: Path, reason: str):
        super().__init__(errno.EPERM, reason, str(path))
        self.reason = reason


def _owner_problem(info: os.stat_result) -> str | None:
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    uid = _uid()
    if uid is not None and info.st_uid != uid:
        return f"it belongs to another user (uid {info.st_uid})"
    if info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and not _own_group(info.st_gid)):
        return f"other users may write to it (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _own_group(gid: int) -> bool:
    """Whether `gid` is the user's private group (named after the user, no other members), as a
    umask of 002 makes group-writable folders on systems that give each user a group of their own."""
    try:
        import grp
        import pwd

        group, user = grp.getgrgid(gid), pwd.getpwuid(os.geteuid())
    except (ImportError, KeyError):
        return False
    return gid == user.pw_gid and group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}


def _uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None  # no owners to check on Windows


def folder_problem(path: Path) -> str | None:
    """Why the cache folder `path` must not be used, or None when it may (or does not exist yet,
    and will be made private). The folder the user named may itself be a symbolic link (a cache
    moved to another disk); what it points to is checked."""
    try:
        info = os.stat(path)
    except OSError:  # missing, or not reachable: writing there fails later, with its own message
        return None
    return _owner_problem(info)


def private_folder(path: Path, parents: bool = False) -> Path:
    """Make `path` (mode 0700) unless it exists, and check it without following a symbolic link:
    it must be a folder of this user that nobody else may write to. Raises UnsafeFolder. The
    folder gets the tool's marker (`mark_folder`): the tool writes into it from now on."""
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=parents)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFolder(path, "it is a symbolic link, which is never followed")
    problem = _owner_problem(info)
    if problem:
        raise UnsafeFolder(path, problem)
    mark_folder(path)
    return path


def mark_folder(path: Path) -> None:
    """Write the marker into `path` unless it is there: the record that `cache clear` requires
    before it removes the folder (or, for the cache folder itself, anything in it)."""
    if not os.path.lexists(Path(path) / MARKER):
        write_atomic(Path(path) / MARKER, _MARKER_TEXT)


def is_marked(path: Path) -> bool:
    """Whether `path` holds the tool's marker: a regular file (not a link) that starts as the
    tool writes it."""
    try:
        return read_regular(Path(path) / MARKER, 4096).startswith(_MARKER_HEAD)
    except OSError:
        return False


def subfolder_problem(path: Path) -> str | None:
    """Like `private_folder`'s check, for a folder that may not exist (None then); never makes it."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link, which is never followed"
    return _owner_problem(info)


def temp_prefix(name: str) -> str:
    """The start of a temporary name for `name` that says which process writes it."""
    return f".{name}.{os.getpid()}."


def write_atomic(path: Path, data: bytes | Callable[[str], None], mode: int = 0o600) -> None:
    """Replace `path` with `data` (or with what `data(temp_path)` writes) in one rename.

    The temporary file is made with O_EXCL|O_NOFOLLOW under a random name in the same folder, so
    a planted file or link is never written through, and a reader sees the old file or the new one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX)
    try:
        if callable(data):
            os.close(fd)
            fd = -1
            data(tmp)
            fd = os.open(tmp, os.O_RDWR | _NOFOLLOW | _CLOEXEC)
        else:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        if mode != 0o600:
            os.fchmod(fd, mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def open_regular(path: Path) -> int:
    """A read-only descriptor of `path`, never through a symbolic link, only for a regular file.

    O_NONBLOCK keeps a planted FIFO from blocking the open; reads of a regular file ignore it."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path` (not followed if a link), at most `limit` of them.

    Raises OSError for a link, a device, a FIFO or a folder, and for a file over the limit: a
    sidecar naming /dev/zero must not read without end."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        chunks, left = [], size + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        return data
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or we cannot tell: keep its files
    return True


def is_stale_temp(name: str) -> bool:
    """Whether `name` is a temporary file of the tool's own pattern whose writer has died."""
    match = _TEMP_NAME.match(name)
    return bool(match) and not pid_alive(int(match.group("pid")))


def temp_base(name: str) -> str | None:
    """The name a temporary file of the tool's pattern stands in for (".hashes.json" for
    ".hashes.json.1234.k2j4h1ab.tmp"), or None for any other name."""
    match = _TEMP_NAME.match(name)
    return match.group("base") if match else None


def remove_stale_temps(folder: Path) -> list[str]:
    """Remove the temporary files and folders that processes now dead left in `folder` (only
    names of the tool's own pattern; links are removed, never followed). Returns their names."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_stale_temp(entry.name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            pass
    return removed


def load_private(path: Path, load: Callable[[str], None]) -> bool:
    """`load(path)` when `path` is a regular file of this user that is not a link (a history file
    planted as a link to another file is not read); False when it was not loaded."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    uid = _uid()
    if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid):
        return False
    try:
        load(str(path))
    except OSError:
        return False
    return True


def save_private(path: Path, save: Callable[[str], None]) -> bool:
    """Write `path` through `save(temp_path)` and one rename (never through a planted link), in a
    private folder; False when it could not be written (a history is not worth an error)."""
    try:
        private_folder(Path(path).parent, parents=True)
        write_atomic(Path(path), save)
    except OSError:
        return False
    return True
