"""The real-kernel tier on Debian sid's newest kernel (7.x, CONFIG_X86_FRED=y): the boot
paths join where the sources say (not at a WARN trap capstone mis-decoded), and the IDT
set-up every non-FRED CPU runs behind `cpu_feature_enabled(X86_FEATURE_FRED)` is reached.

About 2.5 minutes: the boot-path analysis (~80 s) and the whole-boot one (~60 s)."""

from __future__ import annotations

import json

import pytest

from entrycheck.analysis import analyse
from entrycheck.cli import main

pytestmark = pytest.mark.realkernel

# arch/x86/kernel/traps.c trap_init(), idt.c, cpu/common.c: the IDT set-up a FRED kernel
# skips on FRED CPUs and runs on every other one
IDT_SETUP = ("idt_setup_traps", "idt_setup_early_pf", "load_current_idt")


def query(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def sid(debian_sid) -> str:
    config = debian_sid["config"].read_text()
    assert "CONFIG_X86_FRED=y" in config  # what makes the IDT set-up conditional
    return str(debian_sid["vmlinux_nodebug"])


def test_sid_xen_pv_converges_at_x86_64_start_reservations(capsys, sid):
    out = query(capsys, "skip", sid, "--entry", "xen-pv")
    assert out["convergence"] == ["x86_64_start_reservations"]
    skipped = {f["name"] for f in out["skipped"]}
    assert {"startup_64", "x86_64_start_kernel"} <= skipped
    assert "xen_start_kernel" in {f["name"] for f in out["entry_only"]}


def test_sid_pvh_converges_at_startup_64(capsys, sid):
    out = query(capsys, "skip", sid, "--entry", "pvh")
    assert out["convergence"] == ["startup_64"]
    assert out["skipped"] == []
    assert "pvh_start_xen" in {f["name"] for f in out["entry_only"]}


def test_sid_native_reaches_the_idt_setup(capsys, sid):
    out = query(capsys, "reach", sid, "--entry", "native", "--scope", "all")
    reached = {f["name"] for f in out["reached"]}
    assert set(IDT_SETUP) <= reached
    assert out["resolvers"]["alternatives"] > 0  # the feature tests' both arms


@pytest.mark.parametrize("function", IDT_SETUP)
def test_sid_why_idt_setup(capsys, sid, function):
    out = query(capsys, "why", sid, "--entry", "native", function)
    assert out["chain"][0] == "startup_64" and out["chain"][-1] == function
    assert "start_kernel" in out["chain"]
    assert all(link["edge"].get("condition") is None for link in out["links"][1:])


def test_sid_xen_pv_only_before_convergence(capsys, sid):
    """pin_pagetable_pfn (xen_setup_kernel_pagetable pins the page tables) is Xen PV's own
    early init. init_cpu_devs is not: in 7.x it is called from early_cpu_init (setup_arch,
    after the paths converge, on both entries) and from xen_get_vendor, which only the
    HVM hypercall stub reaches (xen_hypercall_hvm > __xen_hypercall_setfunc), and
    xen_start_kernel retargets the xen_hypercall static call to xen_hypercall_pv before
    its first hypercall (static_call_update_early ahead of xen_setup_features)."""
    out = query(capsys, "skip", sid, "--entry", "xen-pv")
    own = {f["name"] for f in out["entry_only"]}
    assert "pin_pagetable_pfn" in own and "init_cpu_devs" not in own
    chain = query(capsys, "why", sid, "--entry", "xen-pv", "init_cpu_devs")["chain"]
    assert chain[-3:] == ["setup_arch", "early_cpu_init", "init_cpu_devs"]
    assert chain.index("x86_64_start_reservations") < chain.index("setup_arch")
    hooks = query(capsys, "why", sid, "--entry", "xen-pv", "xen_hypercall_pv")["links"]
    assert "__SCT__xen_hypercall (stored by xen_start_kernel)" in hooks[-1]["edge"]["via"]


def test_sid_io_delay_is_a_xen_pv_boot_fact(sid):
    """7.x replaced the pv_ops.cpu.io_delay hook with the bool pv_info.io_delay: Xen PV
    copies xen_info (.io_delay = false) into pv_info, so slow_down_io() never calls
    native_io_delay there. The fact cuts pit_set_oneshot's call for xen-pv, not native's,
    and flows along a branch in a register (vgacon_set_cursor_size loads it into %esi,
    then `jbe` to code that tests %sil)."""
    graphs = analyse(sid, complete=True).graphs
    native, xen_pv = graphs["native"], graphs["xen-pv"]
    delay = next(a for a in native.table.addresses if native.name(a) == "native_io_delay")
    cut = {(xen_pv.name(p.caller), p.fact) for p in xen_pv.pruned if p.callee == delay}
    assert ("pit_set_oneshot", "pv_info.io_delay is 0") in cut
    assert ("vgacon_set_cursor_size", "pv_info.io_delay is 0") in cut
    assert not any(p.callee == delay for p in native.pruned)
