#!/usr/bin/env python3
"""Independent oracle: check expected.json against the built sample vmlinux.

Uses only binutils (readelf, objdump) and the Python standard library, never entrycheck.
Run as ``python3 verify.py [path/to/vmlinux]`` (default: the vmlinux next to this file);
expected.json is always read from this file's folder. Prints one "ok   <what>" or
"FAIL <what>" line per check, then a summary, and exits 1 if any check failed.
"""

import json
import os
import re
import struct
import subprocess
import sys
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
START_KERNEL_MAP = 0xFFFFFFFF80000000  # __START_KERNEL_map: virtual minus physical address
MASK64 = (1 << 64) - 1
SHT_NOBITS = 8
SHDR = "<IIQQQQIIQQ"  # Elf64_Shdr
INSN_LINE = re.compile(r"\s*ffffffff[0-9a-f]+:\t")  # an instruction line of objdump -d

# Direct edges as written in the sources: (from, kind, to).
EDGES = [
    ("startup_64", "call", "startup_64_setup_env"),
    ("startup_64", "call", "__startup_64"),
    ("startup_64", "jmp", "common_startup_64"),
    ("secondary_startup_64", "call", "verify_cpu"),
    ("secondary_startup_64", "fallthrough", "common_startup_64"),
    ("common_startup_64", "slot+lretq", "x86_64_start_kernel"),
    ("x86_64_start_kernel", "call", "clear_bss"),
    ("x86_64_start_kernel", "call", "kasan_early_init"),
    ("idt_setup_early_handler", "installs (IDT)", "early_idt_handler_array"),
    ("x86_64_start_kernel", "call", "idt_setup_early_handler"),
    ("x86_64_start_kernel", "call", "copy_bootdata"),
    ("x86_64_start_kernel", "call", "load_ucode_bsp"),
    ("x86_64_start_kernel", "call", "x86_64_start_reservations"),
    ("x86_64_start_reservations", "call", "start_kernel"),
    ("start_kernel", "call", "setup_arch"),
    ("start_kernel", "call", "run_init_process"),
    ("start_kernel", "call", "rest_init"),
    ("rest_init", "call", "native_irq_disable"),
    ("setup_arch", "pv_ops.cpu.write_cr4 (replaced on xen-pv)", "native_write_cr4"),
    ("setup_arch", "pv_ops.cpu.write_cr4 (xen-pv only)", "xen_write_cr4"),
    ("startup_xen", "jmp", "xen_start_kernel"),
    ("xen_start_kernel", "call", "xen_setup_features"),
    ("xen_start_kernel", "call", "clear_bss"),
    ("xen_start_kernel", "call", "idt_setup_early_handler"),
    ("xen_start_kernel", "call", "x86_64_start_reservations"),
    ("pvh_start_xen", "movabs+call *%rax", "xen_prepare_pvh"),
    ("pvh_start_xen", "mov $_pa+jmp *%rax", "startup_64"),
    ("xen_prepare_pvh", "call", "pvh_init_start_info"),
    # indirect-control-flow strategies (cpu_common.c, static_call.c, panic.c, retpoline.S)
    ("x86_64_start_kernel", "call", "early_cpu_init"),
    ("early_cpu_init", "alternative (.altinstr_replacement)", "alt_only_helper"),
    ("early_cpu_init", "jump label (__jump_table target)", "static_key_only_helper"),
    ("early_cpu_init", "call", "__SCT__early_hook"),
    ("__SCT__early_hook", "jmp (replaced on xen-pv)", "default_early_hook"),
    ("early_cpu_init", "call", "__x86_indirect_thunk_rax"),
    ("early_cpu_init", "mov $fn,%rax+thunk", "thunk_target_fn"),
    ("early_cpu_init", "call", "early_cpu_set_mode"),
    ("early_cpu_set_mode", "jump table", "jump_table_case_helper"),
    ("early_cpu_init", "call", "panic"),
    ("xen_start_kernel", "call", "__static_call_update"),
    ("xen_start_kernel", "call", "panic"),
    ("xen_start_kernel", "call", "__SCT__early_hook"),
    ("__SCT__early_hook", "static_call_update (xen-pv only)", "xen_early_hook"),
    ("setup_arch", "call", "register_console"),
    ("setup_arch", "call", "init_hypervisor_platform"),
    ("setup_arch", "registration: register_console(&early_con)", "early_con_write"),
    ("setup_arch", "data object: hypervisors[] > sample_hypervisor", "detect_sample_hypervisor"),
]

