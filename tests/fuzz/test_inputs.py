"""Input classes of the fuzz campaign (issue 13) other than ELF images: bzImage headers,
build trees, rules, traces, baselines, special files and arguments. Each is one error line
and exit 2 (or the run goes on), never a traceback, a hang or unbounded memory."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

import pytest

from entrycheck import queries

from .conftest import ROOT, SAMPLE, child_fails, error_line

BZIMAGE = ROOT / "sample_vmlinux" / "compressed" / "bzImage"
COMPRESSED = ROOT / "sample_vmlinux" / "compressed" / "vmlinux"
EARLY = (ROOT / "rules" / "early-init.yaml").read_text()


def test_bzimage_lfanew_near_the_end(tmp_path, fails):
    data = bytearray(BZIMAGE.read_bytes())
    at = len(data) - 8
    struct.pack_into("<I", data, 0x3C, at)
    data[at : at + 4] = b"PE\0\0"
    (tmp_path / "bzImage").write_bytes(bytes(data))
    assert "malformed PE/COFF header" in fails("entries", tmp_path / "bzImage")


def build_tree(tmp_path, bzimage=None, compressed=None):
    boot = tmp_path / "build" / "arch" / "x86" / "boot"
    (boot / "compressed").mkdir(parents=True)
    shutil.copy(SAMPLE, tmp_path / "build" / "vmlinux")
    for target, source in ((boot / "bzImage", bzimage or BZIMAGE),
                           (boot / "compressed" / "vmlinux", compressed or COMPRESSED)):
        if source == "fifo":
            os.mkfifo(target)
        elif source == "zero":
            target.symlink_to("/dev/zero")
        else:
            shutil.copy(source, target)
    return tmp_path / "build"


def test_build_tree_with_a_fifo_bzimage(tmp_path):
    tree = build_tree(tmp_path, bzimage="fifo")
    assert "not a regular file" in child_fails("entries", "--build-dir", tree, timeout=60)


def test_build_tree_with_dev_zero_compressed(tmp_path, fails):
    tree = build_tree(tmp_path, compressed="zero")
    assert "not a regular file" in fails("entries", "--build-dir", tree)


def rule_file(tmp_path, text: str | bytes):
    path = tmp_path / "rules.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def with_message(message: str) -> str:
    return re.sub(r"message: .*", lambda _: f"message: {message}", EARLY, count=1)


def with_function(pattern: str) -> str:
    return re.sub(r"function: .*", lambda _: f"function: {pattern}", EARLY, count=1)


@pytest.mark.parametrize(("text", "fragment"), [
    (b"- id: X\xff\n", "not UTF-8"),
    ("? [a]\n: 1\n", "a mapping key must be a plain string"),
    ("[" * 1000, "nested deeper than"),
    (with_message("'{'"), "Single '{'"),
    (with_message("'{}'"), "unknown placeholder {}"),
    (with_message("'{nosuch}'"), "unknown placeholder {nosuch}"),
    (with_message("'{entry:999999999}'"), "takes no conversion or format spec"),
], ids=["non-utf8", "list-key", "deep", "brace", "empty-field", "unknown-field", "width"])
def test_rule_files(tmp_path, fails, text, fragment):
    assert fragment in fails("check", SAMPLE, "--rules", rule_file(tmp_path, text))


@pytest.mark.parametrize("pattern", ["'a{99999999999}'", "'(.*)*(.*)*(.*)*!'",
                                     "'(\\w|\\w)*!'", "'(a)\\1'"])
def test_rule_regexes_never_hang(tmp_path, cli, pattern):
    start = time.monotonic()
    code, _, err = cli("check", SAMPLE, "--rules", rule_file(tmp_path, with_function(pattern)))
    assert time.monotonic() - start < 10
    assert code in (1, 2) and "Traceback" not in err
    if code == 2:
        error_line(err)


@pytest.mark.parametrize("option", ["--rules", "--baseline"])
def test_dev_zero_as_an_input(fails, option):
    assert "not a regular file" in fails("check", SAMPLE, option, "/dev/zero")


def test_dev_zero_as_a_trace(fails):
    line = fails("validate", SAMPLE, "--entry", "pvh", "--trace", "/dev/zero")
    assert "not a regular file" in line


@pytest.mark.parametrize("argv", [
    ["check", SAMPLE, "--rules", "{fifo}"], ["check", SAMPLE, "--baseline", "{fifo}"],
    ["check", SAMPLE, "--base", "{fifo}"], ["validate", SAMPLE, "--entry", "pvh", "--trace",
                                           "{fifo}"],
], ids=["rules", "baseline", "base", "trace"])
def test_fifos_never_hang(tmp_path, argv):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    line = child_fails(*[str(a).replace("{fifo}", str(fifo)) for a in argv], timeout=60)
    assert "not a regular file" in line


@pytest.mark.parametrize(("content", "fragment"), [
    ("[]", "not an entrycheck-baseline/2 file"),
    ("[" * 100000, "nests deeper than 64 levels"),
])
def test_baselines(tmp_path, fails, content, fragment):
    (tmp_path / "b.json").write_text(content)
    assert fragment in fails("check", SAMPLE, "--baseline", tmp_path / "b.json")


def trace_doc(**changes) -> dict:
    doc = {"format": "entrycheck-trace/1", "entry": "pvh", "kernel": "k", "build_id": None,
           "until": "start_kernel", "unmapped_blocks": 0, "reached_until": True,
           "functions": [{"name": "pvh_start_xen", "address": "0xffffffff8100005c",
                          "order": 0}]}
    doc.update(changes)
    return doc


@pytest.mark.parametrize(("content", "fragment"), [
    ("[" * 100000, "nests deeper than 64 levels"),
    (json.dumps(trace_doc(functions=[{"name": 1, "address": "0x1", "order": 0}])),
     "function 0: name 1 is not a function name"),
    (json.dumps(trace_doc(functions=[{"name": "f", "address": 17, "order": 0}])),
     "address 17 is not a 0x... hex string"),
    (json.dumps(trace_doc(functions={})), "'functions' is not a list"),
    (json.dumps(trace_doc(reached_until="yes")), "'reached_until' is 'yes'"),
    ("[]", "not an entrycheck-trace/1 trace"),
])
def test_traces(tmp_path, fails, content, fragment):
    (tmp_path / "t.json").write_text(content)
    assert fragment in fails("validate", SAMPLE, "--entry", "pvh", "--trace", tmp_path / "t.json")


def test_non_utf8_trace_is_not_echoed(tmp_path, fails):
    (tmp_path / "t.json").write_bytes(json.dumps(trace_doc()).encode()[:30] + b"\xff\xfe" +
                                      b" " * (1 << 20))
    line = fails("validate", SAMPLE, "--entry", "pvh", "--trace", tmp_path / "t.json")
    assert "not UTF-8 text (byte 30)" in line and "entrycheck-trace" not in line


LONG = "x" * 100000


@pytest.mark.parametrize("argv", [
    ["reach", SAMPLE, "--entry", LONG], ["check", SAMPLE, "--fail-on", LONG], [LONG],
    ["entries", LONG], ["why", SAMPLE, "--entry", "pvh", "x=" + LONG],
    ["check", SAMPLE, "--rules", "x=" + LONG], ["report", SAMPLE, "-o", "é" * 1000],
    ["entries", SAMPLE, "--" + LONG], ["crosscheck", SAMPLE, "--sample", "-1"],
])
def test_long_or_odd_arguments_are_one_short_line(fails, argv):
    fails(*argv)


def test_newlines_in_a_path_stay_on_one_line(tmp_path, fails):
    line = fails("entries", tmp_path / "a\nb\r\x1b[2Jc")
    assert "a\\nb\\r\\x1b[2Jc" in line


def test_a_file_name_that_is_not_utf8(tmp_path):
    name = os.fsencode(tmp_path) + b"/vmlinux-\xff\xfe"
    shutil.copy(SAMPLE, name)
    proc = subprocess.run([sys.executable, "-m", "entrycheck.cli", "entries", name],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(name)


def test_an_unexpected_exception_says_where(cli, monkeypatch):
    def broken(_analysis):
        raise TypeError("a bug")
    monkeypatch.setattr(queries, "entries", broken)
    code, out, err = cli("entries", SAMPLE)
    [line] = err.splitlines()
    assert code == 2 and out == ""
    assert line.startswith("entrycheck: error: internal error: TypeError: a bug (at ")


def test_undecodable_entry_definition(fails):
    """A --define argv Python could not decode (surrogates) is a bad definition, not an
    internal error while naming the cache entry (campaign seed 7, cli 259)."""
    line = fails("reach", SAMPLE, "--entry", "pvh", "--define", "\udcff\udcfe")
    assert "bad --entry" in line
