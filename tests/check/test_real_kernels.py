"""The check on stock Debian kernels (issue 12): the built-in rules exit 0 on bookworm's 6.1
and 6.12 and sid's 7.x cloud kernels, one finding per root, and still catch a mutated 6.1:
an unknown native-only init call from x86_64_start_kernel and cr4_init_shadow() removed
from xen_start_kernel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from entrycheck.binary.functions import normalise_name
from entrycheck.cli import main

from ..conftest import debian_kernel

pytestmark = pytest.mark.realkernel

SME = {"__sme_map_range", "sme_clear_pgd", "sme_pgtable_calc", "sme_prepare_pgd"}
LOADERS = {"load_ucode_amd_bsp", "load_ucode_intel_bsp"}


def check(capsys, image: Path) -> tuple[int, dict]:
    code = main(["check", str(image), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module", params=["6.1", "6.12", "sid"])
def stock(request) -> tuple[str, Path]:
    return request.param, debian_kernel(request.param)["vmlinux_nodebug"]


def test_stock_kernel_is_clean_one_finding_per_root(capsys, stock):
    version, image = stock
    code, report = check(capsys, image)
    assert code == 0 and report["findings"] == [], [f["symbol"] for f in report["findings"]]
    assert report["entries"] == ["native", "xen-pv", "pvh"]
    allowed = {(f["rule"], f["symbol"]): f for f in report["suppressed"]}
    assert {f["entry"] for f in report["suppressed"]} == {"xen-pv"}
    listed = {c for f in report["suppressed"] for c in f["callees"]}
    assert not listed & {f["symbol"] for f in report["suppressed"]}  # roots only
    assert len(allowed) == len(report["suppressed"])  # each root once

    sme = allowed["EC100", "sme_encrypt_kernel"]
    assert set(sme["callees"]) >= SME and "SME" in sme["suppressed"]
    assert sme["chain"][0] == "startup_64"
    assert [normalise_name(n) for n in sme["chain"][1:]] == ["__startup_64", "sme_encrypt_kernel"]
    assert ("EC004", "sme_enable") in allowed and "snp_init" in allowed["EC004", "sme_enable"][
        "callees"]
    setup = "startup_64_setup_env" if version == "6.1" else "startup_64_setup_gdt_idt"
    assert ("EC100", setup) in allowed
    if version == "6.1":  # the 6.1 cloud kernel has no microcode loader and no TDX guest
        assert ("EC003", "load_ucode_bsp") not in allowed
    else:
        assert set(allowed["EC003", "load_ucode_bsp"]["callees"]) >= LOADERS
        assert ("EC005", "tdx_early_init") in allowed
    assert report["summary"] == {"error": 0, "warning": 0, "note": 0,
                                 "suppressed": len(report["suppressed"]), "known": 0}


def _mutate(src: Path, dest: Path) -> Path:
    """A copy of 6.1's vmlinux in which `sme_early_init` is named `early_new_feat` (an init
    call from x86_64_start_kernel no rule knows), xen_start_kernel's inlined
    cr4_init_shadow() (`mov %cr4,%rax; mov %rax,%gs:cpu_tlbstate.cr4`) is NOPs, and the
    build-id differs (a build-id names one build)."""
    out = dest / "vmlinux.mutant"
    shutil.copyfile(src, out)
    with open(src, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        strtab = elf.get_section(symtab["sh_link"])
        [old] = symtab.get_symbol_by_name("sme_early_init")
        name_at = strtab["sh_offset"] + old["st_name"]
        [xen] = symtab.get_symbol_by_name("xen_start_kernel")
        text = elf.get_section(xen["st_shndx"])
        code_at = text["sh_offset"] + xen["st_value"] - text["sh_addr"]
        notes = elf.get_section_by_name(".notes")
        build_id = bytes.fromhex(next(n["n_desc"] for n in notes.iter_notes()
                                      if n["n_name"] == "GNU" and n["n_type"] == "NT_GNU_BUILD_ID"))
        notes_at, notes_size = notes["sh_offset"], notes["sh_size"]
    with open(out, "r+b") as f:
        f.seek(name_at)
        assert f.read(15) == b"sme_early_init\0"
        f.seek(name_at)
        f.write(b"early_new_feat")
        f.seek(code_at)
        body = f.read(xen["st_size"])
        cr4 = body.find(b"\x0f\x20\xe0\x65\x48\x89\x05")  # mov %cr4,%rax; mov %rax,%gs:...
        assert cr4 > 0 and body.count(b"\x0f\x20\xe0") == 1
        f.seek(code_at + cr4)
        f.write(b"\x90" * 11)
        f.seek(notes_at)
        section = f.read(notes_size)
        at = section.find(build_id)
        assert at > 0 and section.count(build_id) == 1
        f.seek(notes_at + at)
        f.write(bytes(b ^ 0xFF for b in build_id[:4]))
    return out


def test_mutated_61_is_caught_with_chains(capsys, debian61, tmp_path):
    mutant = _mutate(debian61["vmlinux_nodebug"], tmp_path)
    code, report = check(capsys, mutant)
    assert code == 1
    got = [(f["rule"], f["entry"], f["symbol"], f["chain"]) for f in report["findings"]]
    head = ["startup_64", "secondary_startup_64_no_verify", "x86_64_start_kernel"]
    assert got == [("EC001", "xen-pv", "x86_64_start_kernel", head),
                   ("EC100", "xen-pv", "early_new_feat", [*head, "early_new_feat"])]
    assert ("EC004", "sme_early_init") not in {(f["rule"], f["symbol"])
                                               for f in report["suppressed"]}
