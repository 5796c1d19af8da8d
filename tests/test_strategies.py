"""Each indirect-control-flow strategy has a case: in sample_vmlinux (known answers in
expected.json "strategies"), and, in the real-kernel tier, a function on Debian 6.1's boot
path that is reached only through it."""

from __future__ import annotations

import json
import struct

import pytest

from entrycheck.binary.image import Image
from entrycheck.cli import main

from .conftest import debian_kernel


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def reach(capsys, image, entry: str) -> set[str]:
    out = run_json(capsys, "reach", str(image), "--entry", entry, "--scope", "all")
    return {f["name"] for f in out["reached"]}


def last_link(capsys, image, entry: str, function: str) -> tuple[list[str], dict]:
    out = run_json(capsys, "why", str(image), "--entry", entry, function)
    assert out["chain"][-1] == function
    return out["chain"], out["links"][-1]["edge"]


# -- sample_vmlinux -------------------------------------------------------------------------

SAMPLE_CASES = ["slot", "register", "mode_switch", "ops_table", "exception", "alternative",
                "jump_label", "static_call", "static_call_update", "retpoline", "jump_table",
                "noreturn",
                # secondary_startup_64 ends in `call verify_cpu` right before the inner label:
                # the fall-through holds because verify_cpu returns
                "fallthrough"]


def test_every_strategy_has_a_case(expected):
    names = [c if isinstance(c, str) else c.values[0] for c in SAMPLE_CASES]
    assert sorted(expected["strategies"]) == sorted(names)


@pytest.mark.parametrize("strategy", SAMPLE_CASES)
def test_sample_strategy(capsys, sample, expected, strategy):
    case = expected["strategies"][strategy]
    assert case["function"] in reach(capsys, sample, case["entry"])
    chain, edge = last_link(capsys, sample, case["entry"], case["function"])
    assert chain[-2] == case["from"]
    assert edge["kind"] == case["kind"]
    if "via" in case:
        assert edge["via"] == case["via"]


def _jump_entries(image: Image) -> list[tuple[int, int]]:
    """(code, target) of each 16-byte `struct jump_entry` (6.1), read from the raw bytes."""
    start = image.symbol_address("__start___jump_table")
    stop = image.symbol_address("__stop___jump_table")
    data = image.read(start, stop - start)
    out = []
    for off in range(0, len(data), 16):
        code, target = struct.unpack_from("<ii", data, off)
        out.append((start + off + code, start + off + 4 + target))
    return out


def test_sample_alternative(capsys, sample):
    _, edge = last_link(capsys, sample, "native", "alt_only_helper")
    image = Image(sample)
    assert image.section_at(int(edge["site"], 16)).name == ".altinstr_replacement"
    alt = image.symbol_address("__alt_instructions")
    site = alt + struct.unpack("<i", image.read(alt, 4))[0]
    assert image.read(site, 5) == b"\x90" * 5  # the original: nops only, no call


def test_sample_jump_label(capsys, sample):
    """The call sits in early_cpu_init's out-of-line block that only the __jump_table entry
    of the 5-byte nop leads to."""
    chain, edge = last_link(capsys, sample, "native", "static_key_only_helper")
    image = Image(sample)
    (code, target), = _jump_entries(image)
    func = image.symbol_address("early_cpu_init")
    assert image.read(code, 5) == bytes.fromhex("0f1f440000")
    assert func <= code < target <= int(edge["site"], 16)
    assert chain[-2] == "early_cpu_init" and edge["kind"] == "call"


def test_sample_static_call(capsys, sample):
    names = reach(capsys, sample, "native")
    assert {"__SCT__early_hook", "default_early_hook"} <= names
    assert "xen_early_hook" not in names and "__static_call_update" not in names
    chain, edge = last_link(capsys, sample, "native", "__SCT__early_hook")
    assert chain[-2] == "early_cpu_init" and edge["kind"] == "call"


def test_sample_static_call_update_on_xen_pv(capsys, sample):
    """xen_start_kernel's static_call_update(early_hook, xen_early_hook) retargets the
    trampoline for xen-pv: its call through __SCT__early_hook reaches xen_early_hook."""
    chain, edge = last_link(capsys, sample, "xen-pv", "xen_early_hook")
    assert chain == ["startup_xen", "xen_start_kernel", "xen_early_hook"]
    assert edge["kind"] == "indirect-ops"
    assert edge["via"] == "__SCT__early_hook (stored by xen_start_kernel)"
    assert edge["instruction"].startswith("call")


def test_sample_retpoline(capsys, sample):
    names = reach(capsys, sample, "native")
    assert {"__x86_indirect_thunk_rax", "thunk_target_fn"} <= names
    _, edge = last_link(capsys, sample, "native", "thunk_target_fn")
    thunk = Image(sample).symbol_address("__x86_indirect_thunk_rax")
    assert edge["kind"] == "indirect-register"
    assert int(edge["instruction"].split()[-1], 16) == thunk  # the site calls the thunk


def test_sample_jump_table(capsys, sample):
    chain, edge = last_link(capsys, sample, "native", "jump_table_case_helper")
    assert chain[-2:] == ["early_cpu_set_mode", "jump_table_case_helper"]
    assert edge["kind"] == "call"
    out = run_json(capsys, "reach", str(sample), "--entry", "native", "--scope", "all")
    assert all(u["function"] != "early_cpu_set_mode" for u in out["unresolved"])