# Entry name in expected.json -> entry symbol (reach is computed from it).
REACH_ENTRIES = (("native", "startup_64"), ("xen-pv", "startup_xen"), ("pvh", "pvh_start_xen"))

# The only indirect calls/jumps outside pvh_start_xen, per function.
INDIRECT = {"setup_arch": 1, "run_init_process": 1, "early_cpu_set_mode": 1,
            "init_hypervisor_platform": 1}

DWARF_CR4_INIT_SHADOW = (
    r"<1><([0-9a-f]+)>: Abbrev Number: \d+ \(DW_TAG_subprogram\)\n"
    r"\s+<[0-9a-f]+>\s+DW_AT_name\s+: \(indirect string, offset: 0x[0-9a-f]+\): cr4_init_shadow"
)


class Sym(NamedTuple):
    """One readelf -s row."""

    value: int
    size: int
    kind: str
    bind: str


class Section(NamedTuple):
    """One ELF64 section header."""

    name: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


class Reloc(NamedTuple):
    """One readelf -r row: relocation section, offset, type and symbol name."""

    section: str
    offset: int
    type: str
    symbol: str


class Report:
    """Prints one line per check and remembers the failed ones."""

    def __init__(self) -> None:
        self.fails: list[str] = []

    def check(self, cond: bool, what: str) -> None:
        """Print "ok   <what>" or "FAIL <what>"."""
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            self.fails.append(what)


def run(*args: str) -> str:
    """Run a command and return its stdout (raises if it fails)."""
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def read_symbols(path: str) -> dict[str, Sym]:
    """Symbols by name from readelf -sW (a later duplicate name wins)."""
    syms = {}
    for line in run("readelf", "-sW", path).splitlines():
        f = line.split()
        if len(f) == 8 and f[0].endswith(":") and f[0] != "Num:":
            syms[f[7]] = Sym(int(f[1], 16), int(f[2]), f[3], f[4])
    return syms


def read_relocations(path: str) -> list[Reloc]:
    """Relocations kept by --emit-relocs, from readelf -rW."""
    rel, cur = [], None
    for line in run("readelf", "-rW", path).splitlines():
        m = re.match(r"Relocation section '(\S+)'", line)
        if m:
            cur = m.group(1)
            continue
        f = line.split()
        if len(f) >= 5 and re.fullmatch(r"[0-9a-f]{16}", f[0]):
            rel.append(Reloc(cur, int(f[0], 16), f[2], f[4]))
    return rel


class Vmlinux:
    """The ELF under test: raw bytes, section headers, symbols, and objdump helpers."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.syms = read_symbols(path)
        with open(path, "rb") as fh:
            self.data = fh.read()
        (shoff,) = struct.unpack_from("<Q", self.data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", self.data, 0x3A)
        self.secs = [Section._make(struct.unpack_from(SHDR, self.data, shoff + i * shentsize))
                     for i in range(shnum)]
        self.shstrtab = self.secs[shstrndx]

    def section_name(self, sec: Section) -> str:
        """The section's name from the section header string table."""
        return self.data[self.shstrtab.offset + sec.name:].split(b"\0", 1)[0].decode()

    def section(self, name: str) -> Section:
        """The first section with this name."""
        return next(s for s in self.secs if self.section_name(s) == name)

    def read(self, addr: int, n: int) -> bytes:
        """n bytes of file contents at virtual address addr (not from NOBITS sections)."""
        s = next(s for s in self.secs if s.addr <= addr < s.addr + s.size and s.type != SHT_NOBITS)
        start = s.offset + addr - s.addr
        return self.data[start:start + n]

    def rel32(self, addr: int) -> int:
        """The target of the signed 32-bit self-relative offset stored at addr."""
        return (addr + struct.unpack("<i", self.read(addr, 4))[0]) & MASK64

    def end(self, name: str) -> int:
        """The address just past symbol name."""
        return self.syms[name].value + self.syms[name].size

    def inside(self, name: str, addr: int) -> bool:
        """Whether addr lies within symbol name's [value, value + size)."""
        return self.syms[name].value <= addr < self.end(name)

    def text_at(self, start: int, stop: int, m32: bool = False) -> list[str]:
        """objdump -d instruction lines for [start, stop) (i386 decoding if m32)."""
        args = ["objdump", "-d", "--no-show-raw-insn",
                f"--start-address={start:#x}", f"--stop-address={stop:#x}", self.path]
        if m32:
            args[1:1] = ["-m", "i386"]
        return [line for line in run(*args).splitlines() if INSN_LINE.match(line)]

    def dis(self, name: str, m32: bool = False, skip: int = 0) -> list[str]:
        """objdump -d instruction lines of symbol name, starting skip bytes in."""
        return self.text_at(self.syms[name].value + skip, self.end(name), m32)


