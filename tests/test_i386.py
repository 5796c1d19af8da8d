"""An i386 kernel: native32 (startup_32 -> i386_start_kernel) on sample_vmlinux/i386.

The known answers are in sample_vmlinux/i386/expected.json (why: its README.md). Each
32-bit case that once went wrong has a test of its own below.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache

import pytest

from entrycheck.binary.image import Image
from entrycheck.cli import main
from entrycheck.decode.decoder import instruction_text

from .conftest import ROOT

I386 = ROOT / "sample_vmlinux" / "i386"
SAMPLE32 = I386 / "vmlinux"
EXPECTED32 = json.loads((I386 / "expected.json").read_text())


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def reached(capsys, entry: str, image=SAMPLE32) -> list[str]:
    out = run_json(capsys, "reach", str(image), "--entry", entry, "--scope", "all")
    return sorted(f["name"] for f in out["reached"])


def test_entries_native32(capsys):
    out = run_json(capsys, "entries", str(SAMPLE32))
    assert out["bits"] == 32
    got = {e["name"]: e for e in out["entries"]}
    assert set(got) == set(EXPECTED32["entries"])  # no native, xen-pv: 64-bit only
    for name, want in EXPECTED32["entries"].items():
        assert (got[name]["symbol"], got[name]["address"], got[name]["mode"]) == (
            want["symbol"], want["address"], want["mode"])
    assert got["native32"]["found"] == ["symbol"]
    assert "note XEN_ELFNOTE_PHYS32_ENTRY" in got["pvh"]["found"]
    assert "warning" not in got["pvh"]


def test_why_i386_start_kernel_through_initial_code(capsys):
    want = EXPECTED32["why"]["native32"]["i386_start_kernel"]
    out = run_json(capsys, "why", str(SAMPLE32), "--entry", "native32", "i386_start_kernel")
    assert out["chain"] == want["chain"]
    edges = [link["edge"] for link in out["links"][1:]]
    assert [e["kind"] for e in edges] == want["kinds"]
    assert [e["site"] for e in edges] == want["sites"]
    assert edges[-1]["via"] == want["via"]
    assert edges[-1]["instruction"] == "call dword ptr [0xc1001018]"


def test_why_start_kernel(capsys):
    out = run_json(capsys, "why", str(SAMPLE32), "--entry", "native32", "start_kernel")
    assert out["chain"] == EXPECTED32["why"]["native32"]["start_kernel"]["chain"]


def test_skip_pvh_against_native32(capsys):
    want = EXPECTED32["skip"]["pvh"]
    out = run_json(capsys, "skip", str(SAMPLE32), "--entry", "pvh", "--against", "native32")
    assert out["convergence"] == want["convergence"]
    assert [f["name"] for f in out["skipped"]] == want["skipped"]
    assert [f["name"] for f in out["entry_only"]] == want["entry_only"]


@pytest.mark.parametrize("entry", ["native32", "pvh"])
def test_reach_all_equals_expected(capsys, entry):
    assert reached(capsys, entry) == EXPECTED32["reach"][entry]


def test_reach_all_is_a_known_subset(capsys):
    """The core of the answer, checked on its own so a regression names itself."""
    names = set(reached(capsys, "native32"))
    assert {"startup_32", "startup_32_smp", "verify_cpu", "mk_early_pgtbl_32",
            "i386_start_kernel", "idt_setup_early_handler", "early_idt_handler_array",
            "x86_early_init_platform_quirks", "start_kernel", "rest_init"} <= names
    assert not names & {"pvh_start_xen", "xen_prepare_pvh", "init_pvh_bootparams"}


def test_setup_once_through_register_loaded_from_slot(capsys):
    out = run_json(capsys, "why", str(SAMPLE32), "--entry", "native32", "setup_once")
    assert out["chain"] == ["startup_32", "startup_32_smp", "setup_once"]
    assert out["links"][-1]["edge"]["kind"] == "indirect-slot"
    assert out["links"][-1]["edge"]["via"] == "setup_once_ref"


def test_idt_handler_decoded_as_32bit_code(capsys):
    out = run_json(capsys, "why", str(SAMPLE32), "--entry", "native32", "early_fixup_exception")
    assert out["chain"][-3:] == ["early_idt_handler_array", "early_idt_handler_common",
                                 "early_fixup_exception"]


def test_jump_table_of_32bit_absolute_entries(capsys):
    table = EXPECTED32["jump_table"]
    out = run_json(capsys, "reach", str(SAMPLE32), "--entry", "native32", "--scope", "all")
    names = {f["name"] for f in out["reached"]}
    assert set(table["targets"]) <= names
    assert all(u["site"] != table["site"] for u in out["unresolved"])


def test_mid_function_entry_decodes_from_there_only(capsys):
    assert "load_ucode_ap" not in reached(capsys, "native32")


def test_skip_defaults_to_native32_on_i386(capsys):
    out = run_json(capsys, "skip", str(SAMPLE32), "--entry", "pvh")
    assert out["against"] == "native32"


def test_user_entry_defaults_to_the_image_mode(capsys):
    out = run_json(capsys, "entries", str(SAMPLE32), "--define", "mine=startup_32_smp")
    got = {e["name"]: e for e in out["entries"]}
    assert got["mine"]["mode"] == 32


@cache
def _gcc_m32_problem() -> str | None:
    """Why gcc -m32 / ld -m elf_i386 cannot build the sample, or None when they can."""
    missing = [t for t in ("gcc", "ld", "make") if not shutil.which(t)]
    if missing:
        return f"needs {', '.join(missing)}"
    probe = subprocess.run(["gcc", "-m32", "-ffreestanding", "-x", "c", "-c", "-o",
                            "/dev/null", "-"], input="int f(void){return 0;}\n",
                           capture_output=True, text=True)
    if probe.returncode:
        return f"gcc -m32 cannot compile: {probe.stderr.strip()[:200]}"
    emulations = subprocess.run(["ld", "-V"], capture_output=True, text=True).stdout
    if "elf_i386" not in emulations:
        return "ld has no elf_i386 emulation"
    return None


def test_rebuild_gives_known_answers(tmp_path, capsys):
    problem = _gcc_m32_problem()
    if problem:
        pytest.skip(problem)
    src = tmp_path / "i386"
    shutil.copytree(I386, src, ignore=shutil.ignore_patterns("vmlinux", "build"))
    subprocess.run(["make", "-s", "-C", str(src)], check=True, capture_output=True)
    built = src / "vmlinux"
    out = run_json(capsys, "entries", str(built))
    got = {e["name"]: (e["symbol"], e["mode"]) for e in out["entries"]}
    assert got == {k: (v["symbol"], v["mode"]) for k, v in EXPECTED32["entries"].items()}
    out = run_json(capsys, "why", str(built), "--entry", "native32", "i386_start_kernel")
    assert out["chain"] == EXPECTED32["why"]["native32"]["i386_start_kernel"]["chain"]
    edge = out["links"][-1]["edge"]
    assert edge["via"] == "initial_code"
    # whatever gcc/binutils built it, the site is startup_32's call through initial_code
    image = Image(built)
    site = int(edge["site"], 16)
    assert instruction_text(image.read, site, 32) == \
        f"call dword ptr [{image.symbol_address('initial_code'):#x}]"
    assert image.symbol_address("startup_32") <= site < image.symbol_address("i386_start_kernel")


def test_check_has_no_64bit_findings_on_i386(capsys):
    code = main(["check", str(SAMPLE32), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, [f.get("rule") for f in out.get("findings", [])]
