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
    ("setup_arch", "pv_ops.cpu.write_cr4 (replaced on xen-pv)", "native_write_cr4"),
    ("setup_arch", "pv_ops.cpu.write_cr4 (xen-pv only)", "xen_write_cr4"),
    ("startup_xen", "jmp", "xen_start_kernel"),
    ("xen_start_kernel", "call", "xen_setup_features"), ("xen_start_kernel", "call", "clear_bss"),
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
    ("xen_start_kernel", "call", "__static_call_update"), ("xen_start_kernel", "call", "panic"),
    ("xen_start_kernel", "call", "__SCT__early_hook"),
    ("__SCT__early_hook", "static_call_update (xen-pv only)", "xen_early_hook"),
    ("setup_arch", "call", "register_console"), ("setup_arch", "call", "init_hypervisor_platform"),
    ("setup_arch", "registration: register_console(&early_con)", "early_con_write"),
    ("setup_arch", "data object: hypervisors[] > sample_hypervisor", "detect_sample_hypervisor"),
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


# 4. Disassembly: edges, indirect calls, pvh physical addresses.
def dis(name, m32=False, skip=0):
    v, sz = syms[name][:2]
    a = ["objdump", "-d", "--no-show-raw-insn", f"--start-address={v + skip:#x}", f"--stop-address={v + sz:#x}", ELF]
    if m32:
        a[1:1] = ["-m", "i386"]
    return [l for l in run(*a).splitlines() if re.match(r"\s*ffffffff[0-9a-f]+:\t", l)]

# xen_start_kernel's pv_ops stores: R_X86_64_32S immediates of `movq $imm, pv_ops+off(%rip)`
# (its other xen_* immediate, xen_early_hook in %rdx, is a static_call_update argument).
xs_lines = dis("xen_start_kernel")
xs_addr = [int(l.split(":")[0], 16) for l in xs_lines] + [syms["xen_start_kernel"][0] + syms["xen_start_kernel"][1]]
pv_insns = [(xs_addr[i], xs_addr[i + 1]) for i, l in enumerate(xs_lines) if re.search(r"movq\s+\$0x[0-9a-f]+,.*<pv_ops", l)]
stores = sorted(r[3] for r in rel if r[0] == ".rela.init.text" and r[2] == "R_X86_64_32S" and any(a <= r[1] < b for a, b in pv_insns))
check(stores == EXP["ops_table"]["xen_pv_stores"], f"xen_start_kernel stores {stores} into pv_ops")

for src, kind, dst in EDGES:
    if kind.split()[0] in ("call", "jmp"):
        insn = kind.split()[0]
        text = "\n".join(dis(src))
        check(re.search(rf"\b{insn}\s+[0-9a-f]+ <{re.escape(dst)}>", text) is not None, f"{src} --{insn}--> {dst}")
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
check(ind == {"setup_arch": 1, "run_init_process": 1, "early_cpu_set_mode": 1, "init_hypervisor_platform": 1},
      f"indirect calls/jumps outside pvh_start_xen: {ind}")

# 5. Reach over the edge table (pv_ops targets per entry as in README).
def reach(entry, xen_pv):
    seen, todo = set(), [entry]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for s, k, d in EDGES:
            # pv_ops slots and the static call: xen-pv's own store (update) always runs first,
            # so it replaces the static initializer (the trampoline's default jmp): a strong update
            if s == n and ("xen-pv only" in k and xen_pv or "xen-pv only" not in k and ("replaced on xen-pv" not in k or not xen_pv)):
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

# 7. Indirect-control-flow strategies: the descriptor tables and the code they point at.
def read(addr, n):
    s = next(s for s in secs if s[3] <= addr < s[3] + s[5] and s[1] != 8)  # not NOBITS
    return data[s[4] + addr - s[3]:s[4] + addr - s[3] + n]

def rel32(addr):
    return (addr + struct.unpack("<i", read(addr, 4))[0]) & (1 << 64) - 1

def inside(name, addr):
    return syms[name][0] <= addr < syms[name][0] + syms[name][1]

def text_at(addr, stop):
    out = run("objdump", "-d", "--no-show-raw-insn", f"--start-address={addr:#x}", f"--stop-address={stop:#x}", ELF)
    return [l for l in out.splitlines() if re.match(r"\s*ffffffff[0-9a-f]+:\t", l)]

