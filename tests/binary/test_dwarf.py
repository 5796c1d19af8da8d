"""Tests of entrycheck.binary.dwarf: inlined helpers and declaration sites from DWARF."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from entrycheck import cache
from entrycheck.binary import dwarf_reader
from entrycheck.binary.dwarf import DwarfIndex, Inlined, SourceLocation
from entrycheck.binary.image import Image
from entrycheck.errors import EntrycheckError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_vmlinux"
VMLINUX = SAMPLE / "vmlinux"
EXPECTED = json.loads((SAMPLE / "expected.json").read_text())
REAL_ABI = "6.1.0-56-cloud-amd64"


def _line_of(path: Path, text: str) -> int:
    """1-based number of the first line of path containing text."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


@pytest.fixture(scope="module")
def sample_image() -> Image:
    return Image(VMLINUX)


def _function_range(image: Image, name: str) -> tuple[int, int]:
    (sym,) = image.symbols_by_name[name]
    return sym.value, sym.value + sym.size


def _check_sample(index: DwarfIndex, image: Image) -> None:
    start, end = _function_range(image, "x86_64_start_kernel")
    inl = index.inlined_in({"x86_64_start_kernel": start})
    assert [i.name for i in inl["x86_64_start_kernel"]] == EXPECTED["inlined"][
        "x86_64_start_kernel"
    ]
    (only,) = inl["x86_64_start_kernel"]
    assert only.name == "cr4_init_shadow"
    assert only.call_file == "head64.c"
    assert only.call_line == _line_of(SAMPLE / "head64.c", "\tcr4_init_shadow();")
    assert only.low_pc is not None and start <= only.low_pc < end
    locs = index.locations(
        {"x86_64_start_kernel": start, "setup_arch": image.symbol_address("setup_arch")}
    )
    assert locs == {
        "x86_64_start_kernel": SourceLocation(
            "head64.c", _line_of(SAMPLE / "head64.c", "void x86_64_start_kernel(")
        ),
        "setup_arch": SourceLocation(
            "main.c", _line_of(SAMPLE / "main.c", "void setup_arch(void)")
        ),
    }


def test_sample_has_aranges(sample_image: Image) -> None:
    assert sample_image.section(".debug_aranges") is not None
    index = DwarfIndex(VMLINUX)
    assert index.available
    _check_sample(index, sample_image)
    assert index._aranges is not None and index._aranges[1]  # answered from .debug_aranges
    assert index._cu_scan is None  # ... without the units' own ranges


def test_sample_fallback_without_aranges_in_memory(sample_image: Image) -> None:
    index = DwarfIndex(VMLINUX)
    index._aranges = ([], [])  # as if .debug_aranges were empty
    _check_sample(index, sample_image)
    assert index._cu_scan is not None and index._cu_scan[1]


def test_unit_ranges_agree_with_aranges() -> None:
    """The fallback table (each unit's top-DIE ranges) covers what .debug_aranges says."""
    reader = DwarfIndex(VMLINUX)._dwarf()
    assert sorted(reader.unit_ranges()) == sorted(reader.aranges())


def _reference(path: Path) -> tuple[dict, dict]:
    """inlined_in and locations answers for every function, through pyelftools (an
    independent reader), keyed by the function's low_pc."""
    from elftools.elf.elffile import ELFFile

    inlined, locations = {}, {}
    with path.open("rb") as f:
        info = ELFFile(f).get_dwarf_info(relocate_dwarf_sections=False)
        for cu in info.iter_CUs():
            lineprog = info.line_program_for_CU(cu)
            files = {}
            top = cu.get_top_DIE()
            comp = top.attributes["DW_AT_comp_dir"].value.decode() \
                if "DW_AT_comp_dir" in top.attributes else ""
            v5 = lineprog.header.version >= 5
            dirs = [d.decode() for d in lineprog.header.include_directory]
            base = dirs.pop(0) if v5 and dirs else comp
            dirs = [base] + [dwarf_reader._join(base, d) for d in dirs]
            for i, entry in enumerate(lineprog.header.file_entry):
                files[i if v5 else i + 1] = dwarf_reader._join(dirs[entry.dir_index],
                                                               entry.name.decode())

            def attr(die, name):
                for _ in range(8):
                    if name in die.attributes:
                        return die.attributes[name].value
                    ref = next((r for r in ("DW_AT_abstract_origin", "DW_AT_specification")
                                if r in die.attributes), None)
                    if ref is None:
                        return None
                    die = die.get_DIE_from_attribute(ref)
                return None

            def walk(die):
                for child in die.iter_children():
                    yield child
                    yield from walk(child)

            for die in top.iter_children():
                if die.tag != "DW_TAG_subprogram" or "DW_AT_low_pc" not in die.attributes:
                    continue
                low = die.attributes["DW_AT_low_pc"].value
                inlined[low] = [(attr(d, "DW_AT_name").decode(),
                                 files.get(d.attributes["DW_AT_call_file"].value),
                                 d.attributes["DW_AT_call_line"].value)
                                for d in walk(die) if d.tag == "DW_TAG_inlined_subroutine"]
                if attr(die, "DW_AT_decl_file") is not None:
                    locations[low] = (files[attr(die, "DW_AT_decl_file")],
                                      attr(die, "DW_AT_decl_line"))
    return inlined, locations


