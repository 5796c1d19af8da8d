"""entrycheck.special.sections: the tables of one image looked up by address (sample
kernel: one alternative, one jump label), WARN and BUG sites of `__bug_table`, fixups,
and the summary that names a table no layout fits."""

from __future__ import annotations

import json

from entrycheck.binary.image import Image
from entrycheck.cli import main
from entrycheck.knowledge import x86
from entrycheck.special.sections import Alternative, SpecialSections

from ..snippets import assemble


def test_sample_alternative_and_jump_label(sample):
    image = Image(sample)
    special = SpecialSections(image, x86())
    start = image.symbol_address("early_cpu_init")
    end = start + next(s.size for s in image.symbols if s.name == "early_cpu_init")
    replacement = image.section(".altinstr_replacement")
    alt, = special.alternatives_in(start, end)
    # ALTERNATIVE("", "call alt_only_helper", ...): 5 nops replaced by a 5-byte call
    assert alt == Alternative(alt.site, replacement.addr, 5, 5)
    assert start <= alt.site < end and image.read(alt.site, 5) == b"\x90" * 5
    (site, target, key, branch), = special.jump_labels_in(start, end)
    assert image.read(site, 5) == bytes.fromhex("0f1f440000")  # the key's nop
    assert (key, branch) == (image.symbol_address("early_debug_key"), False)  # unlikely()
    assert start <= site < target < end
    assert special.alternatives_in(end, end + 0x100) == []
    assert special.fixups_in(start, end) == []


def test_sample_summary_reads_every_table_without_problems(sample):
    special = SpecialSections(Image(sample), x86())
    summary = {t["name"]: t for t in special.summary()}
    assert set(summary) == {t.name for t in x86().tables}
    assert (summary["alternatives"]["entries"], summary["alternatives"]["layout"]) == (1, "<6.3")
    assert (summary["jump_labels"]["entries"], summary["jump_labels"]["layout"]) == (1, "any")
    assert summary["bugs"] == {"name": "bugs", "entries": 0, "layout": None}  # none in it
    assert special.problems() == []


BUGS = r"""
    .text
    .globl startup_64
startup_64:
warn_site:
    ud2
bug_site:
    ud2
fault:
    mov (%rdi), %rax
fixup:
    ret
    .data
linux_banner: .asciz "Linux version 6.1.0"
    .balign 4
__start___bug_table:                    # struct bug_entry: addr, file, line, flags
    .long warn_site - ., 0
    .word 12, 1                         # BUGFLAG_WARNING
    .long bug_site - ., 0
    .word 13, 0
__stop___bug_table:
__start___ex_table:                     # struct exception_table_entry: insn, fixup, data
    .long fault - ., fixup - ., 0
__stop___ex_table:
    .section .altinstructions,"a"
    .long warn_site - ., fixup - .
    .byte 0                             # 9 bytes: no layout fits
"""


def test_warn_and_bug_sites_and_fixups():
    snip = assemble(BUGS)
    special = SpecialSections(snip.image, x86())
    assert special.warn_sites == frozenset({snip["warn_site"]})
    assert special.bug_sites == frozenset({snip["bug_site"]})
    assert special.fixups_in(snip["startup_64"], snip["fixup"] + 1) == [snip["fixup"]]
    assert special.fixups_in(snip["fixup"] + 1, snip["fixup"] + 2) == []


def test_problems_name_the_table():
    special = SpecialSections(assemble(BUGS).image, x86())
    assert special.problems() == [
        "alternatives: no layout fits its 9 bytes (tried 12 bytes (<6.3); 14 bytes (>=6.3))"]
    assert special.alternatives_in(0, 1 << 64) == []  # and nothing is made up


def test_problem_on_stderr_and_in_json(capsys):
    """A table no layout fits is said, on stderr and in --json (never a silent [])."""
    path = str(assemble(BUGS).path)
    assert main(["entries", path, "--json"]) == 0
    captured = capsys.readouterr()
    tables = {t["name"]: t for t in json.loads(captured.out)["special_sections"]}
    assert tables["alternatives"]["problem"].startswith("no layout fits its 9 bytes")
    assert "alternatives: no layout fits its 9 bytes" in captured.err