def check_entries(elf: Vmlinux, exp: dict, report: Report) -> None:
    """Entry symbols at the expected addresses, with the expected type, binding and size."""
    syms = elf.syms
    for name, e in exp["entries"].items():
        s = syms.get(e["symbol"])
        report.check(s is not None and s.value == int(e["address"], 16),
                     f"entry {name}: {e['symbol']} at {e['address']}")
    report.check((syms["startup_64"].kind, syms["startup_64"].bind) == ("NOTYPE", "GLOBAL")
                 and syms["startup_64"].size > 0, "startup_64 is GLOBAL NOTYPE with a size")
    report.check((syms["pvh_start_xen"].kind, syms["pvh_start_xen"].bind) == ("NOTYPE", "LOCAL")
                 and syms["pvh_start_xen"].size > 0, "pvh_start_xen is LOCAL NOTYPE with a size")
    report.check(syms["common_startup_64"][1:] == (0, "NOTYPE", "GLOBAL"),
                 "common_startup_64 is a GLOBAL size-0 inner label")


def xen_notes(elf: Vmlinux) -> dict[int, bytes]:
    """Descriptors of the "Xen" notes in the raw .notes section, by note type."""
    notes = elf.section(".notes")
    buf, off, xen = elf.data[notes.offset:notes.offset + notes.size], 0, {}
    while off < len(buf):
        namesz, descsz, ntype = struct.unpack_from("<III", buf, off)
        off += 12
        name = buf[off:off + namesz]
        off += (namesz + 3) & ~3
        desc = buf[off:off + descsz]
        off += (descsz + 3) & ~3
        if name == b"Xen\0":
            xen[ntype] = desc
    return xen


def check_xen_notes(elf: Vmlinux, exp: dict, report: Report) -> None:
    """XEN_ELFNOTE_GUEST_OS, ENTRY and PHYS32_ENTRY as expected."""
    xen = xen_notes(elf)
    entry, phys32 = exp["xen_notes"]["entry"], exp["xen_notes"]["phys32_entry"]
    report.check(xen.get(6) == b"linux\0", "XEN_ELFNOTE_GUEST_OS = 'linux'")
    report.check(len(xen.get(1, b"")) == 8 and struct.unpack("<Q", xen[1])[0] == int(entry, 16),
                 "XEN_ELFNOTE_ENTRY = " + entry)
    report.check(len(xen.get(18, b"")) == 4 and struct.unpack("<I", xen[18])[0] == int(phys32, 16),
                 "XEN_ELFNOTE_PHYS32_ENTRY = " + phys32)
    report.check(int(phys32, 16) == elf.syms["pvh_start_xen"].value - START_KERNEL_MAP,
                 "PHYS32_ENTRY is pvh_start_xen - __START_KERNEL_map")


def check_relocations(elf: Vmlinux, rel: list[Reloc], exp: dict, report: Report) -> None:
    """initial_code and the static pv_ops initialiser, from .rela.data."""
    initial = Reloc(".rela.data", elf.syms["initial_code"].value, "R_X86_64_64",
                    "x86_64_start_kernel")
    report.check(initial in rel, "initial_code: R_X86_64_64 -> x86_64_start_kernel")
    pv = elf.syms["pv_ops"].value
    slots = {r.offset - pv: r.symbol for r in rel
             if r.section == ".rela.data" and pv <= r.offset < pv + 24}
    report.check(slots == {0: "native_write_cr4", 8: "native_read_cr0", 16: "native_load_idt"},
                 f"pv_ops initialiser {slots}")
    report.check(sorted(slots.values()) == exp["ops_table"]["native_targets"],
                 "ops_table.native_targets")