def test_every_function_agrees_with_pyelftools(sample_image: Image) -> None:
    want_inlined, want_locations = _reference(VMLINUX)
    assert len(want_inlined) > 20 and any(want_inlined.values())
    addresses = {f"f{low:x}": low for low in want_inlined}
    index = DwarfIndex(VMLINUX)
    got = index.inlined_in(addresses)
    assert {int(k[1:], 16): [(i.name, i.call_file, i.call_line) for i in v]
            for k, v in got.items()} == want_inlined
    got_loc = index.locations(addresses)
    assert {int(k[1:], 16): (v.file, v.line) for k, v in got_loc.items()} == want_locations


def test_second_index_answers_from_the_cache(sample_image: Image, tmp_path: Path) -> None:
    first = DwarfIndex(VMLINUX, cache_dir=tmp_path)
    _check_sample(first, sample_image)
    assert first.indexed > 0 and first._reader is not None
    assert list((tmp_path / "dwarf").glob("*.json.z"))
    again = DwarfIndex(VMLINUX, cache_dir=tmp_path)
    _check_sample(again, sample_image)
    assert again.indexed == 0 and again._reader is None  # no DWARF section was read
    assert "cr4_init_shadow" in again.names()


def test_sample_fallback_without_aranges_section(sample_image: Image, tmp_path: Path) -> None:
    objcopy = shutil.which("objcopy")
    if objcopy is None:
        pytest.skip("objcopy not installed")
    copy = tmp_path / "vmlinux"
    subprocess.run(
        [objcopy, "--remove-section=.debug_aranges", "--remove-section=.rela.debug_aranges",
         str(VMLINUX), str(copy)],
        check=True,
    )  # fmt: skip
    index = DwarfIndex(copy)
    _check_sample(index, sample_image)
    assert index._aranges == ([], [])
    assert index._cu_scan is not None and index._cu_scan[1]


def test_nested_inlines_walked_and_unknowns_left_out(sample_image: Image) -> None:
    index = DwarfIndex(VMLINUX)
    addrs = {
        "start_kernel": sample_image.symbol_address("start_kernel"),
        "startup_64": sample_image.symbol_address("startup_64"),  # assembly: no subprogram DIE
        "nowhere": 0x1234,
    }
    inl = index.inlined_in(addrs)
    assert inl == {"start_kernel": []}
    assert set(index.locations(addrs)) == {"start_kernel"}


def test_not_available_without_g(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed")
    src = tmp_path / "nodebug.c"
    src.write_text("static int x;\nvoid _start(void)\n{ for (;;) x++; }\n")
    out = tmp_path / "nodebug"
    subprocess.run([gcc, "-O2", "-nostdlib", "-static", "-o", str(out), str(src)], check=True)
    index = DwarfIndex(out)
    assert not index.available
    with pytest.raises(EntrycheckError, match="no DWARF"):
        index.inlined_in({"_start": 0})
    assert index._reader is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EntrycheckError, match="cannot open"):
        _ = DwarfIndex(tmp_path / "absent").available


# -- malformed DWARF (issue 13): one line, never a traceback ------------------------------

def _patched(tmp_path: Path, section: str, patch, source: Path = VMLINUX) -> Path:
    """A copy of the sample whose `section` bytes went through patch(bytearray)."""
    image = Image(source)
    sec = image.section(section)
    data = bytearray(source.read_bytes())
    body = bytearray(data[sec.offset : sec.offset + sec.size])
    patch(body)
    data[sec.offset : sec.offset + sec.size] = body
    out = tmp_path / f"vmlinux-{section.strip('.')}"
    out.write_bytes(bytes(data))
    return out


def _zero(body: bytearray) -> None:
    body[:] = bytes(len(body))


def _answer_or_one_line(path: Path, image: Image, every: bool = False) -> dict | str:
    """What the index says about x86_64_start_kernel (or every function), or its one-line
    error."""
    if every:
        asked = {s.name: s.value for s in image.symbols if s.type == "FUNC" and s.value}
    else:
        asked = {"k": image.symbol_address("x86_64_start_kernel")}
    index = DwarfIndex(path)
    try:
        return {"inlined": index.inlined_in(asked), "at": index.locations(asked)}
    except EntrycheckError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 300
        return message


