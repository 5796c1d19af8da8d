"""The analysis cache under hostile or broken entries (issue 13): a corrupted entry is
ignored and rewritten, nothing in it can run, foreign or shared entries are not trusted,
errors leave no temporary file, and the key covers the libraries' versions."""

from __future__ import annotations

import json
import os
import pickle
import zlib
from pathlib import Path

import pytest

from entrycheck import cache
from entrycheck.analysis import analyse

from .conftest import SAMPLE, run_child


def entry_file(folder: Path) -> Path:
    [entry] = (folder / "analyses").glob("*.json.z")
    return entry


@pytest.fixture
def primed(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("ENTRYCHECK_NO_CACHE", raising=False)
    folder = tmp_path / "cache"
    assert not analyse(SAMPLE, cache_dir=folder).cached
    assert analyse(SAMPLE, cache_dir=folder).cached
    return folder


def test_corrupted_entry_is_ignored_and_rewritten(primed):
    entry = entry_file(primed)
    raw = entry.read_bytes()
    entry.write_bytes(raw[:100] + b"\x80\x63" + raw[102:])
    assert not analyse(SAMPLE, cache_dir=primed).cached  # ignored: analysed again
    assert entry_file(primed).read_bytes() != raw[:100] + b"\x80\x63" + raw[102:]
    assert analyse(SAMPLE, cache_dir=primed).cached       # rewritten


@pytest.mark.parametrize("damage", ["truncate", "garbage", "huge", "symlink", "fifo", "folder"])
def test_damaged_entries_are_misses(primed, damage):
    entry = entry_file(primed)
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:500])
    elif damage == "garbage":
        entry.write_bytes(zlib.compress(b"[" * 100000 + b"\n"))
    elif damage == "huge":  # 300 MiB once inflated: more than an entry may hold
        entry.write_bytes(zlib.compress(bytes(300 << 20), 1))
    else:
        entry.unlink()
        if damage == "symlink":
            entry.symlink_to("/dev/zero")
        elif damage == "fifo":
            os.mkfifo(entry)
        else:
            entry.mkdir()
    assert not analyse(SAMPLE, cache_dir=primed).cached


def test_shared_or_foreign_entries_are_not_trusted(primed):
    entry = entry_file(primed)
    entry.chmod(0o664)
    assert not analyse(SAMPLE, cache_dir=primed).cached
    entry = entry_file(primed)
    assert entry.stat().st_mode & 0o077 == 0  # rewritten as ours
    if os.geteuid() == 0:
        os.chown(entry, 12345, 12345)
        assert not analyse(SAMPLE, cache_dir=primed).cached


class Planted:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_never_runs(tmp_path, primed):
    marker = tmp_path / "PWNED"
    entry = entry_file(primed)
    blob = pickle.dumps(Planted(marker))
    entry.write_bytes(blob)
    entry.with_suffix(".pickle").write_bytes(blob)
    (primed / "analyses" / "x.pickle").write_bytes(blob)
    proc = run_child("entries", SAMPLE, "--cache-dir", primed)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_the_folder_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv("ENTRYCHECK_NO_CACHE", raising=False)
    analyse(SAMPLE, cache_dir=tmp_path / "new" / "cache")
    for folder in (tmp_path / "new", tmp_path / "new" / "cache",
                   tmp_path / "new" / "cache" / "analyses"):
        assert folder.stat().st_mode & 0o777 == 0o700