def check_pv_ops_stores(elf: Vmlinux, rel: list[Reloc], exp: dict, report: Report) -> None:
    """xen_start_kernel's pv_ops stores: R_X86_64_32S immediates of movq $imm, pv_ops+off(%rip).

    (Its other xen_* immediate, xen_early_hook in %rdx, is a static_call_update argument.)
    """
    lines = elf.dis("xen_start_kernel")
    addrs = [int(line.split(":")[0], 16) for line in lines] + [elf.end("xen_start_kernel")]
    pv_insns = [(addrs[i], addrs[i + 1]) for i, line in enumerate(lines)
                if re.search(r"movq\s+\$0x[0-9a-f]+,.*<pv_ops", line)]
    stores = sorted(r.symbol for r in rel
                    if r.section == ".rela.init.text" and r.type == "R_X86_64_32S"
                    and any(a <= r.offset < b for a, b in pv_insns))
    report.check(stores == exp["ops_table"]["xen_pv_stores"],
                 f"xen_start_kernel stores {stores} into pv_ops")


def check_edges(elf: Vmlinux, report: Report) -> None:
    """Every call/jmp edge of EDGES is a direct call/jmp in the disassembly."""
    for src, kind, dst in EDGES:
        insn = kind.split()[0]
        if insn in ("call", "jmp"):
            text = "\n".join(elf.dis(src))
            report.check(re.search(rf"\b{insn}\s+[0-9a-f]+ <{re.escape(dst)}>", text) is not None,
                         f"{src} --{insn}--> {dst}")


def refers(elf: Vmlinux, rel: list[Reloc], holder: str, symbol: str, kind: str) -> bool:
    """Whether a relocation of `kind` inside symbol `holder` names `symbol`."""
    return any(r.symbol == symbol and r.type == kind and elf.inside(holder, r.offset)
               for r in rel if r.section.startswith(".rela."))


def check_data_edges(elf: Vmlinux, rel: list[Reloc], report: Report) -> None:
    """The edges EDGES takes through data, from the relocations: an address put in the IDT,
    a registered struct's member, and an array of structs handed on."""
    report.check(refers(elf, rel, "idt_setup_early_handler", "early_idt_handler_array",
                        "R_X86_64_32S"),
                 "idt_setup_early_handler takes the address of early_idt_handler_array")
    report.check(refers(elf, rel, "setup_arch", "early_con", "R_X86_64_32S")
                 and refers(elf, rel, "early_con", "early_con_write", "R_X86_64_64"),
                 "setup_arch passes &early_con, whose .write is early_con_write")
    report.check(refers(elf, rel, "setup_arch", "hypervisors", "R_X86_64_32S")
                 and refers(elf, rel, "hypervisors", "sample_hypervisor", "R_X86_64_64")
                 and refers(elf, rel, "sample_hypervisor", "detect_sample_hypervisor",
                            "R_X86_64_64"),
                 "setup_arch passes hypervisors[], whose sample_hypervisor.detect is "
                 "detect_sample_hypervisor")


def check_startup_and_pvh(elf: Vmlinux, report: Report) -> None:
    """The inner label, the pvh 32-bit to 64-bit hand-over, and setup_arch's pv_ops call."""
    syms = elf.syms
    lines = elf.dis("secondary_startup_64")
    report.check(not re.search(r"\b(jmp|ret|lret)", lines[0]),
                 "secondary_startup_64 falls through into common_startup_64")
    report.check(any("lret" in line for line in lines), "common_startup_64 ends in lretq")
    pvh32 = "\n".join(elf.dis("pvh_start_xen", m32=True))
    m = re.search(r"ljmp\s+\$0x10,\$(0x[0-9a-f]+)", pvh32)
    tgt = int(m.group(1), 16) + START_KERNEL_MAP if m else 0
    report.check(syms["pvh_start_xen"].value < tgt < elf.end("pvh_start_xen"),
                 "pvh ljmp $0x10 targets a PHYSICAL address inside pvh_start_xen")
    pvh64 = "\n".join(elf.dis("pvh_start_xen", skip=tgt - syms["pvh_start_xen"].value))
    report.check(f"movabs ${syms['xen_prepare_pvh'].value:#x},%rax" in pvh64,
                 "pvh: movabs $xen_prepare_pvh,%rax (virtual)")
    report.check(f"mov    ${syms['startup_64'].value - START_KERNEL_MAP:#x},%rax" in pvh64
                 and "jmp    *%rax" in pvh64, "pvh: mov $_pa(startup_64),%rax; jmp *%rax")
    report.check("call   *0x" in "\n".join(elf.dis("setup_arch")),
                 "setup_arch: call *pv_ops(%rip)")


