"""The on-disk cache: analyses and indexes as plain data, never code.

An entry is a JSON header line (the format, the key, a CRC-32 of the rest, the sizes of its
parts), then zlib-compressed parts: the data as JSON, and raw byte blobs (arrays of
numbers) that are inflated only when asked for, so a query reads the one graph it needs.
Loading one runs nothing from the file. Each entry is named by a digest of its key (the
image's build-id, what was asked, and the versions of everything that shapes the result:
this package's code, the knowledge data, the decoder and ELF libraries) and repeats the key
inside, so a collision or a file copied under another name is a miss. The folder is
created 0700; entries owned by someone else, or writable by group or others, are ignored,
and so is anything that does not parse or check: a miss is recomputed and rewritten. A
cache that cannot be written is not an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
import zlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from entrycheck import safeio
from entrycheck.errors import EntrycheckError

FORMAT = "entrycheck-cache/3"
LIBRARIES = ("iced-x86", "capstone", "pyelftools", "PyYAML")
MAX_ENTRY_BYTES = 256 << 20  # decompressed size an entry may have (Debian 6.1: 60 MB)
MAX_FILE_BYTES = 128 << 20   # compressed size
MAX_HEADER_BYTES = 1 << 20   # the JSON header line


class DamagedEntry(EntrycheckError):
    """A cache entry whose checksum held but whose contents do not hold together (made by
    hand): a blob that does not inflate, arrays that do not fit, a name index that does
    not parse."""


class Blobs(Mapping):
    """An entry's blobs by name, each inflated on first use."""

    def __init__(self, path: Path, parts: dict[str, tuple[memoryview, int]]):
        self._path = path
        self._parts = parts  # name -> (compressed bytes, inflated size)
        self._done: dict[str, bytes] = {}

    def __getitem__(self, name: str) -> bytes:
        done = self._done.get(name)
        if done is None:
            stored, size = self._parts[name]
            done = self._done[name] = _inflate(stored, size, self._path)
        return done

    def __contains__(self, name: object) -> bool:
        return name in self._parts

    def __iter__(self):
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


def _inflate(stored: memoryview, size: int, path: Path) -> bytes:
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(stored, size + 1)
        if len(out) == size and inflater.eof and not inflater.unconsumed_tail:
            return out
    except zlib.error:
        pass
    raise DamagedEntry(f"cache entry {path} is damaged: remove it")


