#!/usr/bin/env python3
"""Checks expected.json against the built vmlinux using nm/readelf/objdump (binutils only)."""
import json, re, struct, subprocess, sys, os

HERE = os.path.dirname(os.path.abspath(__file__))
ELF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "vmlinux")
EXP = json.load(open(os.path.join(HERE, "expected.json")))
KMAP = 0xffffffff80000000
fails = []

def run(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True).stdout

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)

# Symbols: name -> (value, size, type, bind)
syms = {}
for line in run("readelf", "-sW", ELF).splitlines():
    f = line.split()
    if len(f) == 8 and f[0].endswith(":") and f[0] != "Num:":
        syms[f[7]] = (int(f[1], 16), int(f[2]), f[3], f[4])

# Direct edges as written in the sources: (from, kind, to).
EDGES = [
    ("startup_64", "call", "startup_64_setup_env"), ("startup_64", "call", "__startup_64"),
    ("startup_64", "jmp", "common_startup_64"),
    ("secondary_startup_64", "call", "verify_cpu"),
    ("secondary_startup_64", "fallthrough", "common_startup_64"),
    ("common_startup_64", "slot+lretq", "x86_64_start_kernel"),
    ("x86_64_start_kernel", "call", "clear_bss"), ("x86_64_start_kernel", "call", "kasan_early_init"),
    ("idt_setup_early_handler", "installs (IDT)", "early_idt_handler_array"),
    ("x86_64_start_kernel", "call", "idt_setup_early_handler"), ("x86_64_start_kernel", "call", "copy_bootdata"),
    ("x86_64_start_kernel", "call", "load_ucode_bsp"), ("x86_64_start_kernel", "call", "x86_64_start_reservations"),
    ("x86_64_start_reservations", "call", "start_kernel"),
    ("start_kernel", "call", "setup_arch"), ("start_kernel", "call", "run_init_process"),
    ("start_kernel", "call", "rest_init"), ("rest_init", "call", "native_irq_disable"),
    ("setup_arch", "pv_ops.cpu.write_cr4", "native_write_cr4"),
    ("setup_arch", "pv_ops.cpu.write_cr4 (xen-pv only)", "xen_write_cr4"),
    ("startup_xen", "jmp", "xen_start_kernel"),
    ("xen_start_kernel", "call", "xen_setup_features"), ("xen_start_kernel", "call", "clear_bss"),
    ("xen_start_kernel", "call", "idt_setup_early_handler"),
    ("xen_start_kernel", "call", "x86_64_start_reservations"),
    ("pvh_start_xen", "movabs+call *%rax", "xen_prepare_pvh"),
    ("pvh_start_xen", "mov $_pa+jmp *%rax", "startup_64"),
    ("xen_prepare_pvh", "call", "pvh_init_start_info"),
]

# 1. Entries.
for name, e in EXP["entries"].items():
    s = syms.get(e["symbol"])
    check(s is not None and s[0] == int(e["address"], 16), f"entry {name}: {e['symbol']} at {e['address']}")
check(syms["startup_64"][2:] == ("NOTYPE", "GLOBAL") and syms["startup_64"][1] > 0, "startup_64 is GLOBAL NOTYPE with a size")
check(syms["pvh_start_xen"][2:] == ("NOTYPE", "LOCAL") and syms["pvh_start_xen"][1] > 0, "pvh_start_xen is LOCAL NOTYPE with a size")
check(syms["common_startup_64"][1:] == (0, "NOTYPE", "GLOBAL"), "common_startup_64 is a GLOBAL size-0 inner label")

# 2. Xen notes, parsed from the raw .notes section.
data = open(ELF, "rb").read()
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
strtab = secs[shstrndx]
secname = lambda s: data[strtab[4] + s[0]:].split(b"\0", 1)[0].decode()
notes = next(s for s in secs if secname(s) == ".notes")
buf, off, xen = data[notes[4]:notes[4] + notes[5]], 0, {}
while off < len(buf):
    namesz, descsz, ntype = struct.unpack_from("<III", buf, off)
    off += 12
    nm_ = buf[off:off + namesz]; off += (namesz + 3) & ~3
    desc = buf[off:off + descsz]; off += (descsz + 3) & ~3
    if nm_ == b"Xen\0":
        xen[ntype] = desc
check(xen.get(6) == b"linux\0", "XEN_ELFNOTE_GUEST_OS = 'linux'")
check(len(xen.get(1, b"")) == 8 and struct.unpack("<Q", xen[1])[0] == int(EXP["xen_notes"]["entry"], 16), "XEN_ELFNOTE_ENTRY = " + EXP["xen_notes"]["entry"])
check(len(xen.get(18, b"")) == 4 and struct.unpack("<I", xen[18])[0] == int(EXP["xen_notes"]["phys32_entry"], 16), "XEN_ELFNOTE_PHYS32_ENTRY = " + EXP["xen_notes"]["phys32_entry"])
check(int(EXP["xen_notes"]["phys32_entry"], 16) == syms["pvh_start_xen"][0] - KMAP, "PHYS32_ENTRY is pvh_start_xen - __START_KERNEL_map")

# 3. Relocations kept by --emit-relocs.
rel, cur = [], None
for line in run("readelf", "-rW", ELF).splitlines():
    m = re.match(r"Relocation section '(\S+)'", line)
    if m:
        cur = m.group(1); continue
    f = line.split()
    if len(f) >= 5 and re.fullmatch(r"[0-9a-f]{16}", f[0]):
        rel.append((cur, int(f[0], 16), f[2], f[4]))
