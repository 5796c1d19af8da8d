"""The image model agrees with binutils (nm, readelf) on the sample kernel."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from entrycheck.binary.functions import FunctionTable, normalise_name
from entrycheck.binary.image import XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_PHYS32_ENTRY, Image

binutils = pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils")


@binutils
def test_symbols_match_nm(sample):
    nm = subprocess.run(["nm", "--defined-only", str(sample)], capture_output=True, text=True,
                        check=True).stdout.split("\n")
    want = {(int(v, 16), n) for v, _, n in (line.split() for line in nm if line)}
    got = {(s.value, s.name) for s in Image(sample).symbols if s.section}
    assert want <= got


@binutils
def test_build_id_matches_readelf(sample):
    notes = subprocess.run(["readelf", "-n", str(sample)], capture_output=True, text=True,
                           check=True).stdout
    assert f"Build ID: {Image(sample).build_id}" in notes


def test_xen_notes_and_physical_mapping(sample, expected):
    image = Image(sample)
    assert f"{image.xen_note(XEN_ELFNOTE_ENTRY):#x}" == expected["xen_notes"]["entry"]
    phys = image.xen_note(XEN_ELFNOTE_PHYS32_ENTRY)
    assert f"{phys:#x}" == expected["xen_notes"]["phys32_entry"]
    assert f"{image.phys_to_virt(phys):#x}" == expected["entries"]["pvh"]["address"]


def test_relocation_of_initial_code(sample):
    image = Image(sample)
    reloc = image.relocation_at(image.symbol_address("initial_code"))
    assert reloc is not None and reloc.symbol == "x86_64_start_kernel"
    assert reloc.target == image.symbol_address("x86_64_start_kernel")


def test_inner_label_is_its_own_function(sample):
    table = FunctionTable(Image(sample))
    outer, inner = table.named("secondary_startup_64"), table.named("common_startup_64")
    assert outer.end == inner.start
    assert table.at(inner.start + 1) == inner
    assert table.named("_text") == table.named("startup_64")  # alias, not a function of its own
    assert table.named("startup_64").name == "startup_64"


@pytest.mark.parametrize(("raw", "norm"), [
    ("load_ucode_bsp.cold", "load_ucode_bsp"),
    ("set_bringup_idt_handler.constprop.0", "set_bringup_idt_handler"),
    ("foo.isra.0.part.3", "foo"),
    ("__pi_memcpy", "memcpy"),
    ("startup_64", "startup_64"),
])
def test_normalise_name(raw, norm):
    assert normalise_name(raw) == norm