def test_zeroed_aranges_falls_back_to_the_units(sample_image, tmp_path, monkeypatch):
    monkeypatch.setenv("ENTRYCHECK_NO_CACHE", "1")
    copy = _patched(tmp_path, ".debug_aranges", _zero)
    _check_sample(DwarfIndex(copy), sample_image)


def test_zeroed_debug_info_is_one_line(sample_image, tmp_path, monkeypatch):
    monkeypatch.setenv("ENTRYCHECK_NO_CACHE", "1")
    copy = _patched(tmp_path, ".debug_info", _zero)
    message = _answer_or_one_line(copy, sample_image)
    assert isinstance(message, str) and "malformed DWARF" in message


def test_segmented_aranges_fall_back_to_the_units(sample_image, tmp_path, monkeypatch):
    """pyelftools: NotImplementedError: Segmentation... Here: the units' ranges answer."""
    monkeypatch.setenv("ENTRYCHECK_NO_CACHE", "1")

    def segmented(body: bytearray) -> None:
        body[4 + 2 + 4 + 1] = 8  # segment_selector_size of the first set

    _check_sample(DwarfIndex(_patched(tmp_path, ".debug_aranges", segmented)), sample_image)


@pytest.mark.parametrize("section", [".debug_line", ".debug_info", ".debug_abbrev",
                                     ".debug_aranges", ".debug_rnglists", ".debug_str"])
def test_flipped_bytes_answer_or_one_line(sample_image, tmp_path, monkeypatch, section):
    """Every byte of the section's first 96 (the headers) flipped in turn: an answer or
    one EntrycheckError line, nothing else (pyelftools: TypeError on .debug_line)."""
    monkeypatch.setenv("ENTRYCHECK_NO_CACHE", "1")
    size = min(96, sample_image.section(section).size)
    kinds = []
    for at in range(size):
        def flip(body: bytearray, at: int = at) -> None:
            body[at] ^= 0xFF
        answer = _answer_or_one_line(_patched(tmp_path, section, flip), sample_image)
        kinds.append(type(answer))
    assert len(kinds) == size and set(kinds) <= {dict, str}


def test_i386_aranges_of_type_rela(tmp_path, monkeypatch):
    """An i386 .debug_aranges whose sh_type says RELA (pyelftools: ELFError under report):
    the section is passed over and the units' own ranges answer."""
    monkeypatch.setenv("ENTRYCHECK_NO_CACHE", "1")
    source = SAMPLE / "i386" / "vmlinux"
    image = Image(source)
    sec = image.section(".debug_aranges")
    data = bytearray(source.read_bytes())
    shoff = int.from_bytes(data[0x20:0x24], "little")
    shentsize = int.from_bytes(data[0x2E:0x30], "little")
    at = shoff + sec.index * shentsize + 4  # sh_type
    data[at : at + 4] = (4).to_bytes(4, "little")
    copy = tmp_path / "vmlinux32"
    copy.write_bytes(bytes(data))
    assert Image(copy).section(".debug_aranges").type == 4
    addr = image.symbol_address("i386_start_kernel")
    index = DwarfIndex(copy)
    assert index.locations({"i386_start_kernel": addr})["i386_start_kernel"].file.endswith(".c")
    assert index._aranges == ([], []) and index._cu_scan[1]