def test_sample_noreturn(capsys, sample, expected):
    for entry in ("native", "xen-pv", "pvh"):
        names = reach(capsys, sample, entry)
        assert "panic" in names and "dead_after_panic" not in names
    assert main(["why", str(sample), "--entry", "native", "dead_after_panic"]) == 2
    capsys.readouterr()
    for entry in ("xen-pv", "pvh"):  # xen-pv reaches panic before the paths join
        out = run_json(capsys, "skip", str(sample), "--entry", entry)
        assert out["convergence"] == expected["convergence"][entry]
        assert "panic" not in out["convergence"]


@pytest.mark.parametrize("entry", ["xen-pv", "pvh"])
def test_skip_grows_only_by_native_only_helpers(capsys, sample, expected, entry):
    """The new code changes no convergence; the boot-path skip list (--scope early) grows
    only by the native-only functions of cpu_common.c and retpoline.S."""
    out = run_json(capsys, "skip", str(sample), "--entry", entry, "--scope", "early")
    assert [f["name"] for f in out["skipped"]] == expected["skip_early"][entry]
    assert out["convergence"] == expected["convergence"][entry]
    assert set(expected["skip_early"][entry]) - set(expected["skip"][entry]) <= (
        set(expected["reach"]["native"]) - set(expected["reach"]["xen-pv"]))


# -- Debian 6.1 (real-kernel tier) ----------------------------------------------------------
# Found by hand with objdump -d / readelf on linux-image-6.1.0-*-cloud-amd64-dbg:
#   (a) x86_64_start_kernel: clear_page() is alternative_call_2(clear_page_orig, ...);
#       .altinstr_replacement holds `call clear_page_erms` (e8 .. <clear_page_erms>).
#   (b) printk_sprint: trace_console()'s static key is a 2-byte nop (`66 90`, one
#       __jump_table entry); its out-of-line target block does `call __SCT__tp_func_console`.
#   (c) xen_start_kernel: `call __SCT__xen_hypercall` after xen_start_kernel's own
#       static_call_update(xen_hypercall, xen_hypercall_pv) (via __xen_hypercall_setfunc).
#   (d) smp_call_function_many_cond: `mov smp_ops+0x50(%rip),%rax;
#       call __x86_indirect_thunk_rax` reaches native_send_call_func_ipi.
#   (e) none: Debian builds with retpolines (CONFIG_RETPOLINE=y -> -fno-jump-tables);
#       objdump finds no `jmp *table(,%reg,8)` in the whole image.


@pytest.mark.realkernel
def test_debian61_alternative(capsys, debian61):
    image = debian61["vmlinux_nodebug"]
    chain, edge = last_link(capsys, image, "native", "clear_page_erms")
    assert chain[-2] == "x86_64_start_kernel" and edge["kind"] == "alternative"
    assert Image(image).section_at(int(edge["site"], 16)).name == ".altinstr_replacement"


@pytest.mark.realkernel
def test_debian61_jump_label(capsys, debian61):
    image = debian61["vmlinux_nodebug"]
    chain, edge = last_link(capsys, image, "native", "__SCT__tp_func_console")
    assert chain[-2] == "printk_sprint" and edge["kind"] == "call"
    img = Image(image)
    start = img.symbol_address("printk_sprint")
    site = int(edge["site"], 16)
    blocks = [target for code, target in _jump_entries(img) if start <= code < site]
    assert any(code_target <= site for code_target in blocks)  # inside a jump-label block


@pytest.mark.realkernel
def test_debian61_static_call(capsys, debian61):
    image = debian61["vmlinux_nodebug"]
    chain, edge = last_link(capsys, image, "xen-pv", "xen_hypercall_pv")
    assert chain == ["startup_xen", "xen_start_kernel", "xen_hypercall_pv"]
    assert edge["kind"] == "indirect-ops"
    assert edge["via"] == "__SCT__xen_hypercall (stored by xen_start_kernel)"
    assert "xen_hypercall_pv" not in reach(capsys, image, "native")


@pytest.mark.realkernel
def test_debian61_retpoline_thunk(capsys, debian61):
    image = debian61["vmlinux_nodebug"]
    chain, edge = last_link(capsys, image, "native", "native_send_call_func_ipi")
    assert chain[-2] == "smp_call_function_many_cond"
    assert edge["kind"] == "indirect-slot" and edge["via"] == "smp_ops+0x50"
    thunk = Image(image).symbol_address("__x86_indirect_thunk_rax")
    assert int(edge["instruction"].split()[-1], 16) == thunk
    assert "__x86_indirect_thunk_array" in reach(capsys, image, "native")  # the thunk node


@pytest.mark.realkernel
@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_debian_jump_table(version):
    config = debian_kernel(version)["config"].read_text()
    if "CONFIG_RETPOLINE=y" in config or "CONFIG_MITIGATION_RETPOLINE=y" in config:
        pytest.skip(f"Debian {version} builds with retpolines: -fno-jump-tables, so gcc emits "
                    "no jump tables (objdump finds no `jmp *table(,%reg,8)`)")
    pytest.fail(f"Debian {version} without retpolines: find a jump-table case by hand")
