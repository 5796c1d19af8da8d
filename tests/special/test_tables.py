"""entrycheck.special.tables: the generic descriptor-table reader picks the layout of the
kernel's version (or the one that fits), reads rel32 / ptr / integer fields, and says why
when no layout fits. Tables are assembled into tiny ELFs with the kernel's layouts."""

from __future__ import annotations

import pytest

from entrycheck.knowledge import x86
from entrycheck.special.sections import kernel_version
from entrycheck.special.tables import read_table

from ..snippets import assemble


def spec(name: str):
    return next(t for t in x86().tables if t.name == name)


def kernel(banner: str, alternatives: str = "", extra: str = "") -> str:
    """A snippet with code, a replacement, `linux_banner` and an .altinstructions body."""
    return rf"""
    .text
site0:  .byte 0x90, 0x90, 0x90, 0x90, 0x90
site1:  .byte 0x90, 0x90
    ret
    .section .altinstr_replacement,"ax"
repl0:  call site0
repl1:  .byte 0x66, 0x90
    .data
linux_banner: .asciz "{banner}"
{extra}
    .section .altinstructions,"a"
{alternatives}
"""


# struct alt_instr before 6.3: instr, repl (rel32), cpuid (u16), instrlen, replacementlen
ALT_12 = """
    .long site0 - .
    .long repl0 - .
    .word 0x1a
    .byte 5, 5
    .long site1 - .
    .long repl1 - .
    .word 0x20
    .byte 2, 2
"""
# from 6.3: instr, repl, ft_flags (u32), instrlen, replacementlen
ALT_14 = """
    .long site0 - .
    .long repl0 - .
    .long 0x1a
    .byte 5, 5
    .long site1 - .
    .long repl1 - .
    .long 0x20
    .byte 2, 2
"""


def test_kernel_version_from_the_banner():
    assert kernel_version(assemble(kernel("Linux version 6.1.0-57-cloud-amd64")).image) == \
        (6, 1, 0)
    assert kernel_version(assemble(kernel("Linux version 7.2.13+deb14-cloud-amd64")).image) \
        == (7, 2, 13)
    assert kernel_version(assemble(kernel("not a kernel")).image) is None


@pytest.mark.parametrize(("banner", "body", "layout"), [
    ("Linux version 6.1.0", ALT_12, "<6.3"),
    ("Linux version 6.12.57", ALT_14, ">=6.3"),
])
def test_layout_of_the_kernel_version(banner, body, layout):
    snip = assemble(kernel(banner, body))
    image = snip.image
    table = read_table(image, spec("alternatives"), kernel_version(image))
    assert (table.layout, table.count, table.problem) == (layout, 2, None)
    first, second = table.entries
    assert (first["instr"], first["repl"], first["instrlen"], first["repllen"]) == (
        snip["site0"], snip["repl0"], 5, 5)
    assert (second["instr"], second["repl"], second["instrlen"], second["repllen"]) == (
        snip["site1"], snip["repl1"], 2, 2)
    field = "cpuid" if layout == "<6.3" else "flags"
    assert (first[field], second[field]) == (0x1A, 0x20)


def test_layout_that_fits_when_the_version_says_otherwise():
    """A 6.12 banner over 12-byte entries (a backport): the other layout fits, and the
    layout name says the kernel's version did not choose it."""
    image = assemble(kernel("Linux version 6.12.0", ALT_12)).image
    table = read_table(image, spec("alternatives"), kernel_version(image))
    assert table.layout == "<6.3, although the kernel is 6.12.0"
    assert table.count == 2 and table.problem is None


def test_a_size_both_layouts_divide_is_decided_by_the_fields():
    """Seven 12-byte entries are 84 bytes, six 14-byte ones too: read as 14-byte entries,
    their `instr` fields do not point into code, so the 12-byte layout is taken."""
    image = assemble(kernel("Linux version 6.12.0", ALT_12 + ALT_12 + ALT_12 + """
    .long site0 - .
    .long repl0 - .
    .word 0
    .byte 5, 5
""")).image
    table = read_table(image, spec("alternatives"), kernel_version(image))
    assert table.count == 7
    assert table.layout == "<6.3, although the kernel is 6.12.0"


def test_no_layout_fits_says_which_were_tried():
    image = assemble(kernel("Linux version 6.1.0", ALT_12 + ".byte 0")).image
    table = read_table(image, spec("alternatives"), kernel_version(image))
    assert table.entries == [] and table.layout is None
    assert table.problem == "no layout fits its 25 bytes (tried 12 bytes (<6.3); 14 bytes (>=6.3))"
    assert table.as_json() == {"name": "alternatives", "entries": 0, "layout": None,
                               "problem": table.problem}


def test_entries_that_point_outside_code_fit_no_layout():
    image = assemble(kernel("Linux version 6.1.0", """
    .long linux_banner - .
    .long repl0 - .
    .word 0
    .byte 5, 5
""")).image
    table = read_table(image, spec("alternatives"), kernel_version(image))
    assert table.problem == "no layout fits its 12 bytes (tried 12 bytes (<6.3); 14 bytes (>=6.3))"


def test_absent_and_empty_tables():
    image = assemble(kernel("Linux version 6.1.0", ALT_12, extra="""
__start___jump_table:
__stop___jump_table:
""")).image
    absent = read_table(image, spec("exception_fixups"), (6, 1))
    assert (absent.count, absent.layout, absent.problem) == (0, None, None)
    empty = read_table(image, spec("jump_labels"), (6, 1))
    assert (empty.count, empty.layout, empty.problem) == (0, "empty", None)


def test_only_counted_unless_decoded():
    image = assemble(kernel("Linux version 6.1.0", ALT_12)).image
    table = read_table(image, spec("alternatives"), (6, 1, 0), decode=False)
    assert (table.count, table.entries, table.layout) == (2, [], "<6.3")


def test_pointer_fields_and_the_first_layout_that_fits():
    """`struct obs_kernel_param` (__setup): name and setup function are pointers; the
    24-byte layout is tried before the 12-byte one of 32-bit kernels."""
    snip = assemble(kernel("Linux version 6.1.0", ALT_12, extra="""
    .balign 8
param_name: .asciz "quiet"
    .balign 8
__setup_start:
    .quad param_name, site0
    .long 1, 0
    .quad param_name, site1
    .long 0, 0
__setup_end:
"""))
    table = read_table(snip.image, spec("setup_params"), (6, 1, 0))
    assert table.layout == "any" and table.problem is None
    assert [(e["name"], e["function"], e["early"]) for e in table.entries] == [
        (snip["param_name"], snip["site0"], 1), (snip["param_name"], snip["site1"], 0)]