def check_indirect(elf: Vmlinux, report: Report) -> None:
    """Indirect calls/jumps in sized functions other than pvh_start_xen are exactly INDIRECT."""
    funcs = [n for n, s in elf.syms.items()
             if s.kind in ("FUNC", "NOTYPE") and s.size > 0 and n != "pvh_start_xen"]
    ind: dict[str, int] = {}
    for name in funcs:
        for line in elf.dis(name):
            if re.search(r"\b(call|jmp)\s+\*", line):
                ind[name] = ind.get(name, 0) + 1
    report.check(ind == INDIRECT, f"indirect calls/jumps outside pvh_start_xen: {ind}")


def edge_taken(kind: str, xen_pv: bool) -> bool:
    """Whether an edge of this kind is followed on a xen-pv (or other) boot.

    pv_ops slots and the static call: xen-pv's own store (update) always runs first, so it
    replaces the static initializer (the trampoline's default jmp): a strong update.
    """
    if "xen-pv only" in kind:
        return xen_pv
    return "replaced on xen-pv" not in kind or not xen_pv


def reach(entry: str, xen_pv: bool) -> list[str]:
    """Sorted names reachable from entry over EDGES.

    secondary_startup_64/verify_cpu are only entered through the inner label on these paths.
    """
    seen, todo = set(), [entry]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(d for s, k, d in EDGES if s == n and edge_taken(k, xen_pv))
    return sorted(seen)


def check_reach(exp: dict, report: Report) -> None:
    """Reach over the edge table (pv_ops targets per entry as in README) matches expected."""
    for name, sym in REACH_ENTRIES:
        got = reach(sym, name == "xen-pv")
        report.check(got == exp["reach"][name], f"reach[{name}] ({len(got)} functions)")


def check_dwarf(elf: Vmlinux, report: Report) -> None:
    """cr4_init_shadow is inlined into x86_64_start_kernel: in DWARF only, no symbol, no call."""
    info = run("readelf", "--debug-dump=info", elf.path)
    m = re.search(DWARF_CR4_INIT_SHADOW, info)
    report.check(m is not None and f"DW_AT_abstract_origin: <0x{m.group(1)}>" in info
                 and "DW_TAG_inlined_subroutine" in info,
                 "DW_TAG_inlined_subroutine of cr4_init_shadow")
    calls = "\n".join(elf.dis("x86_64_start_kernel"))
    report.check(not re.search(r"call\s+\S+ <cr4_init_shadow>", calls)
                 and "cr4_init_shadow" not in elf.syms, "no cr4_init_shadow symbol or call edge")


def check_alternatives(elf: Vmlinux, report: Report) -> None:
    """.altinstructions (6.1 struct alt_instr, 12 bytes): 5 nops replaced by a call."""
    alt = elf.syms["__alt_instructions"].value
    report.check(elf.syms["__alt_instructions_end"].value - alt == 12,
                 "one 12-byte alt_instr between __alt_instructions and __alt_instructions_end")
    site, repl = elf.rel32(alt), elf.rel32(alt + 4)
    cpuid, ilen, rlen = struct.unpack("<HBB", elf.read(alt + 8, 4))
    report.check(elf.inside("early_cpu_init", site) and elf.read(site, ilen) == b"\x90" * 5
                 and (cpuid, rlen) == (26, 5),
                 "alt_instr: 5 nops in early_cpu_init, X86_FEATURE_XMM2")
    text = "\n".join(elf.text_at(repl, repl + rlen))
    report.check(re.search(r"call\s+[0-9a-f]+ <alt_only_helper>", text) is not None,
                 "alt replacement: call alt_only_helper (in .altinstr_replacement)")


def check_jump_label(elf: Vmlinux, report: Report) -> None:
    """__jump_table (6.1 struct jump_entry, 16 bytes): a 5-byte nop; its target calls the helper."""
    jt = elf.syms["__start___jump_table"].value
    report.check(elf.syms["__stop___jump_table"].value - jt == 16,
                 "one 16-byte jump_entry between __start___jump_table and __stop___jump_table")
    code, target = elf.rel32(jt), elf.rel32(jt + 4)
    key = (jt + 8 + struct.unpack("<q", elf.read(jt + 8, 8))[0]) & MASK64
    report.check(elf.inside("early_cpu_init", code)
                 and elf.read(code, 5) == bytes.fromhex("0f1f440000")
                 and key == elf.syms["early_debug_key"].value,
                 "jump_entry: nopl in early_cpu_init, key early_debug_key")
    block = "\n".join(elf.text_at(target, elf.end("early_cpu_init")))
    before = elf.text_at(elf.syms["early_cpu_init"].value, target)
    report.check(elf.inside("early_cpu_init", target) and "<static_key_only_helper>" in block
                 and not any("static_key_only_helper" in line for line in before),
                 "jump_entry target: the only call of static_key_only_helper")


