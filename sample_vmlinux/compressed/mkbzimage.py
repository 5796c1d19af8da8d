"""Wrap a compressed-stage ELF (linked at 0) into a bzImage-shaped file: the layout of Linux
6.1.192's arch/x86/boot/header.S + tools/build.c, with a stand-in for the real-mode setup.

    python3 mkbzimage.py vmlinux bzImage

File layout (salign 0x1000, as header.S): [0, 0x1000) boot sector, PE/COFF header at 0x40,
setup header at 0x1f1, a 16-bit stub at 0x26c; [0x1000, 0x2000) `.setup` (the kernel
version string); [0x2000, 0x3000) `.compat` (the IA32 entry of mixed mode); from 0x3000
(the setup size, setup_sects = 23) the protected-mode code: the ELF's bytes from address 0
to _edata, whose last 4 bytes are build.c's CRC-32. Stdlib only.
"""

from __future__ import annotations

import binascii
import struct
import sys
from pathlib import Path

SALIGN = 0x1000
FALIGN = 0x200
SETUP_SIZE = 3 * SALIGN  # headers page + .setup + .compat
COMPAT_START = 2 * SALIGN
KERNEL_VERSION = b"6.1.0-entrycheck-sample (model of arch/x86/boot/compressed)\0"
XLOADFLAGS = 0x1F  # KERNEL_64 | ABOVE_4G | EFI_HANDOVER_32 | EFI_HANDOVER_64 | EFI_KEXEC
NEEDED = ("startup_32", "efi_pe_entry", "efi32_pe_entry", "efi32_stub_entry",
          "efi64_stub_entry", "kernel_info", "input_data", "input_data_end", "input_len",
          "output_len", "_data", "_edata", "_end")


def read_elf(path: Path) -> tuple[bytes, dict[str, int]]:
    """(file bytes, symbol name -> value) of a 64-bit little-endian ELF."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit(f"mkbzimage: {path}: not a 64-bit ELF")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    symbols: dict[str, int] = {}
    for _, stype, _, _, off, size, link, _, _, _ in sections:
        if stype != 2:  # SHT_SYMTAB
            continue
        stroff = sections[link][4]
        for pos in range(off, off + size, 24):
            name_off, _, _, shndx, value, _ = struct.unpack_from("<IBBHQQ", data, pos)
            if name_off and shndx:
                end = data.index(b"\0", stroff + name_off)
                symbols.setdefault(data[stroff + name_off : end].decode(), value)
    return data, symbols


def loaded_bytes(data: bytes, end: int) -> bytearray:
    """The image from address 0 to `end`, from the PT_LOAD segments (objcopy -O binary)."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = bytearray(end)
    for i in range(phnum):
        ptype, _, off, vaddr, _, filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if ptype == 1 and vaddr < end:
            n = min(filesz, end - vaddr)
            out[vaddr : vaddr + n] = data[off : off + n]
    return out


