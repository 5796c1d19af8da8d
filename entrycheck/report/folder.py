"""The report folder: which files in it are an earlier report's, and placing a new one.

A report writes index.html, report.json and graphs/*.dot|svg, then the marker
`.entrycheck-report`, which lists each file with its SHA-256. A file is the report's own
only when its name is one a report writes, the marker lists it, it is a regular file
whose bytes still have a digest the marker lists, and it looks like a report's file (the
page, the JSON document, a DOT or SVG graph); everything else is foreign, whatever a
marker says, and is never deleted or replaced. Without `force` a folder holding foreign
files is refused; with `force` the report is written beside them.

Runs into one folder are serialised by a lock (flock) on the folder. The new files are
written into a temporary folder inside it and renamed into place; while they move, the
marker lists the old and the new digests, so a run that dies midway leaves files the
next run still knows as its own. Markers of reports written before digests were
recorded (a list of names) are taken without the digest check.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from entrycheck import safeio
from entrycheck.errors import EntrycheckError

FORMAT = "entrycheck-report/1"
MARKER = ".entrycheck-report"
TMP_PREFIX = ".entrycheck-tmp."
MAX_MARKER = 1 << 20
MAX_OWN_FILE = 256 << 20  # a report file larger than this is not one
_OWN_NAME = re.compile(r"^(index\.html|report\.json|graphs/[\w.+-]+\.(dot|svg))$")


def place(out_dir: Path, write: Callable[[Path], None], force: bool) -> list[str]:
    """Write a report into out_dir: `write(tmp)` fills a temporary folder, whose files
    then replace the earlier report's. Returns the files written (relative names)."""
    out_dir = Path(out_dir)
    where = safeio.shown(out_dir)
    st = safeio.lstat(out_dir, "the report folder")
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise EntrycheckError(f"{where} exists and is not a folder: not overwriting")
    with _locked(out_dir) as created:
        own = own_files(out_dir)
        foreign = [f for f in _entries(out_dir) if f not in own and f != MARKER
                   and not f.startswith(TMP_PREFIX)
                   and not (f == "graphs" and _real_folder(out_dir / f))]
        if foreign and not force:
            shown = ", ".join(safeio.shown(f, 60) for f in foreign[:3])
            raise EntrycheckError(f"{where} holds files that are not an entrycheck report "
                                  f"({shown}{', ...' if len(foreign) > 3 else ''}); use "
                                  "--force to write the report beside them (they are kept)")
        _remove_stale_temps(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out_dir))
        try:
            write(tmp)
            new = {str(p.relative_to(tmp)): _digest(p) for p in sorted(tmp.rglob("*"))
                   if p.is_file()}
            _check_room(out_dir, new, own)
            _write_marker(out_dir, {f: sorted({*own.get(f, ()), *d})
                                    for f, d in [*((f, ()) for f in own),
                                                 *((f, (d,)) for f, d in new.items())]})
            for name in new:
                target = out_dir / name
                target.parent.mkdir(exist_ok=True)
                os.replace(tmp / name, target)
            for name in set(own) - set(new):
                if _digest_or_none(out_dir / name) in own[name]:
                    (out_dir / name).unlink()
            with contextlib.suppress(OSError):  # graphs/ when no graph is left in it
                (out_dir / "graphs").rmdir()
            _write_marker(out_dir, {f: [d] for f, d in new.items()})
        except OSError as exc:
            raise EntrycheckError(f"{where}: cannot write the report: "
                                  f"{safeio.shown(exc.strerror or exc)}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if created and not any(out_dir.iterdir()):
                out_dir.rmdir()
    return sorted(new)


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[bool]:
    """The folder, made if missing, locked for this run; yields whether it was made."""
    created = False
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            out_dir.mkdir()
            created = True
        except FileExistsError:
            pass
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise EntrycheckError(f"{safeio.shown(out_dir)}: cannot make the report folder: "
                              f"{safeio.shown(exc.strerror or exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield created
    finally:
        os.close(fd)


def own_files(out_dir: Path) -> dict[str, list[str]]:
    """name -> digests the marker lists, for the files in out_dir that are a report's."""
    listed = _marker(out_dir)
    own = {}
    graphs = _real_folder(out_dir / "graphs")
    for name, digests in listed.items():
        if not isinstance(name, str) or not _OWN_NAME.match(name) or ".." in name:
            continue
        if name.startswith("graphs/") and not graphs:  # never through a link elsewhere
            continue
        path = out_dir / name
        digest = _digest_or_none(path)
        if digest is None:
            continue
        if not _looks_like_ours(path):
            continue
        if digests is None:  # an old marker without digests
            own[name] = [digest]
        elif isinstance(digests, list) and digest in digests:
            own[name] = [d for d in digests if isinstance(d, str)]
    return own


def _marker(out_dir: Path) -> dict:
    """The marker's files (name -> digests, or -> None for an old marker); {} if none."""
    path = out_dir / MARKER
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return {}
        data = safeio.read_json(path, "report marker", MAX_MARKER)
    except (OSError, EntrycheckError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    files = data.get("files")
    if isinstance(files, list):
        return {f: None for f in files if isinstance(f, str)}
    return files if isinstance(files, dict) else {}


def _looks_like_ours(path: Path) -> bool:
    text = path.read_bytes()[:MAX_OWN_FILE].decode("utf-8", "replace")
    if path.name == "index.html":
        return 'id="report-data"' in text and "entrycheck report" in text
    if path.name == "report.json":
        return f'"format": "{FORMAT}"' in text
    if path.suffix == ".dot":
        return text.startswith("digraph")
    return "<svg" in text


def _entries(out_dir: Path) -> list[str]:
    """What is in out_dir and in its graphs/ folder (relative names, links not followed):
    all a report writes, so a foreign folder is one entry, never walked."""
    out = []
    for top in os.scandir(out_dir):
        out.append(top.name)
        if top.name == "graphs" and top.is_dir(follow_symlinks=False):
            out.extend(f"graphs/{e.name}" for e in os.scandir(top.path))
    return sorted(out)


def _real_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _check_room(out_dir: Path, new: dict[str, str], own: dict) -> None:
    """Refuse when a file the report writes is in the folder and is not the report's."""
    graphs = out_dir / "graphs"
    if os.path.lexists(graphs) and (graphs.is_symlink() or not graphs.is_dir()):
        raise EntrycheckError(f"{safeio.shown(graphs)} is not the report's graphs folder: "
                              "not replacing it")
    for name in [*new, MARKER]:
        path = out_dir / name
        if name == MARKER:
            if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
                raise EntrycheckError(f"{safeio.shown(path)} is not a report marker: not "
                                      "replacing it")
            continue
        if os.path.lexists(path) and name not in own:
            raise EntrycheckError(f"{safeio.shown(path)} is not from an entrycheck report: "
                                  "not replacing it")


def _write_marker(out_dir: Path, files: dict[str, list[str]]) -> None:
    text = json.dumps({"format": FORMAT, "files": files}, indent=1, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=out_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out_dir / MARKER)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _remove_stale_temps(out_dir: Path) -> None:
    """Temporary folders of runs that died (the lock says none is running)."""
    for entry in out_dir.iterdir():
        if entry.name.startswith(TMP_PREFIX) and not entry.is_symlink():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _digest_or_none(path: Path) -> str | None:
    """The digest of a regular file (not a link) of a report's size, else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_OWN_FILE:
        return None
    try:
        return _digest(path)
    except OSError:
        return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