def check_static_call(elf: Vmlinux, report: Report) -> None:
    """Trampoline jmp default_early_hook; ud1 (6.1's "SCT" signature) and xen's update call."""
    sct = elf.dis("__SCT__early_hook")
    sym = elf.syms["__SCT__early_hook"]
    report.check((sym.kind, sym.bind) == ("FUNC", "GLOBAL")
                 and re.search(r"jmp\s+[0-9a-f]+ <default_early_hook>", sct[0]) is not None
                 and "ud1" in sct[1], "__SCT__early_hook: jmp default_early_hook; ud1")
    xs_text = "\n".join(elf.dis("xen_start_kernel"))
    args = (("__SCK__early_hook", "rdi"), ("__SCT__early_hook", "rsi"), ("xen_early_hook", "rdx"))
    report.check(all(f"${elf.syms[s].value:#x},%{r}" in xs_text for s, r in args),
                 "xen_start_kernel: constant arguments of __static_call_update (key, tramp, func)")


def check_retpoline(elf: Vmlinux, report: Report) -> None:
    """Retpoline thunk call with a constant in %rax."""
    eci = elf.dis("early_cpu_init")
    i = next(i for i, line in enumerate(eci) if "<__x86_indirect_thunk_rax>" in line)
    report.check(f"mov    ${elf.syms['thunk_target_fn'].value:#x},%rax" in eci[i - 1],
                 "early_cpu_init: mov $thunk_target_fn,%rax; call __x86_indirect_thunk_rax")


def check_jump_table(elf: Vmlinux, report: Report) -> None:
    """jmp *table(,%rdi,8): entries into early_cpu_set_mode, one block calls the helper."""
    m = next(re.search(r"jmp\s+\*(-?0x[0-9a-f]+)\(,%rdi,8\)", line)
             for line in elf.dis("early_cpu_set_mode") if "jmp    *" in line)
    table = int(m.group(1), 16) & MASK64
    cases = [struct.unpack("<Q", elf.read(table + 8 * k, 8))[0] for k in range(7)]
    report.check(all(elf.inside("early_cpu_set_mode", c) for c in cases),
                 f"jump table in .rodata: {len(cases)} entries into early_cpu_set_mode")
    report.check(any(re.search(r"call\s+[0-9a-f]+ <jump_table_case_helper>",
                               "\n".join(elf.text_at(c, c + 12)[:3])) for c in cases),
                 "a jump-table case calls jump_table_case_helper (after its frame set-up)")


def check_noreturn(elf: Vmlinux, exp: dict, report: Report) -> None:
    """call panic is followed by a call that no expected reach list contains."""
    eci = elf.dis("early_cpu_init")
    j = next(i for i, line in enumerate(eci) if "<panic>" in line)
    report.check("<dead_after_panic>" in eci[j + 1]
                 and all("dead_after_panic" not in f for r in exp["reach"].values() for f in r),
                 "early_cpu_init: call panic; call dead_after_panic (never reached)")


def check_special_tables(elf: Vmlinux, exp: dict, report: Report) -> None:
    """Indirect-control-flow strategies: the descriptor tables and the code they point at."""
    check_alternatives(elf, report)
    check_jump_label(elf, report)
    check_static_call(elf, report)
    check_retpoline(elf, report)
    check_jump_table(elf, report)
    check_noreturn(elf, exp, report)


def main() -> int:
    """Run every check group in order; 0 if all passed, else 1."""
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "vmlinux")
    with open(os.path.join(HERE, "expected.json")) as fh:
        exp = json.load(fh)
    report = Report()
    elf = Vmlinux(path)
    check_entries(elf, exp, report)
    check_xen_notes(elf, exp, report)
    rel = read_relocations(path)
    check_relocations(elf, rel, exp, report)
    check_pv_ops_stores(elf, rel, exp, report)
    check_edges(elf, report)
    check_data_edges(elf, rel, report)
    check_startup_and_pvh(elf, report)
    check_indirect(elf, report)
    check_reach(exp, report)
    check_dwarf(elf, report)
    check_special_tables(elf, exp, report)
    print(f"FAILED: {len(report.fails)}" if report.fails else "all checks passed")
    return 1 if report.fails else 0


if __name__ == "__main__":
    sys.exit(main())