def setup_header(buf: bytearray, sym: dict[str, int], code_size: int) -> None:
    """The boot sector's setup header (boot.rst), protocol 2.15."""
    handover = sym["efi64_stub_entry"] - 0x200
    if handover != sym["efi32_stub_entry"]:
        sys.exit("mkbzimage: efi64_stub_entry must be efi32_stub_entry + 0x200")
    output_len, = struct.unpack_from("<I", buf, SETUP_SIZE + sym["output_len"])
    init_size = sym["_end"] + (output_len + 0xFFF & ~0xFFF)
    fields = [
        (0x1F1, "B", SETUP_SIZE // 512 - 1),   # setup_sects
        (0x1F2, "H", 1),                        # root_flags
        (0x1F4, "I", code_size // 16),          # syssize
        (0x1FA, "H", 0xFFFF),                   # vid_mode
        (0x1FE, "H", 0xAA55),                   # boot_flag
        (0x200, "H", 0x6AEB),                   # jmp start_of_setup (0x26c)
        (0x202, "4s", b"HdrS"),
        (0x206, "H", 0x020F),                   # version
        (0x20C, "H", 0x1000),                   # start_sys_seg
        (0x20E, "H", SALIGN - 0x200),           # kernel_version (string at .setup)
        (0x211, "B", 0x01),                     # loadflags: LOADED_HIGH
        (0x212, "H", 0x8000),                   # setup_move_size
        (0x214, "I", 0x100000),                 # code32_start
        (0x224, "H", SETUP_SIZE - 0x200),       # heap_end_ptr
        (0x22C, "I", 0x7FFFFFFF),               # initrd_addr_max
        (0x230, "I", 0x200000),                 # kernel_alignment
        (0x234, "B", 1),                        # relocatable_kernel
        (0x235, "B", 0x15),                     # min_alignment (2 MiB)
        (0x236, "H", XLOADFLAGS),
        (0x238, "I", 0x7FF),                    # cmdline_size
        (0x248, "I", sym["input_data"]),        # payload_offset
        (0x24C, "I", sym["input_data_end"] - sym["input_data"]),  # payload_length
        (0x258, "Q", 0x1000000),                # pref_address
        (0x260, "I", init_size),
        (0x264, "I", handover),                 # handover_offset
        (0x268, "I", sym["kernel_info"]),       # kernel_info_offset
        (0x26C, "4s", bytes.fromhex("faf4ebfd")),  # start_of_setup: cli; 1: hlt; jmp 1b
    ]
    for off, fmt, value in fields:
        struct.pack_into("<" + fmt, buf, off, value)


def pe_header(buf: bytearray, sym: dict[str, int]) -> None:
    """"MZ" + the PE/COFF header at 0x40: PE32+, four sections, as header.S builds it."""
    buf[0:2] = b"MZ"
    struct.pack_into("<I", buf, 0x3C, 0x40)
    sections = [
        (b".setup", COMPAT_START - SALIGN, SALIGN, COMPAT_START - SALIGN, SALIGN, 0x42000040),
        (b".compat", SALIGN, COMPAT_START, SALIGN, COMPAT_START, 0x42000040),
        (b".text", sym["_data"], SETUP_SIZE, sym["_data"], SETUP_SIZE, 0x60000020),
        (b".data", sym["_end"] - sym["_data"], SETUP_SIZE + sym["_data"],
         sym["_edata"] - sym["_data"], SETUP_SIZE + sym["_data"], 0xC0000040),
    ]
    opt = struct.pack("<HBBIIIII", 0x20B, 0x02, 0x14, sym["_data"], sym["_end"] - sym["_data"],
                      0, SETUP_SIZE + sym["efi_pe_entry"], SETUP_SIZE)
    opt += struct.pack("<QIIHHHHHHIIIIHHQQQQII", 0, SALIGN, FALIGN, 0, 0, 1, 0, 0, 0, 0,
                       SETUP_SIZE + sym["_end"], SALIGN, 0, 10, 0, 0, 0, 0, 0, 0, 6)
    opt += bytes(6 * 8)  # data directories: none
    coff = struct.pack("<4sHHIIIHH", b"PE\0\0", 0x8664, len(sections), 0, 0, 1, len(opt),
                       0x020E)
    table = b"".join(struct.pack("<8sIIII12xI", *s) for s in sections)
    head = coff + opt + table
    buf[0x40 : 0x40 + len(head)] = head
    if 0x40 + len(head) > 0x1F1:
        sys.exit("mkbzimage: PE header runs into the setup header")


def build(elf: Path, out: Path) -> bytes:
    """Write the bzImage; return its bytes."""
    data, sym = read_elf(elf)
    missing = [n for n in NEEDED if n not in sym]
    if missing:
        sys.exit(f"mkbzimage: {elf}: missing symbols {', '.join(missing)}")
    if sym["startup_32"] != 0:
        sys.exit(f"mkbzimage: {elf}: startup_32 is not at 0")
    code = loaded_bytes(data, sym["_edata"])
    buf = bytearray(SETUP_SIZE) + code
    buf[SALIGN : SALIGN + len(KERNEL_VERSION)] = KERNEL_VERSION
    struct.pack_into("<BBHIB", buf, COMPAT_START, 1, 8, 0x14C,
                     SETUP_SIZE + sym["efi32_pe_entry"], 0)
    setup_header(buf, sym, len(code))
    pe_header(buf, sym)
    crc = binascii.crc32(bytes(buf[:-4])) ^ 0xFFFFFFFF  # build.c: no final inversion
    struct.pack_into("<I", buf, len(buf) - 4, crc)
    out.write_bytes(bytes(buf))
    return bytes(buf)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.splitlines()[3].strip(), file=sys.stderr)
        return 2
    image = build(Path(argv[1]), Path(argv[2]))
    print(f"mkbzimage: {argv[2]}: {len(image)} bytes, setup {SETUP_SIZE:#x}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