def default_dir() -> Path:
    """~/.cache/entrycheck, or $XDG_CACHE_HOME/entrycheck."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "entrycheck"


def enabled() -> bool:
    """False when ENTRYCHECK_NO_CACHE is set."""
    return not os.environ.get("ENTRYCHECK_NO_CACHE")


@cache
def code_digest() -> str:
    """Digest of this package's modules and data, and of the libraries' versions."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted([*root.rglob("*.py"), *root.glob("data/*.yaml")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    versions = _library_versions()
    for lib in LIBRARIES:
        digest.update(f"{lib}={versions.get(_dist(lib), 'absent')}\0".encode())
    return digest.hexdigest()[:24]


def _dist(name: str) -> str:
    return name.lower().replace("-", "_")


def _library_versions() -> dict[str, str]:
    """Installed distributions' versions from their `NAME-VERSION.dist-info` folders (what
    importlib.metadata reads, without its import time)."""
    out: dict[str, str] = {}
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in names:
            if entry.endswith(".dist-info") and "-" in entry:
                dist, _, version = entry[: -len(".dist-info")].partition("-")
                out.setdefault(_dist(dist), version)
    return out


def _entry_path(folder: Path, kind: str, key: list[str]) -> Path:
    text = "\0".join([kind, code_digest(), *key])  # names from argv may hold surrogates
    name = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return folder / kind / f"{name}.json.z"


def _trusted(st: os.stat_result) -> bool:
    """A regular file of ours that nobody else may write (another user who can write the
    folder can still not make a file owned by us)."""
    return (stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
            and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def load(kind: str, key: list[str], folder: Path | None = None) -> Any | None:
    """The data stored under (kind, key), or None: absent, foreign, corrupt or stale."""
    entry = load_entry(kind, key, folder)
    return None if entry is None else entry[0]


_UNWRITABLE: set[Path] = set()  # chosen cache folders already said to be unwritable


def store(kind: str, key: list[str], data: Any, folder: Path | None = None) -> None:
    """Store JSON-compatible data under (kind, key), atomically; errors are ignored."""
    store_entry(kind, key, data, {}, folder)


def load_entry(kind: str, key: list[str],
               folder: Path | None = None) -> tuple[Any, Blobs] | None:
    """(data, blobs) stored under (kind, key), or None: absent, foreign, corrupt or stale.
    Blobs are raw bytes (arrays of numbers), inflated when read: nothing in them is ever
    run or unpickled."""
    if not enabled():
        return None
    path = _entry_path(folder or default_dir(), kind, key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _trusted(st) or st.st_size > MAX_FILE_BYTES:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            raw = f.read(MAX_FILE_BYTES + 1)
        end = raw.find(b"\n", 0, MAX_HEADER_BYTES)
        if end < 0:
            return None
        header = json.loads(raw[:end])
        if not isinstance(header, dict) or header.get("format") != FORMAT \
                or header.get("key") != key:
            return None
        rest = memoryview(raw)[end + 1 :]
        if header.get("crc") != zlib.crc32(rest):
            return None
        parts, pos, total = {}, 0, 0
        for item in [["", header.get("data"), header.get("data_size")],
                     *header.get("blobs", [])]:
            if not isinstance(item, list) or len(item) != 3:
                return None
            name, stored, size = item
            if not isinstance(name, str) or not all(isinstance(n, int) and n >= 0
                                                    for n in (stored, size)):
                return None
            parts[name] = (rest[pos : pos + stored], size)
            pos, total = pos + stored, total + size
        if pos != len(rest) or total > MAX_ENTRY_BYTES:
            return None
        data_part = parts.pop("")
        data = json.loads(_inflate(*data_part, path))
        return data, Blobs(path, parts)
    except (OSError, ValueError, TypeError, RecursionError, MemoryError, DamagedEntry):
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def store_entry(kind: str, key: list[str], data: Any, blobs: dict[str, bytes],
                folder: Path | None = None) -> None:
    """Store JSON-compatible data and raw byte blobs under (kind, key), atomically; errors
    are ignored (a cache that cannot be written is not an error), said once on stderr for
    a folder the user chose (--cache-dir)."""
    if not enabled():
        return
    path = _entry_path(folder or default_dir(), kind, key)
    tmp = None
    try:
        _make_private_dirs(path.parent)
        parts = entry_parts(key, data, blobs)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        if folder is not None and folder not in _UNWRITABLE:
            _UNWRITABLE.add(folder)
            print(f"entrycheck: note: results are not cached: cannot write under "
                  f"{safeio.shown(folder)} ({exc.strerror or exc})", file=sys.stderr)
        return
    except (ValueError, TypeError):
        return
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def entry_parts(key: list[str], data: Any, blobs: dict[str, bytes]) -> list[bytes]:
    """An entry's bytes, in the order they are written: the header line, the deflated
    data, each deflated blob."""
    body = json.dumps(data, separators=(",", ":")).encode()
    parts = [zlib.compress(body, 1)]
    sizes = []
    for name, blob in blobs.items():
        parts.append(zlib.compress(blob, 1))
        sizes.append([name, len(parts[-1]), len(blob)])
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    header = json.dumps({"format": FORMAT, "key": key, "crc": crc, "data": len(parts[0]),
                         "data_size": len(body), "blobs": sizes}, separators=(",", ":"))
    return [header.encode() + b"\n", *parts]


def entry_contents(raw: bytes) -> tuple[list[str], Any, dict[str, bytes]]:
    """(key, data, blobs) of an entry's bytes, all inflated and unchecked (for the tests
    and the fuzz campaign, which rewrite entries)."""
    line, _, rest = raw.partition(b"\n")
    header = json.loads(line)
    data = json.loads(zlib.decompress(rest[: header["data"]]))
    blobs, pos = {}, header["data"]
    for name, stored, _ in header["blobs"]:
        blobs[name] = zlib.decompress(rest[pos : pos + stored])
        pos += stored
    return header["key"], data, blobs


def _make_private_dirs(folder: Path) -> None:
    """Create the cache folders 0700 (existing ones keep their mode)."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing.append(parent)
    for parent in reversed(missing):
        parent.mkdir(mode=0o700, exist_ok=True)
