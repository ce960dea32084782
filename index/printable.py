"""Text from outside (file names, article text, questions) made safe to show on a terminal or in JSON.

A file name is chosen by whoever made the file, and terminals obey what they print: an escape
sequence in a name can retitle the window, hide text or fake a prompt, and a bidirectional control
such as U+202E (right-to-left override) shows "txt.exe" as "exe.txt". Every name the tool echoes goes
through `printable`, which turns such characters into visible `\\x1b` / `\\u202e` escapes.
`json_dumps` does the same for JSON, whose standard escaping leaves C1 controls (U+0080-U+009F,
which many terminals obey as escape sequences) and bidi controls raw; `\\u` escapes keep the JSON
valid and decode to the very same string.
"""

from __future__ import annotations

import json
import re

# Bidirectional formatting characters (Unicode's "Bidi_Control"), and the line/paragraph separators.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
SEPARATORS = "\u2028\u2029"
# Everything a terminal may act on, plus lone surrogates (a file name that is not UTF-8 decodes to
# them, and they cannot be written out as UTF-8 at all).
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}{SEPARATORS}\ud800-\udfff]")
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{BIDI_CONTROLS}{SEPARATORS}\ud800-\udfff]")


def escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control, bidi control and lone surrogate shown as an escape, on one line."""
    return _UNSAFE.sub(lambda m: escape_char(m.group()), text)


def quoted(name: object) -> str:
    """A name (a file, a model, a host, an encoding) in quotes for a message: `'notes.md'`, its
    controls made visible as everywhere (`printable`), never Python's `repr`."""
    return f"'{printable(str(name))}'"


def json_dumps(value, **kwargs) -> str:
    """`json.dumps(value, ensure_ascii=False)` with C1 controls, DEL, bidi controls, the Unicode
    line separators and lone surrogates written as `\\u` escapes (json escapes C0 controls itself)."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def os_error(err: OSError, name: object = None, *, verb: str = "read", thing: str = "file") -> str:
    """A file error in the words every message of the tool uses, not Python's `[Errno 2] …`.

    `name` is the file as the user named it (default: the error's own file name), shown through
    `printable`; `verb` what was being done ("read", "write", "clear"); `thing` what the file was
    for ("article", "question file"), in "article not found: notes.md".
    """
    shown = printable(str(name if name is not None else err.filename if err.filename is not None else thing))
    writing = verb != "read"
    if isinstance(err, FileNotFoundError):
        return f"cannot {verb} {shown}: its folder does not exist" if writing else f"{thing} not found: {shown}"
    if isinstance(err, NotADirectoryError):
        if writing:
            return f"cannot {verb} {shown}: a parent in the path is not a folder"
        return f"{thing} not found: {shown} (a parent in the path is a file)"
    if isinstance(err, IsADirectoryError):
        kind = thing if thing.endswith("file") else f"{thing} file"
        return f"{shown} is a directory, not {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    if isinstance(err, PermissionError):
        return f"cannot {verb} {shown}: permission denied"
    return f"cannot {verb} {shown}: {err.strerror or err}"