check((".rela.data", syms["initial_code"][0], "R_X86_64_64", "x86_64_start_kernel") in rel, "initial_code: R_X86_64_64 -> x86_64_start_kernel")
pv = syms["pv_ops"][0]
slots = {r[1] - pv: r[3] for r in rel if r[0] == ".rela.data" and pv <= r[1] < pv + 24}
check(slots == {0: "native_write_cr4", 8: "native_read_cr0", 16: "native_load_idt"}, f"pv_ops initialiser {slots}")
check(sorted(slots.values()) == EXP["ops_table"]["native_targets"], "ops_table.native_targets")
xs, xl = syms["xen_start_kernel"][0], syms["xen_start_kernel"][1]
stores = sorted(r[3] for r in rel if r[0] == ".rela.init.text" and xs <= r[1] < xs + xl and r[3].startswith("xen_") and r[2] == "R_X86_64_32S")
check(stores == EXP["ops_table"]["xen_pv_stores"], f"xen_start_kernel stores {stores} into pv_ops")

# 4. Disassembly: edges, indirect calls, pvh physical addresses.
def dis(name, m32=False, skip=0):
    v, sz = syms[name][:2]
    a = ["objdump", "-d", "--no-show-raw-insn", f"--start-address={v + skip:#x}", f"--stop-address={v + sz:#x}", ELF]
    if m32:
        a[1:1] = ["-m", "i386"]
    return [l for l in run(*a).splitlines() if re.match(r"\s*ffffffff[0-9a-f]+:\t", l)]

for src, kind, dst in EDGES:
    if kind in ("call", "jmp"):
        text = "\n".join(dis(src))
        check(re.search(rf"\b{kind}\s+[0-9a-f]+ <{re.escape(dst)}>", text) is not None, f"{src} --{kind}--> {dst}")
lines = dis("secondary_startup_64")
check(not re.search(r"\b(jmp|ret|lret)", lines[0]), "secondary_startup_64 falls through into common_startup_64")
check(any("lret" in l for l in dis("secondary_startup_64")), "common_startup_64 ends in lretq")
pvh32 = "\n".join(dis("pvh_start_xen", m32=True))
m = re.search(r"ljmp\s+\$0x10,\$(0x[0-9a-f]+)", pvh32)
tgt = int(m.group(1), 16) + KMAP if m else 0
check(syms["pvh_start_xen"][0] < tgt < syms["pvh_start_xen"][0] + syms["pvh_start_xen"][1], "pvh ljmp $0x10 targets a PHYSICAL address inside pvh_start_xen")
pvh64 = "\n".join(dis("pvh_start_xen", skip=tgt - syms["pvh_start_xen"][0]))
check(f"movabs ${syms['xen_prepare_pvh'][0]:#x},%rax" in pvh64, "pvh: movabs $xen_prepare_pvh,%rax (virtual)")
check(f"mov    ${syms['startup_64'][0] - KMAP:#x},%rax" in pvh64 and "jmp    *%rax" in pvh64, "pvh: mov $_pa(startup_64),%rax; jmp *%rax")
check("call   *0x" in "\n".join(dis("setup_arch")), "setup_arch: call *pv_ops(%rip)")
funcs = [n for n, s in syms.items() if s[2] in ("FUNC", "NOTYPE") and s[1] > 0 and n != "pvh_start_xen"]
ind = {}
for n in funcs:
    for l in dis(n):
        if re.search(r"\b(call|jmp)\s+\*", l):
            ind[n] = ind.get(n, 0) + 1
check(ind == {"setup_arch": 1, "run_init_process": 1}, f"indirect calls/jumps outside pvh_start_xen: {ind}")

# 5. Reach over the edge table (pv_ops targets per entry as in README).
def reach(entry, xen_pv):
    seen, todo = set(), [entry]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for s, k, d in EDGES:
            # pv_ops slots: xen-pv's own store replaces the static initializer (strong update)
            if s == n and ("pv_ops" not in k or ("xen-pv only" in k) == xen_pv):
                todo.append(d)
    # secondary_startup_64/verify_cpu are only entered through the inner label on these paths
    return sorted(seen)
for e, sym in (("native", "startup_64"), ("xen-pv", "startup_xen"), ("pvh", "pvh_start_xen")):
    got = reach(sym, e == "xen-pv")
    check(got == EXP["reach"][e], f"reach[{e}] ({len(got)} functions)")

# 6. DWARF: cr4_init_shadow inlined into x86_64_start_kernel.
info = run("readelf", "--debug-dump=info", ELF)
m = re.search(r"<1><([0-9a-f]+)>: Abbrev Number: \d+ \(DW_TAG_subprogram\)\n\s+<[0-9a-f]+>\s+DW_AT_name\s+: \(indirect string, offset: 0x[0-9a-f]+\): cr4_init_shadow", info)
check(m is not None and f"DW_AT_abstract_origin: <0x{m.group(1)}>" in info and "DW_TAG_inlined_subroutine" in info, "DW_TAG_inlined_subroutine of cr4_init_shadow")
check(not re.search(r"call\s+\S+ <cr4_init_shadow>", "\n".join(dis("x86_64_start_kernel"))) and "cr4_init_shadow" not in syms, "no cr4_init_shadow symbol or call edge")

print("FAILED: %d" % len(fails) if fails else "all checks passed")
sys.exit(1 if fails else 0)