def test_no_temporary_file_left_when_a_store_fails(tmp_path, monkeypatch):
    monkeypatch.delenv("ENTRYCHECK_NO_CACHE", raising=False)

    def full(*_args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    cache.store_entry("analyses", ["k"], {"a": 1}, {"b": b"xyz"}, tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_cache_folder_that_is_a_file(tmp_path):
    """The answer still comes; one note says it is not cached, and the file is kept."""
    (tmp_path / "cache").write_text("x\n")
    proc = run_child("entries", SAMPLE, "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 0 and proc.stdout
    assert proc.stderr.splitlines() == [f"entrycheck: note: results are not cached: cannot "
                                        f"write under {tmp_path / 'cache'} (Not a directory)"]
    assert (tmp_path / "cache").read_text() == "x\n"


def test_the_key_covers_the_decoder_and_elf_libraries(monkeypatch):
    assert {"iced-x86", "capstone", "pyelftools"} <= set(cache.LIBRARIES)
    versions = cache._library_versions()
    assert cache._dist("iced-x86") in versions and cache._dist("pyelftools") in versions
    cache.code_digest.cache_clear()  # the digest of the tree as it is now, not at start-up
    before = cache.code_digest()
    for lib in ("iced-x86", "capstone", "pyelftools"):
        changed = {**versions, cache._dist(lib): "0.0.0-other"}
        monkeypatch.setattr(cache, "_library_versions", lambda changed=changed: changed)
        cache.code_digest.cache_clear()
        assert cache.code_digest() != before, lib
    monkeypatch.undo()
    cache.code_digest.cache_clear()
    assert cache.code_digest() == before


def test_blobs_are_inflated_only_when_read(tmp_path, monkeypatch):
    monkeypatch.delenv("ENTRYCHECK_NO_CACHE", raising=False)
    cache.store_entry("analyses", ["k"], {"a": 1}, {"one": b"x" * 1000, "two": b"y"}, tmp_path)
    data, blobs = cache.load_entry("analyses", ["k"], tmp_path)
    assert data == {"a": 1} and set(blobs) == {"one", "two"} and "one" in blobs
    assert blobs._done == {}  # nothing inflated by listing or asking what is there
    assert blobs["two"] == b"y" and set(blobs._done) == {"two"}


def test_a_blob_that_does_not_inflate_is_one_error_line(tmp_path, monkeypatch):
    """An entry made by hand with a correct checksum but a blob that is not deflate data:
    reading that blob is an EntrycheckError (one line), never a zlib traceback."""
    monkeypatch.delenv("ENTRYCHECK_NO_CACHE", raising=False)
    cache.store_entry("analyses", ["k"], {"a": 1}, {"b": b"xyz"}, tmp_path)
    [entry] = (tmp_path / "analyses").glob("*.json.z")
    line, _, rest = entry.read_bytes().partition(b"\n")
    header = json.loads(line)
    rest = rest[: header["data"]] + b"\0" * (len(rest) - header["data"])
    header["crc"] = zlib.crc32(rest)
    entry.write_bytes(json.dumps(header).encode() + b"\n" + rest)
    data, blobs = cache.load_entry("analyses", ["k"], tmp_path)
    assert data == {"a": 1}  # the data part inflates: only the blob is bad
    with pytest.raises(cache.DamagedEntry, match="damaged"):
        blobs["b"]


def test_a_cached_analysis_loads_only_the_graph_asked_for(primed):
    back = analyse(SAMPLE, cache_dir=primed)
    assert back.cached and back.graphs._made == {}
    graph = back.graphs["pvh"]
    assert set(back.graphs._made) == {"pvh"} and graph.root in graph
    assert back.names.find("pvh_start_xen") == graph.root  # the names, read on first use


def test_a_checksummed_entry_with_a_damaged_graph_is_one_line(tmp_path):
    """An entry rewritten with a correct checksum but a graph array cut short (made by
    hand): the query that reads that graph ends in one error line, exit 2; the other
    entries' graphs still answer."""
    folder = tmp_path / "cache"
    proc = run_child("reach", SAMPLE, "--entry", "pvh", "--scope", "all", "--cache-dir",
                     folder)
    assert proc.returncode == 0, proc.stderr
    damaged = 0
    for entry in (folder / "analyses").glob("*.json.z"):
        key, data, blobs = cache.entry_contents(entry.read_bytes())
        if "graph:pvh/dst" in blobs:
            blobs["graph:pvh/dst"] = blobs["graph:pvh/dst"][:-3]
            entry.write_bytes(b"".join(cache.entry_parts(key, data, blobs)))
            damaged += 1
    assert damaged == 1
    proc = run_child("reach", SAMPLE, "--entry", "pvh", "--scope", "all", "--cache-dir",
                     folder)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "cached graph of pvh is damaged" in proc.stderr
    proc = run_child("reach", SAMPLE, "--entry", "native", "--scope", "all", "--cache-dir",
                     folder)
    assert proc.returncode == 0, proc.stderr


def _cut(blob: bytes, size: int) -> bytes:
    return blob[:-size]


def _first(blob: bytes, code: str, value: int) -> bytes:
    from array import array

    arr = array(code)
    arr.frombytes(blob)
    arr[0] = value
    return arr.tobytes()


DAMAGE = {  # what a hand-made entry with a correct checksum may hold
    "offsets cut": lambda data, blobs: blobs.update(
        {"graph:pvh/offsets": _cut(blobs["graph:pvh/offsets"], 4)}),
    "callee out of range": lambda data, blobs: blobs.update(
        {"graph:pvh/dst": _first(blobs["graph:pvh/dst"], "i", 10**6)}),
    "negative callee": lambda data, blobs: blobs.update(
        {"graph:pvh/dst": _first(blobs["graph:pvh/dst"], "i", -1)}),
    "name order out of range": lambda data, blobs: blobs.update(
        {"graph:pvh/by_name": _first(blobs["graph:pvh/by_name"], "i", 10**6)}),
    "edge column cut": lambda data, blobs: blobs.update(
        {"edges:0/resolver": _cut(blobs["edges:0/resolver"], 4)}),
    "unknown edge kind": lambda data, blobs: blobs.update(
        {"edges:0/kind": _first(blobs["edges:0/kind"], "b", 120)}),
    "edge strings short": lambda data, blobs: data["edge_strings"].update(
        {"0": data["edge_strings"]["0"][:2]}),
    "huge edge count": lambda data, blobs: data["edge_counts"].update({"0": 10**20}),
    "names of the wrong shape": lambda data, blobs: blobs.update(
        {"names": b'{"names": {"a": 5}, "files": {"x": "y"}}'}),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_checksummed_entries_with_inconsistent_insides(tmp_path, damage):
    """Every query over such an entry answers or fails with one error line, never an
    internal error (review: IndexError, OverflowError, TypeError slipped through)."""
    folder = tmp_path / "cache"
    proc = run_child("reach", SAMPLE, "--entry", "pvh", "--scope", "all", "--cache-dir",
                     folder)
    assert proc.returncode == 0, proc.stderr
    for entry in (folder / "analyses").glob("*.json.z"):
        key, data, blobs = cache.entry_contents(entry.read_bytes())
        if "graph:pvh/dst" in blobs:
            DAMAGE[damage](data, blobs)
            entry.write_bytes(b"".join(cache.entry_parts(key, data, blobs)))
    for argv in (("reach", SAMPLE, "--entry", "pvh", "--scope", "all"),
                 ("why", SAMPLE, "--entry", "pvh", "early_con_write"),
                 ("skip", SAMPLE, "--entry", "xen-pv")):
        proc = run_child(*argv, "--cache-dir", folder)
        assert proc.returncode in (0, 2), (argv, proc.stderr)
        if proc.returncode == 2:
            assert proc.stderr.count("\n") == 1 and "internal error" not in proc.stderr
