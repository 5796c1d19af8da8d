"""Instruction boundaries of the decoder against `objdump -d`: each kind of disagreement on
assembled functions, the sample kernel (all agree), and Debian's 6.1, 6.12 and sid
kernels (all agree but the functions listed below, each for its reason)."""

from __future__ import annotations

import json
import shutil

import pytest

from entrycheck.cli import main
from entrycheck.crosscheck.with_objdump import REASONS, compare

from ..conftest import debian_kernel
from ..snippets import assemble

needs_objdump = pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump")

# The functions of Debian's kernels whose boundaries may differ from objdump's, and why:
# none is a decode error (issue 10).
KNOWN_DISAGREEMENTS = {
    # `9b db e3`: fwait, then fninit; objdump prints the two as one `finit`
    "fpu__init_check_bugs": ("fwait-prefix", "objdump joins fwait to the x87 instruction"),
    # the `movabs` of srso_untrain_ret holds srso_safe_ret's code (arch/x86/lib/retpoline.S):
    # a symbol inside an instruction, objdump restarts at it and prints `.byte`/`rex.W`
    "srso_untrain_ret": ("cut-by-symbol", "bytes of srso_safe_ret inside its movabs"),
    "retbleed_untrain_ret": ("cut-by-symbol", "bytes of retbleed_return_thunk inside it"),
    # LKGS (`f2 0f 00 /6`, FRED kernels' native_lkgs and where it is inlined), which
    # binutils before 2.41 prints as (bad)
    "native_lkgs": ("objdump-unknown", "LKGS: binutils < 2.41 does not know it"),
    "native_load_gs_index": ("objdump-unknown", "LKGS inlined from native_lkgs"),
}


def function(name: str, body: str) -> str:
    return f"""
    .globl {name}
    .type {name}, @function
{name}:
{body}
    .size {name}, . - {name}
"""


SOURCE = "    .text\n" + function("plain", """
    push %rbp
    mov %rsp, %rbp
    .byte 0x67, 0x48, 0x0f, 0xb9, 0x3a      # ud1 (%edx),%rdi
    pop %rbp
    ret
""") + function("x87_init", """
    fwait
    fninit
    ret
""") + function("untrain", """
    .byte 0x48, 0xb8                        # movabs $..., %rax, whose bytes hold...
    .globl safe_ret
safe_ret:                                   # ...a symbol of their own
    .byte 0x48, 0x8d, 0x64, 0x24, 0x08, 0xc3, 0xcc, 0xcc
    ret
""")


@pytest.fixture(scope="module")
def snippet_result():
    return compare(assemble(SOURCE).image)


@needs_objdump
def test_each_kind_of_disagreement(snippet_result):
    result = snippet_result
    assert result.functions == 3
    by_name = {d.function: d for d in result.disagreements}
    assert set(by_name) == {"x87_init", "untrain"}  # `plain`, with its 5-byte ud1, agrees
    x87 = by_name["x87_init"]  # first difference: our fninit, after the 1-byte fwait
    assert (x87.reason, x87.ours, x87.objdump) == ("fwait-prefix", "fninit", "finit")
    assert by_name["untrain"].reason == "cut-by-symbol"
    assert result.agreeing == 1
    assert result.as_json()["by_reason"] == {"objdump-unknown": 0, "cut-by-symbol": 1,
                                             "fwait-prefix": 1, "unexplained": 0}


@needs_objdump
def test_sample_agrees_everywhere(capsys, sample):
    assert main(["crosscheck", str(sample), "--objdump", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["against"] == "objdump" and out["functions"] > 30
    assert out["agreeing"] == out["functions"] and out["disagreements"] == []


def test_known_disagreements_have_known_reasons():
    assert all(reason in REASONS and reason != "unexplained" and why
               for reason, why in KNOWN_DISAGREEMENTS.values())


@pytest.mark.realkernel
@pytest.mark.parametrize("version", ["6.1", "6.12", "sid"])
def test_debian_kernel_agrees_with_objdump(capsys, version):
    """Every sized function agrees with objdump -d but the known ones, each for its
    reason (~1 minute per kernel: objdump's own sweep is most of it)."""
    image = debian_kernel(version)["vmlinux_nodebug"]
    code = main(["crosscheck", str(image), "--objdump", "--json"])
    out = json.loads(capsys.readouterr().out)
    print(json.dumps({k: v for k, v in out.items() if k != "disagreements"}),
          [(d["function"], d["reason"]) for d in out["disagreements"]])
    assert code == 0  # no unexplained disagreement
    assert out["functions"] > 40_000
    assert out["by_reason"]["unexplained"] == 0
    measured = {d["function"]: d["reason"] for d in out["disagreements"]}
    assert measured.keys() <= KNOWN_DISAGREEMENTS.keys(), measured
    assert all(KNOWN_DISAGREEMENTS[f][0] == reason for f, reason in measured.items()), measured
    assert out["agreeing"] == out["functions"] - len(out["disagreements"])
