"""Reading the user's inputs and writing their outputs without surprises.

Inputs are regular files only (a FIFO, a device or a folder is refused before anything is
read, so nothing hangs), read up to a size limit checked against the file first. JSON is
parsed under a nesting limit. Outputs are written to a temporary file beside the target
and renamed over it: a failure leaves the old file whole, an existing file keeps its mode,
and symlinks and special files are never replaced.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from entrycheck.errors import EntrycheckError

MAX_TEXT_INPUT = 64 << 20   # rules, traces, baselines
MAX_JSON_DEPTH = 64
MAX_SHOWN = 120             # characters of a user's value shown in an error line


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """A user's value (a path, an argument, a message) for a one-line message: control
    and undecodable characters escaped, and cut in the middle past `limit` characters."""
    text = str(value)
    if len(text) > 4 * limit:
        text = text[: 2 * limit] + text[-2 * limit :]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    if len(text) <= limit:
        return text
    tail = limit // 3
    return text[: limit - tail - 3] + "..." + text[-tail:]


def check_regular(path: Path, what: str, verb: str = "read") -> os.stat_result:
    """The file's status, or EntrycheckError unless it is an existing regular file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise EntrycheckError(f"{shown(path)}: cannot {verb} {what}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise EntrycheckError(f"{shown(path)}: is a folder, expected {what}")
    if not stat.S_ISREG(st.st_mode):
        raise EntrycheckError(f"{shown(path)}: not a regular file (a FIFO or device?), "
                              f"expected {what}")
    return st


def lstat(path: Path, what: str) -> os.stat_result | None:
    """The status of a path itself (a link not followed), None when nothing is there;
    EntrycheckError when it cannot be looked at (a name too long, a file as a folder...)."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EntrycheckError(f"{shown(path)}: cannot use it as {what}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None


def read_bytes(path: Path, what: str, limit: int = MAX_TEXT_INPUT) -> bytes:
    """The whole of a regular file of at most `limit` bytes."""
    st = check_regular(path, what)
    if st.st_size > limit:
        raise EntrycheckError(f"{shown(path)}: {what} of {st.st_size} bytes is larger than "
                              f"the {limit >> 20} MiB allowed")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise EntrycheckError(f"{shown(path)}: not a regular file, expected {what}")
            data = f.read(limit + 1)
    except OSError as exc:
        raise EntrycheckError(f"{shown(path)}: cannot read {what}: "
                              f"{exc.strerror or exc}") from None
    if len(data) > limit:
        raise EntrycheckError(f"{shown(path)}: {what} grew past the {limit >> 20} MiB allowed")
    return data


def read_text(path: Path, what: str, limit: int = MAX_TEXT_INPUT) -> str:
    """A regular UTF-8 text file of at most `limit` bytes."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntrycheckError(f"{shown(path)}: {what} is not UTF-8 text (byte {exc.start})") \
            from None


def read_json(path: Path, what: str, limit: int = MAX_TEXT_INPUT) -> Any:
    """A JSON document from a regular file, nested at most MAX_JSON_DEPTH deep."""
    text = read_text(path, what, limit)
    if _nesting(text) > MAX_JSON_DEPTH:
        raise EntrycheckError(f"{shown(path)}: {what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise EntrycheckError(f"{shown(path)}: {what} is not valid JSON: "
                              f"{shown(exc)}") from None


def _nesting(text: str) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def write_text(path: Path, text: str, what: str = "output") -> None:
    """Write text (newline-terminated) atomically; an existing file keeps its mode, and
    anything but a regular file or a missing one is refused."""
    path = Path(path)
    mode = 0o666 & ~_umask()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise EntrycheckError(f"{shown(path)}: cannot write {what}: {exc.strerror}") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise EntrycheckError(f"{shown(path)}: is a symlink: not replacing it")
        if not stat.S_ISREG(st.st_mode):
            raise EntrycheckError(f"{shown(path)}: not a regular file: not replacing it")
        mode = stat.S_IMODE(st.st_mode)
    if not text.endswith("\n"):
        text += "\n"
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".",
                                   prefix=f".{path.name[:60]}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise EntrycheckError(f"{shown(path)}: cannot write {what}: "
                              f"{exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
