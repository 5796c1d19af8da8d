"""ELF classes of the fuzz campaign (issue 13): each malformed kernel is one error line
and exit 2, or an analysis that goes on; none is a traceback, a hang or a MemoryError."""

from __future__ import annotations

import os
import struct

import pytest

from .conftest import SAMPLE, child_fails, patched, set_note, set_symbol


def header(name: str, value: int):
    return lambda elf, data: elf.set_header(data, name, value)


def section(sec: str, field: str, value: int):
    return lambda elf, data: elf.set_section(data, elf.by_name[sec], field, value)


def nobits(sec: str, size: int):
    def patch(elf, data):
        elf.set_section(data, elf.by_name[sec], "type", 8)
        elf.set_section(data, elf.by_name[sec], "size", size)
    return patch


def ident(offset: int, value: int):
    def patch(elf, data):
        data[offset] = value
    return patch


@pytest.mark.parametrize(("patch", "fragment"), [
    (header("e_shstrndx", 0xFFFF), "e_shstrndx=65535 is not a section"),
    (header("e_shnum", 1), "e_shstrndx=37 is not a section"),
    (header("e_shoff", 1 << 63), "run past the end of the file"),
    (header("e_shentsize", 0), "e_shentsize=0, not 64"),
    (ident(5, 2), "a big-endian ELF file: not an x86 kernel"),
    (ident(4, 7), "neither ELF32 nor ELF64"),
    (header("e_machine", 3), "an ELF64 file with machine EM_386"),
    (header("e_machine", 183), "not an x86 kernel (ELF machine EM_AARCH64)"),
    (section(".symtab", "link", 0xFFFF), ".symtab's sh_link=65535 is not a string table"),
    (nobits(".altinstructions", 1 << 40), "at 0xffffffff81005080 of 0x10000000000 bytes"),
    (nobits(".altinstructions", 1 << 63), "runs past the 64-bit address space"),
    (section(".text", "offset", 1 << 62), "truncated: section .text"),
], ids=["shstrndx", "shnum-1", "shoff-2^63", "shentsize", "big-endian", "class", "em386",
        "aarch64", "symtab-link", "nobits-2^40", "nobits-2^63", "text-offset"])
def test_bad_headers_are_one_line(tmp_path, fails, patch, fragment):
    image = patched(tmp_path, patch)
    line = fails("entries", image)
    assert fragment in line and str(image) in line


@pytest.mark.parametrize("command", [["entries"], ["why", "--entry", "pvh", "startup_64"],
                                     ["report", "-o", "out"]])
@pytest.mark.parametrize("patch", [
    section(".rela.data", "offset", 0),
    section(".rela.text", "size", 24),
], ids=["rela-offset-0", "rela-size"])
def test_bad_relocation_tables_are_analysed(tmp_path, monkeypatch, cli, patch, command):
    monkeypatch.chdir(tmp_path)
    image = patched(tmp_path, patch)
    code, _, err = cli(command[0], image, *command[1:])
    assert code in (0, 2) and "Traceback" not in err and "internal error" not in err


def test_bad_relocation_symbol_index(tmp_path, monkeypatch, cli):
    """Every .rela.data entry names symbol 0xffffffff: the slots are just unrelocated."""
    def patch(elf, data):
        rela = elf.by_name[".rela.data"]
        for pos in range(rela["offset"], rela["offset"] + rela["size"], 24):
            struct.pack_into("<I", data, pos + 12, 0xFFFFFFFF)
    monkeypatch.chdir(tmp_path)
    image = patched(tmp_path, patch)
    for argv in (["entries", image], ["report", image, "-o", "out"],
                 ["why", image, "--entry", "pvh", "startup_64"]):
        code, _, err = cli(*argv)
        assert code in (0, 2) and "Traceback" not in err and "internal error" not in err


def test_dev_zero_as_image(fails):
    assert "/dev/zero: not a regular file" in fails("entries", "/dev/zero")


def test_folder_as_image(tmp_path, fails):
    assert "is a folder" in fails("entries", tmp_path)


def test_fifo_as_image_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "vmlinux")
    line = child_fails("entries", tmp_path / "vmlinux", timeout=30)
    assert "not a regular file" in line


def test_not_an_elf(tmp_path, fails):
    (tmp_path / "x").write_bytes(b"\x7fEL")
    assert "not an ELF file" in fails("entries", tmp_path / "x")


def test_phys32_note_pointing_nowhere_is_said(tmp_path, cli):
    image = patched(tmp_path, lambda elf, data: set_note(elf, data, 18, 0x7000000))
    code, out, err = cli("entries", image)
    assert code == 0 and "pvh" in out
    [line] = err.splitlines()
    assert line.startswith("entrycheck: warning: ") and "XEN_ELFNOTE_PHYS32_ENTRY gives " \
        "physical 0x7000000, in no PT_LOAD segment" in line


def test_phys32_note_nowhere_without_symbol_is_said(tmp_path, cli):
    def patch(elf, data):
        set_note(elf, data, 18, 0x7000000)
        set_symbol(elf, data, "pvh_start_xen", 0)
    code, out, err = cli("entries", patched(tmp_path, patch))
    assert code == 0 and "pvh " not in out
    assert "XEN_ELFNOTE_PHYS32_ENTRY" in err and "no pvh entry" in err


def test_startup_xen_zero_keeps_xen_pv(tmp_path, cli):
    """The symbol is lost, XEN_ELFNOTE_ENTRY still points at the code: xen-pv stays,
    with a warning, and reaches what it reaches with the symbol."""
    image = patched(tmp_path, lambda elf, data: set_symbol(elf, data, "startup_xen", 0))
    code, out, err = cli("entries", image)
    assert code == 0 and "xen-pv" in out
    assert "XEN_ELFNOTE_ENTRY gives 0xffffffff810004ca" in err and "warning" in err
    code, changed, _ = cli("reach", image, "--entry", "xen-pv", "--json")
    code_ref, reference, _ = cli("reach", SAMPLE, "--entry", "xen-pv", "--json")
    assert code == code_ref == 0
    import json
    assert [f["name"] for f in json.loads(changed)["reached"]] == \
        [f["name"] for f in json.loads(reference)["reached"]]


def test_xen_entry_note_zero_is_said(tmp_path, cli):
    image = patched(tmp_path, lambda elf, data: set_note(elf, data, 1, 0))
    code, _, err = cli("entries", image)
    assert code == 0 and "entrycheck: warning: " in err and "XEN_ELFNOTE_ENTRY gives 0x0" in err
