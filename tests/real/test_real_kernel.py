"""The real-kernel tier: Debian's 6.1 cloud-amd64 vmlinux, checked against what its source
(head_64.S, head64.c, xen-head.S, enlighten_pv.c, pvh/head.S) and binutils say."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from entrycheck.binary.image import XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_PHYS32_ENTRY, Image
from entrycheck.cli import main

from ..conftest import debian_kernel

pytestmark = pytest.mark.realkernel

NATIVE_ONLY = {"startup_64", "__startup_64", "verify_cpu", "sme_enable", "sme_encrypt_kernel",
               "x86_64_start_kernel"}
SHARED = {"clear_bss", "idt_setup_early_handler", "x86_64_start_reservations", "start_kernel",
          "copy_bootdata", "reset_early_page_tables"}


def query(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module", params=[("6.1", "vmlinux_nodebug"), ("6.1", "vmlinux"),
                                        ("6.12", "vmlinux_nodebug")], ids=lambda p: "-".join(p))
def kernel(request) -> str:
    return str(debian_kernel(request.param[0])[request.param[1]])


def nm_address(path: str, name: str) -> int:
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^([0-9a-f]+) \w {re.escape(name)}$", out, re.M)
    assert m, name
    return int(m.group(1), 16)


def test_entries_at_symbol_and_note_addresses(capsys, kernel):
    got = {e["name"]: e for e in query(capsys, "entries", kernel)["entries"]}
    assert set(got) == {"native", "xen-pv", "pvh"}
    image = Image(kernel)
    assert int(got["native"]["address"], 16) == nm_address(kernel, "startup_64")
    assert int(got["xen-pv"]["address"], 16) == image.xen_note(XEN_ELFNOTE_ENTRY)
    assert int(got["xen-pv"]["address"], 16) == nm_address(kernel, "startup_xen")
    pvh = image.phys_to_virt(image.xen_note(XEN_ELFNOTE_PHYS32_ENTRY))
    assert int(got["pvh"]["address"], 16) == pvh == nm_address(kernel, "pvh_start_xen")
    assert got["pvh"]["mode"] == 32 and not any(e.get("warning") for e in got.values())


def test_xen_pv_skips_native_head_code(capsys, kernel):
    out = query(capsys, "skip", kernel, "--entry", "xen-pv")
    skipped = {f["name"] for f in out["skipped"]}
    assert out["convergence"] == ["x86_64_start_reservations"]
    assert skipped >= NATIVE_ONLY
    assert not skipped & SHARED
    entry_only = {f["name"] for f in out["entry_only"]}
    assert {"xen_start_kernel", "xen_setup_kernel_pagetable"} <= entry_only
    # over the whole boot too: setup_arch's `__pa_symbol(_text)` takes no head function's
    # address (6.1 had `why --entry xen-pv sme_enable` answer through it)
    native_own = [g for g in out["whole_boot"]["groups"]
                  if g["point"] == {"kind": "entry", "name": "native"}]
    assert native_own and {"__startup_64", "sme_enable"} <= set(native_own[0]["reference_only"])
    capsys.readouterr()
    assert main(["why", kernel, "--entry", "xen-pv", "sme_enable", "--json"]) == 1
    native = next(o for o in json.loads(capsys.readouterr().out)["others"]
                  if o["entry"] == "native")
    assert native["chain"] == ["startup_64", "sme_enable"] and "parts_at" not in native


def test_pvh_joins_native_at_startup_64(capsys, kernel):
    out = query(capsys, "skip", kernel, "--entry", "pvh")
    assert out["convergence"] == ["startup_64"]
    assert out["skipped"] == []
    assert {"pvh_start_xen", "xen_prepare_pvh"} <= {f["name"] for f in out["entry_only"]}


def objdump_at(path: str, site: int) -> str:
    out = subprocess.run(["objdump", "-d", f"--start-address={site:#x}",
                          f"--stop-address={site + 16:#x}", path],
                         capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if re.match(r"^\s*[0-9a-f]+:\t", line)]
    return lines[0]


@pytest.mark.parametrize(("entry", "function"), [
    ("native", "x86_64_start_kernel"), ("native", "sme_encrypt_kernel"),
    ("xen-pv", "xen_setup_kernel_pagetable"), ("pvh", "x86_64_start_kernel"),
])
def test_why_chains_are_visible_in_objdump(capsys, kernel, entry, function):
    out = query(capsys, "why", kernel, "--entry", entry, function)
    assert out["chain"][-1] == function
    for link in out["links"][1:]:
        edge = link["edge"]
        line = objdump_at(kernel, int(edge["site"], 16))
        if edge["kind"] in ("call", "jump"):
            named = rf"<{re.escape(link['function'])}(\+0x[0-9a-f]+)?>"
            assert re.search(named, line), (link, line)
        elif edge["kind"] == "far":
            assert "lret" in line, (link, line)
        else:
            assert "*" in line, (link, line)  # an indirect call/jmp


def test_repeat_query_uses_cache(capsys, kernel):
    query(capsys, "entries", kernel)
    assert query(capsys, "entries", kernel)["cached"] is True


def _traces(debian, tmp_path_factory, until: str) -> dict[str, str]:
    image = str(debian["vmlinux_nodebug"])
    out = {}
    for entry in ("native", "pvh"):
        path = tmp_path_factory.mktemp("traces") / f"{entry}-{until}.json"
        kernel = ["--kernel", str(debian["vmlinuz"])] if entry == "native" else []
        assert main(["trace", image, "--entry", entry, "-o", str(path), "--until", until,
                     "--timeout", "900", *kernel]) == 0
        out[entry] = str(path)
    return out


@pytest.fixture(scope="module")
def boot_traces(debian, tmp_path_factory) -> dict[str, str]:
    """Real QEMU boots of each Debian kernel until start_kernel, native and pvh."""
    return _traces(debian, tmp_path_factory, "start_kernel")


@pytest.fixture(scope="module")
def whole_boot_traces(debian, tmp_path_factory) -> dict[str, str]:
    """Real QEMU boots of each Debian kernel until init ends (no init: the panic)."""
    return _traces(debian, tmp_path_factory, "init-end")


@pytest.mark.parametrize("entry", ["native", "pvh"])
def test_traced_boot_is_inside_static_reach(capsys, debian, boot_traces, entry):
    """Every function that ran before start_kernel is statically reached."""
    image = str(debian["vmlinux_nodebug"])
    capsys.readouterr()
    result = query(capsys, "validate", image, "--trace", boot_traces[entry], "--entry", entry)
    assert result["missing"] == [] and result["share_inside"] == 1.0
    assert result["trace"]["functions"] > 30 and result["same_build"]
    # the boot path is not much larger than what runs (issue 14: at most 5x)
    assert result["precision"]["scope"] == "boot path"
    assert result["precision"]["ratio"] <= 5.0


@pytest.mark.parametrize("entry", ["native", "pvh"])
def test_whole_boot_is_inside_static_reach(capsys, debian, whole_boot_traces, entry):
    """At least 99.5% of what runs until init ends is statically reached (issue 11 asks
    99%; all of it was on 2026-12-07), with the static set at most 8x the traced one
    (5.8-7.1x then); each missing function names the reached one that ran before it and
    the transfer lost."""
    image = str(debian["vmlinux_nodebug"])
    capsys.readouterr()
    main(["validate", image, "--trace", whole_boot_traces[entry], "--entry", entry, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["trace"]["functions"] > 5000 and result["same_build"]
    assert result["share_inside"] >= 0.995, [m["function"] for m in result["missing"]][:40]
    assert all(m["after"] and m["lost"] for m in result["missing"])
    assert result["precision"]["scope"] == "whole boot"
    assert result["precision"]["ratio"] <= 8.0


def test_dynamic_diff_beside_static(capsys, debian, boot_traces):
    image = str(debian["vmlinux_nodebug"])
    capsys.readouterr()
    out = query(capsys, "skip", image, "--entry", "pvh", "--trace", boot_traces["pvh"],
                "--reference-trace", boot_traces["native"])
    dyn = out["dynamic"]
    assert dyn["entry_only"][:2] == ["pvh_start_xen", "xen_prepare_pvh"]
    assert dyn["reference_only"] == [] and dyn["static_skipped_that_ran"] == []
    assert {"pvh_start_xen", "xen_prepare_pvh"} <= set(dyn["entry_only_static_that_ran"])


def test_check_runs_with_real_chains(capsys, kernel):
    """Clean on the stock kernel (issue 12); the allowed roots carry the chains `why` gives."""
    code = main(["check", kernel, "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == report["exit_code"] == 0 and report["findings"] == []
    ids = {(f["rule"], f["symbol"]) for f in report["suppressed"]}
    assert ("EC100", "sme_encrypt_kernel") in ids
    why = {}
    for f in report["suppressed"]:
        assert f["chain"][0] == "startup_64" and f["reached_by"] == "native"
        if f["chain"][-1] not in why:
            why[f["chain"][-1]] = query(capsys, "why", kernel, "--entry", "native",
                                        f["chain"][-1])["chain"]
        assert why[f["chain"][-1]] == f["chain"]


def inlined_at(path: str, address: int, helper: str, host: str) -> str:
    """Where `host` calls the inlined `helper` at `address`, as binutils' addr2line reads
    the DWARF (`addr2line -f -i`: each frame's name, then the place inside it)."""
    out = subprocess.run(["addr2line", "-f", "-i", "-e", path, f"{address:#x}"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    frames = list(zip(out[::2], out[1::2], strict=True))
    names = [name for name, _ in frames]
    i = names.index(helper)
    assert names[i + 1] == host, frames
    return frames[i + 1][1].split(" (discriminator")[0]


def test_inlined_cr4_shadow_on_xen_pv(capsys, debian61):
    """cr4_init_shadow is a static inline: xen-pv reaches it inlined in xen_start_kernel
    (the fix of 5054daa285be); without DWARF the tool says inlined helpers are invisible."""
    out = query(capsys, "why", str(debian61["vmlinux"]), "--entry", "xen-pv", "cr4_init_shadow")
    assert out["chain"][-2:] == ["xen_start_kernel", "cr4_init_shadow"]
    last = out["links"][-1]
    assert last["edge"]["instruction"] == inlined_at(str(debian61["vmlinux"]),
                                                     int(last["address"], 16),
                                                     "cr4_init_shadow", "xen_start_kernel")
    assert "arch/x86/xen/enlighten_pv.c:" in last["edge"]["instruction"]
    assert main(["why", str(debian61["vmlinux_nodebug"]), "--entry", "xen-pv",
                 "cr4_init_shadow"]) == 2
    assert "without DWARF inlined helpers are invisible" in capsys.readouterr().err


def test_static_call_update_on_xen_path(capsys, debian61):
    """xen_start_kernel retargets the xen_hypercall static call: xen-pv reaches the PV
    hypercall code through the trampoline, native does not."""
    image = str(debian61["vmlinux_nodebug"])
    out = query(capsys, "why", image, "--entry", "xen-pv", "xen_hypercall_pv")
    edge = out["links"][-1]["edge"]
    assert edge["kind"] == "indirect-ops"
    assert edge["via"] == "__SCT__xen_hypercall (stored by xen_start_kernel)"
    assert main(["why", image, "--entry", "native", "xen_hypercall_pv", "--json"]) == 1
    xen_pv = json.loads(capsys.readouterr().out)["others"][0]
    assert xen_pv["then"] == ["xen_hypercall_pv"]  # native reaches the trampoline's readers
    assert xen_pv["edge"]["via"] == "__SCT__xen_hypercall (stored by xen_start_kernel)"


def test_whole_boot_diff_names_the_hooks(capsys, debian61):
    """Debian 6.1: the per-entry x86_init hooks appear in skip's whole-boot diff, each with
    its slot and the targets per entry (head64.c, enlighten_pv.c, platform/pvh)."""
    image = str(debian61["vmlinux_nodebug"])
    capsys.readouterr()
    xen = query(capsys, "skip", image, "--entry", "xen-pv")["whole_boot"]
    hooks = {h["slot"]: h["targets"] for h in xen["hooks"]}
    assert hooks["x86_init.resources.memory_setup"] == {
        "xen-pv": ["xen_memory_setup"], "native": ["e820__memory_setup_default"]}
    assert hooks["x86_init.paging.pagetable_init"]["xen-pv"] == ["xen_pagetable_init"]
    assert hooks["x86_init.oem.arch_setup"]["xen-pv"] == ["xen_arch_setup"]
    assert hooks["x86_init.oem.banner"] == {"xen-pv": ["xen_banner"],
                                            "native": ["default_banner"]}
    groups = {g["point"]["name"]: g for g in xen["groups"] if g["point"]["kind"] == "hook"}
    assert "e820__memory_setup_default" in groups["x86_init.resources.memory_setup"][
        "reference_only"]
    pvh = query(capsys, "skip", image, "--entry", "pvh")["whole_boot"]
    hooks = {h["slot"]: h["targets"] for h in pvh["hooks"]}
    assert hooks["x86_init.acpi.get_root_pointer"] == {
        "pvh": ["pvh_get_root_pointer"], "native": ["x86_default_get_root_pointer"]}


def test_whole_boot_diff_names_the_boot_facts(capsys, debian61):
    """Debian 6.1: `if (xen_pv_domain())` is followed one way per entry and the diff says
    which fact cut the call (arch/x86/kernel/pci-dma.c pci_iommu_alloc: Xen PV returns
    before detect_intel_iommu; arch/x86/xen/suspend.c: xen_pv_pre_suspend on Xen PV only)."""
    image = str(debian61["vmlinux_nodebug"])
    capsys.readouterr()
    xen = query(capsys, "skip", image, "--entry", "xen-pv")["whole_boot"]
    facts = [g for g in xen["groups"] if g["point"]["kind"] == "fact"]

    def group(prefix: str, fact: str) -> dict:
        found = [g for g in facts if g["point"]["name"].startswith(prefix)
                 and f"({fact} there)" in g["point"]["name"]]
        assert len(found) == 1, [g["point"]["name"] for g in facts]
        return found[0]

    iommu = group("pci_iommu_alloc -[call]-> detect_intel_iommu: cut for xen-pv",
                  "xen_domain_type is 1")
    assert "detect_intel_iommu" in iommu["reference_only"]
    suspend = group("xen_arch_pre_suspend -[jump]-> xen_pv_pre_suspend: cut for native",
                    "xen_domain_type is 0 or 2")
    assert "xen_pv_pre_suspend" in suspend["entry_only"]
