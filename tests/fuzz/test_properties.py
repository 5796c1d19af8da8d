"""Property-based fuzzing (hypothesis): structure-aware mutations of the sample kernel's
ELF header and section table, and of trace, baseline and rule documents. Whatever the
input, the CLI exits 0, 1 (findings, for `check`/`validate`) or 2 with one error line."""

from __future__ import annotations

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import SAMPLE, error_line

ELF = SAMPLE.read_bytes()
E_SHOFF, E_SHNUM = struct.unpack_from("<Q", ELF, 0x28)[0], struct.unpack_from("<H", ELF, 0x3C)[0]
FIELDS = {  # ELF64 header fields: (offset, struct format)
    "ei_class": (4, "B"), "ei_data": (5, "B"), "e_machine": (0x12, "<H"),
    "e_entry": (0x18, "<Q"), "e_shoff": (0x28, "<Q"), "e_shentsize": (0x3A, "<H"),
    "e_shnum": (0x3C, "<H"), "e_shstrndx": (0x3E, "<H")}
SECTION = {"sh_type": (4, "<I"), "sh_flags": (8, "<Q"), "sh_addr": (0x10, "<Q"),
           "sh_offset": (0x18, "<Q"), "sh_size": (0x20, "<Q"), "sh_link": (0x28, "<I")}
EDGE_VALUES = st.sampled_from([0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0xFFFFFFFF, 1 << 40, 1 << 63,
                               (1 << 64) - 1])
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _put(data: bytearray, offset: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    struct.pack_into(fmt, data, offset, value & ((1 << (8 * size)) - 1))


def _outcome(code: int, err: str, findings_ok: bool = False) -> None:
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    assert code in ((0, 1, 2) if findings_ok else (0, 2)), (code, err[-500:])
    if code == 2:
        error_line(err)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(sorted(FIELDS)), EDGE_VALUES), min_size=1,
                max_size=3),
       st.lists(st.tuples(st.integers(0, E_SHNUM - 1), st.sampled_from(sorted(SECTION)),
                          EDGE_VALUES), max_size=3))
def test_mutated_elf(cli, tmp_path_factory, header, sections):
    data = bytearray(ELF)
    for name, value in header:
        _put(data, FIELDS[name][0], FIELDS[name][1], value)
    for index, name, value in sections:
        offset, fmt = SECTION[name]
        _put(data, E_SHOFF + 64 * index + offset, fmt, value)
    path = tmp_path_factory.mktemp("elf") / "vmlinux"
    path.write_bytes(data)
    code, _, err = cli("skip", path, "--entry", "xen-pv", "--boot-only")
    _outcome(code, err)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
TRACE_KEYS = ["format", "entry", "until", "build_id", "functions", "addresses", "physical"]


@SETTINGS
@given(st.dictionaries(st.sampled_from(TRACE_KEYS), JSON, max_size=7))
def test_trace_documents(cli, tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    path.write_text(json.dumps(doc))
    code, _, err = cli("validate", SAMPLE, "--entry", "pvh", "--trace", path)
    _outcome(code, err, findings_ok=True)


@SETTINGS
@given(JSON)
def test_baseline_documents(cli, tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    path.write_text(json.dumps(doc))
    code, _, err = cli("check", SAMPLE, "--baseline", path)
    _outcome(code, err, findings_ok=True)


RULE_KEYS = ["id", "kind", "severity", "message", "entries", "functions", "reached_by_all",
             "allow_functions", "allow_roots", "help"]


@SETTINGS
@given(st.lists(st.dictionaries(st.sampled_from(RULE_KEYS), JSON, max_size=6), max_size=3))
def test_rule_documents(cli, tmp_path_factory, rules):
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(json.dumps({"rules": rules}))  # JSON is YAML
    code, _, err = cli("check", SAMPLE, "--rules", path)
    _outcome(code, err, findings_ok=True)