def _real_kernel() -> dict[str, Path]:
    if os.environ.get("ENTRYCHECK_REAL_KERNEL") != "1" and os.environ.get("CI") != "true":
        pytest.skip("set ENTRYCHECK_REAL_KERNEL=1 to run on Debian's vmlinux")
    spec = importlib.util.spec_from_file_location("fetch_kernel", ROOT / "scripts/fetch_kernel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fetch(REAL_ABI, "dbg")


@pytest.mark.realkernel
def test_real_kernel_x86_64_start_kernel() -> None:
    paths = _real_kernel()
    addr = Image(paths["vmlinux_nodebug"]).symbol_address("x86_64_start_kernel")
    assert addr is not None
    index = DwarfIndex(paths["vmlinux"])
    assert index.available
    assert not DwarfIndex(paths["vmlinux_nodebug"]).available
    inl = index.inlined_in({"x86_64_start_kernel": addr})["x86_64_start_kernel"]
    build = "debian/build/build_amd64_none_cloud-amd64/"
    # As readelf --debug-dump=info --dwarf-start=0xeb1b shows (DWARF 5, gcc 12).
    assert [(i.name, i.call_file, i.call_line) for i in inl] == [
        ("cr4_init_shadow", build + "arch/x86/kernel/head64.c", 489),
        ("__read_cr4", build + "arch/x86/include/asm/tlbflush.h", 166),
        ("native_read_cr4", build + "arch/x86/include/asm/special_insns.h", 136),
        ("clear_page", build + "arch/x86/kernel/head64.c", 500),
        ("__native_tlb_flush_global", build + "arch/x86/kernel/head64.c", 519),
    ]
    assert all(isinstance(i, Inlined) and i.low_pc is not None for i in inl)
    assert inl[0].low_pc == addr + 0x1B
    assert index.locations({"x86_64_start_kernel": addr}) == {
        "x86_64_start_kernel": SourceLocation(build + "arch/x86/kernel/head64.c", 473)
    }


# -- the same classes through the command line -----------------------------------------

def _cli(*argv: str) -> subprocess.CompletedProcess:
    import sys

    env = {**os.environ, "ENTRYCHECK_NO_CACHE": "1"}
    return subprocess.run([sys.executable, "-m", "entrycheck.cli", *argv], capture_output=True,
                          text=True, timeout=120, env=env)


def test_why_on_zeroed_debug_info_is_one_line(tmp_path):
    copy = _patched(tmp_path, ".debug_info", _zero)
    proc = _cli("why", str(copy), "--entry", "xen-pv", "cr4_init_shadow")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("entrycheck: error: ") and "malformed DWARF" in line
    assert len(line) < 300


def test_check_goes_on_without_unusable_dwarf(tmp_path):
    """The effect-level matchers still find the missing CR4 shadow; the report says why
    inlined helpers were not looked at."""
    import json

    copy = _patched(tmp_path, ".debug_info", _zero)
    proc = _cli("check", str(copy), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert any(f["rule"] == "EC001" and f["entry"] == "xen-pv" for f in report["findings"])
    [warning] = report["warnings"]
    assert warning.startswith("DWARF unusable, checked without it: ") and "\n" not in warning
    assert report["inlined_visible"] is False
    text = _cli("check", str(copy))
    assert text.returncode == 1 and "warning: entrycheck: DWARF unusable" in text.stdout


def test_report_on_i386_aranges_of_type_rela(tmp_path):
    """Issue 13's ELFError under `report`: now a report with source lines."""
    import json

    source = SAMPLE / "i386" / "vmlinux"
    image = Image(source)
    data = bytearray(source.read_bytes())
    shoff = int.from_bytes(data[0x20:0x24], "little")
    shentsize = int.from_bytes(data[0x2E:0x30], "little")
    at = shoff + image.section(".debug_aranges").index * shentsize + 4
    data[at : at + 4] = (4).to_bytes(4, "little")
    copy = tmp_path / "vmlinux32"
    copy.write_bytes(bytes(data))
    proc = _cli("report", str(copy), "-o", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr
    page = json.loads((tmp_path / "out" / "report.json").read_text())
    assert page["dwarf_note"] is None
    located = page["functions"]["i386_start_kernel"]
    assert located["file"].endswith(".c") and located["line"] > 0


def test_random_mutations_answer_or_one_line(sample_image, tmp_path, monkeypatch):
    """200 copies with a few random bytes of the debug sections changed anywhere (DIEs,
    abbreviations, range lists, line headers): an answer or one line, every time."""
    import random

    monkeypatch.setenv("ENTRYCHECK_NO_CACHE", "1")
    rng = random.Random(13)
    sections = [".debug_info", ".debug_abbrev", ".debug_rnglists", ".debug_line",
                ".debug_str", ".debug_aranges", ".debug_line_str"]
    kinds = {dict: 0, str: 0}
    for _ in range(200):
        section = rng.choice(sections)

        def mutate(body: bytearray) -> None:
            for _ in range(rng.randint(1, 6)):
                body[rng.randrange(len(body))] = rng.randrange(256)

        copy = _patched(tmp_path, section, mutate)
        kinds[type(_answer_or_one_line(copy, sample_image, every=True))] += 1
    assert kinds[dict] > 20 and kinds[str] > 5


def test_a_cache_entry_with_wrong_contents_is_indexed_again(sample_image, tmp_path):
    """Cached rows of the right shape but nonsense inside (string indexes out of range):
    the unit is indexed again from DWARF and the answers stand."""

    first = DwarfIndex(VMLINUX, cache_dir=tmp_path)
    _check_sample(first, sample_image)
    for entry in (tmp_path / "dwarf").glob("*.json.z"):
        key, data, _ = cache.entry_contents(entry.read_bytes())
        if isinstance(data, dict):
            for row in data["functions"]:
                row[4] = [10**6] * len(row[4])
                row[2] = 10**6 if row[2] is not None else None
            cache.store_entry("dwarf", key, data, {}, tmp_path)
    again = DwarfIndex(VMLINUX, cache_dir=tmp_path)
    _check_sample(again, sample_image)
    assert again.indexed > 0