# .altinstructions (6.1 struct alt_instr, 12 bytes): 5 nops in early_cpu_init, replaced by a call.
alt, alt_end = syms["__alt_instructions"][0], syms["__alt_instructions_end"][0]
check(alt_end - alt == 12, "one 12-byte alt_instr between __alt_instructions and __alt_instructions_end")
site, repl = rel32(alt), rel32(alt + 4)
cpuid, ilen, rlen = struct.unpack("<HBB", read(alt + 8, 4))
check(inside("early_cpu_init", site) and read(site, ilen) == b"\x90" * 5 and (cpuid, rlen) == (26, 5), "alt_instr: 5 nops in early_cpu_init, X86_FEATURE_XMM2")
check(re.search(r"call\s+[0-9a-f]+ <alt_only_helper>", "\n".join(text_at(repl, repl + rlen))) is not None, "alt replacement: call alt_only_helper (in .altinstr_replacement)")
# __jump_table (6.1 struct jump_entry, 16 bytes): a 5-byte nop whose target block calls the helper.
jt = syms["__start___jump_table"][0]
check(syms["__stop___jump_table"][0] - jt == 16, "one 16-byte jump_entry between __start___jump_table and __stop___jump_table")
code, target = rel32(jt), rel32(jt + 4)
key = (jt + 8 + struct.unpack("<q", read(jt + 8, 8))[0]) & (1 << 64) - 1
check(inside("early_cpu_init", code) and read(code, 5) == bytes.fromhex("0f1f440000") and key == syms["early_debug_key"][0], "jump_entry: nopl in early_cpu_init, key early_debug_key")
block = "\n".join(text_at(target, syms["early_cpu_init"][0] + syms["early_cpu_init"][1]))
check(inside("early_cpu_init", target) and "<static_key_only_helper>" in block and not any("static_key_only_helper" in l for l in text_at(syms["early_cpu_init"][0], target)), "jump_entry target: the only call of static_key_only_helper")
# static_call trampoline: jmp default_early_hook; ud1 (the "SCT" signature of 6.1).
sct = dis("__SCT__early_hook")
check(syms["__SCT__early_hook"][2:] == ("FUNC", "GLOBAL") and re.search(r"jmp\s+[0-9a-f]+ <default_early_hook>", sct[0]) is not None and "ud1" in sct[1], "__SCT__early_hook: jmp default_early_hook; ud1")
xs_text = "\n".join(xs_lines)
check(all(f"${syms[s][0]:#x},%{r}" in xs_text for s, r in (("__SCK__early_hook", "rdi"), ("__SCT__early_hook", "rsi"), ("xen_early_hook", "rdx"))), "xen_start_kernel: constant arguments of __static_call_update (key, tramp, func)")
# retpoline thunk call with a constant in %rax.
eci = dis("early_cpu_init")
i = next(i for i, l in enumerate(eci) if "<__x86_indirect_thunk_rax>" in l)
check(f"mov    ${syms['thunk_target_fn'][0]:#x},%rax" in eci[i - 1], "early_cpu_init: mov $thunk_target_fn,%rax; call __x86_indirect_thunk_rax")
# jump table: `jmp *table(,%rdi,8)`, entries into early_cpu_set_mode, one block calls the helper.
m = next(re.search(r"jmp\s+\*(-?0x[0-9a-f]+)\(,%rdi,8\)", l) for l in dis("early_cpu_set_mode") if "jmp    *" in l)
table = int(m.group(1), 16) & (1 << 64) - 1
cases = [struct.unpack("<Q", read(table + 8 * k, 8))[0] for k in range(7)]
check(all(inside("early_cpu_set_mode", c) for c in cases), f"jump table in .rodata: {len(cases)} entries into early_cpu_set_mode")
check(any(re.search(r"call\s+[0-9a-f]+ <jump_table_case_helper>", "\n".join(text_at(c, c + 12)[:3])) for c in cases), "a jump-table case calls jump_table_case_helper (after its frame set-up)")
# noreturn: `call panic` is followed by a call nothing may follow.
j = next(i for i, l in enumerate(eci) if "<panic>" in l)
check("<dead_after_panic>" in eci[j + 1] and all("dead_after_panic" not in r for e in EXP["reach"].values() for r in e), "early_cpu_init: call panic; call dead_after_panic (never reached)")

print("FAILED: %d" % len(fails) if fails else "all checks passed")
sys.exit(1 if fails else 0)
