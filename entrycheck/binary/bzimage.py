"""The bzImage: its x86 boot setup header, its PE/COFF header and the entries they give.

A bzImage (arch/x86/boot/bzImage, Debian's vmlinuz) is the real-mode setup (boot sector
plus `setup_sects` sectors) followed by the protected-mode code: the compressed stage,
`arch/x86/boot/compressed/vmlinux` loaded at its address 0 (`startup_32`). The setup
header (Documentation/arch/x86/boot.rst) and, with CONFIG_EFI_STUB, the PE/COFF header
give the entry points as offsets into that code; `map_entries` names them with the
compressed vmlinux's symbols.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

from entrycheck.binary.image import Image
from entrycheck.errors import EntrycheckError
from entrycheck.safeio import check_regular, shown

HDRS_OFFSET = 0x202
BOOT_FLAG_OFFSET = 0x1FE
BOOT_FLAG = 0xAA55
HEAD_BYTES = 0x10000  # read of the file's start: setup header, PE header, section table
PE_HEADER_BYTES = 24 + 70  # signature, COFF header, the optional header's fields read
HEADER_END = 0x270  # end of the 2.15 setup header (kernel_info_offset + 4), rounded
STARTUP_64 = 0x200  # ABI: the 64-bit entry is startup_32 + 0x200
HANDOVER_64_DELTA = 0x200  # boot.rst: the 64-bit handover entry is handover_offset + 0x200

XLF_KERNEL_64 = 1 << 0
XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1
XLF_EFI_HANDOVER_32 = 1 << 2
XLF_EFI_HANDOVER_64 = 1 << 3
XLF_EFI_KEXEC = 1 << 4
XLF_5LEVEL = 1 << 5
XLF_5LEVEL_ENABLED = 1 << 6
XLF_NAMES = {XLF_KERNEL_64: "XLF_KERNEL_64",
             XLF_CAN_BE_LOADED_ABOVE_4G: "XLF_CAN_BE_LOADED_ABOVE_4G",
             XLF_EFI_HANDOVER_32: "XLF_EFI_HANDOVER_32",
             XLF_EFI_HANDOVER_64: "XLF_EFI_HANDOVER_64",
             XLF_EFI_KEXEC: "XLF_EFI_KEXEC",
             XLF_5LEVEL: "XLF_5LEVEL",
             XLF_5LEVEL_ENABLED: "XLF_5LEVEL_ENABLED"}

IMAGE_FILE_MACHINE_I386 = 0x14C
IMAGE_FILE_MACHINE_AMD64 = 0x8664

# Setup header fields: name -> (offset, struct format, first boot protocol version).
HEADER_FIELDS: dict[str, tuple[int, str, int]] = {
    "setup_sects": (0x1F1, "B", 0x0000),
    "root_flags": (0x1F2, "H", 0x0000),
    "syssize": (0x1F4, "I", 0x0204),
    "vid_mode": (0x1FA, "H", 0x0000),
    "boot_flag": (0x1FE, "H", 0x0000),
    "version": (0x206, "H", 0x0200),
    "kernel_version": (0x20E, "H", 0x0200),
    "type_of_loader": (0x210, "B", 0x0200),
    "loadflags": (0x211, "B", 0x0200),
    "code32_start": (0x214, "I", 0x0200),
    "initrd_addr_max": (0x22C, "I", 0x0203),
    "kernel_alignment": (0x230, "I", 0x0205),
    "relocatable_kernel": (0x234, "B", 0x0205),
    "min_alignment": (0x235, "B", 0x020A),
    "xloadflags": (0x236, "H", 0x020C),
    "cmdline_size": (0x238, "I", 0x0206),
    "payload_offset": (0x248, "I", 0x0208),
    "payload_length": (0x24C, "I", 0x0208),
    "pref_address": (0x258, "Q", 0x020A),
    "init_size": (0x260, "I", 0x020A),
    "handover_offset": (0x264, "I", 0x020B),
    "kernel_info_offset": (0x268, "I", 0x020F),
}


@dataclass(frozen=True)
class PeSection:
    """One PE/COFF section header."""

    name: str
    virtual_size: int
    virtual_address: int
    raw_size: int
    raw_offset: int  # PointerToRawData
    characteristics: int

    def as_json(self) -> dict:
        return {"name": self.name, "virtual_address": f"{self.virtual_address:#x}",
                "virtual_size": f"{self.virtual_size:#x}", "raw_offset": f"{self.raw_offset:#x}",
                "raw_size": f"{self.raw_size:#x}"}


@dataclass(frozen=True)
class PeHeader:
    """The PE/COFF header of an EFI-stub kernel (the fields entrycheck uses)."""

    offset: int  # e_lfanew
    machine: int
    magic: int  # 0x20b PE32+, 0x10b PE32
    entry_rva: int  # AddressOfEntryPoint
    base_of_code: int
    size_of_image: int
    size_of_headers: int
    subsystem: int
    sections: tuple[PeSection, ...]

    def section(self, name: str) -> PeSection | None:
        return next((s for s in self.sections if s.name == name), None)


@dataclass(frozen=True)
class BzImage:
    """A parsed bzImage. Offsets named `*_offset` are file offsets or header values as
    stored; entry properties are addresses in the compressed vmlinux (startup_32 = 0)."""

    path: Path
    file_size: int
    version: int
    setup_sects: int
    boot_flag: int
    root_flags: int
    vid_mode: int
    syssize: int | None
    kernel_version: str | None
    type_of_loader: int
    loadflags: int
    code32_start: int
    initrd_addr_max: int | None
    kernel_alignment: int | None
    relocatable_kernel: int | None
    min_alignment: int | None
    xloadflags: int
    cmdline_size: int | None
    payload_offset: int | None
    payload_length: int | None
    pref_address: int | None
    init_size: int | None
    handover_offset: int | None
    kernel_info_offset: int | None
    pe: PeHeader | None = None
    compat_entry_rva: int | None = None  # IA32 entry (mixed mode) from `.compat`
    warnings: tuple[str, ...] = field(default=())

    # -- derived -------------------------------------------------------------------

    @property
    def setup_size(self) -> int:
        """Bytes of real-mode setup: boot sector + setup sectors (0 means 4)."""
        return ((self.setup_sects or 4) + 1) * 512

    @property
    def protected_mode_offset(self) -> int:
        """File offset of the protected-mode code: the compressed vmlinux's address 0."""
        return self.setup_size

    @property
    def protected_mode_size(self) -> int:
        """Bytes of protected-mode code in the file (syssize is in 16-byte units)."""
        if self.syssize:
            return self.syssize * 16
        return self.file_size - self.protected_mode_offset

    def xlf(self, flag: int) -> bool:
        return bool(self.xloadflags & flag)

    @property
    def xloadflag_names(self) -> list[str]:
        return [name for bit, name in XLF_NAMES.items() if self.xloadflags & bit]

    def rva_to_address(self, rva: int) -> int:
        """A PE RVA as an address in the compressed vmlinux (the PE `.text` starts at the
        setup size, with startup_32; checked against Debian 6.1 and the sample)."""
        text = self.pe.section(".text") if self.pe else None
        base = text.virtual_address - (text.raw_offset - self.setup_size) if text else \
            self.setup_size
        return rva - base

    @property
    def efi_pe_entry_rva(self) -> int | None:
        return self.pe.entry_rva if self.pe else None

    @property
    def efi_pe_entry(self) -> int | None:
        """efi_pe_entry in the compressed vmlinux: AddressOfEntryPoint - setup size."""
        rva = self.efi_pe_entry_rva
        return None if rva is None else self.rva_to_address(rva)

    @property
    def compat_entry(self) -> int | None:
        """efi32_pe_entry (the `.compat` IA32 entry of mixed mode) in the compressed vmlinux."""
        rva = self.compat_entry_rva
        return None if rva is None else self.rva_to_address(rva)

    @property
    def handover_64(self) -> int | None:
        """efi64_stub_entry: handover_offset + 0x200, when XLF_EFI_HANDOVER_64."""
        if not self.handover_offset or not self.xlf(XLF_EFI_HANDOVER_64):
            return None
        return self.handover_offset + HANDOVER_64_DELTA

    @property
    def handover_32(self) -> int | None:
        """efi32_stub_entry: handover_offset, when XLF_EFI_HANDOVER_32."""
        if not self.handover_offset or not self.xlf(XLF_EFI_HANDOVER_32):
            return None
        return self.handover_offset

    def entry_addresses(self) -> dict[str, tuple[int, int]]:
        """Entries the headers give: name -> (address in the compressed vmlinux, mode)."""
        out = {"decompressor-32": (0, 32)}
        if self.xlf(XLF_KERNEL_64):
            out["decompressor-64"] = (STARTUP_64, 64)
        for name, addr, mode in (("efi-pe", self.efi_pe_entry, 64),
                                 ("efi-pe-32", self.compat_entry, 32),
                                 ("efi-handover-64", self.handover_64, 64),
                                 ("efi-handover-32", self.handover_32, 32)):
            if addr is not None:
                out[name] = (addr, mode)
        return out

    def as_json(self) -> dict:
        """Every header field, then the derived entries (hex strings)."""
        def hexed(v: int | None) -> str | None:
            return None if v is None else f"{v:#x}"

        fields = {name: getattr(self, name) for name in HEADER_FIELDS}
        fields["kernel_version"] = self.kernel_version
        out = {"path": str(self.path), "file_size": self.file_size,
               **{k: hexed(v) if isinstance(v, int) else v for k, v in fields.items()},
               "xloadflag_names": self.xloadflag_names,
               "setup_size": hexed(self.setup_size),
               "protected_mode_offset": hexed(self.protected_mode_offset),
               "efi_pe_entry_rva": hexed(self.efi_pe_entry_rva),
               "compat_entry_rva": hexed(self.compat_entry_rva),
               "entries": {k: {"address": hexed(a), "mode": m}
                           for k, (a, m) in self.entry_addresses().items()}}
        if self.pe:
            out["pe"] = {"offset": hexed(self.pe.offset), "machine": hexed(self.pe.machine),
                         "entry_rva": hexed(self.pe.entry_rva),
                         "base_of_code": hexed(self.pe.base_of_code),
                         "size_of_image": hexed(self.pe.size_of_image),
                         "sections": [s.as_json() for s in self.pe.sections]}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


# -- parsing -------------------------------------------------------------------------


def is_bzimage(path: Path | str) -> bool:
    """Does the regular file carry a setup header (the HdrS magic)? False for ELF files,
    FIFOs, devices and on errors (opened without blocking, nothing is waited for)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.pread(fd, HDRS_OFFSET + 4, 0)
    except OSError:
        return False
    finally:
        os.close(fd)
    return head[HDRS_OFFSET:] == b"HdrS"


def parse(path: Path | str) -> BzImage:
    """Parse a bzImage's setup and PE/COFF headers; EntrycheckError if it is not one."""
    path = Path(path)
    data, size = _read_head(path)
    where = shown(path)
    if data[HDRS_OFFSET : HDRS_OFFSET + 4] != b"HdrS":
        hint = " (an ELF file: give the bzImage, not a vmlinux)" if data[:4] == b"\x7fELF" else ""
        raise EntrycheckError(f"{where} is not a bzImage: no HdrS magic at "
                              f"{HDRS_OFFSET:#x}{hint}")
    (boot_flag,) = struct.unpack_from("<H", data, BOOT_FLAG_OFFSET)
    if boot_flag != BOOT_FLAG:
        raise EntrycheckError(f"{where} is not a bzImage: boot_flag is {boot_flag:#06x}, "
                              f"not 0xaa55")
    (version,) = struct.unpack_from("<H", data, 0x206)
    if version < 0x0200:
        raise EntrycheckError(f"{where}: boot protocol {version:#06x} is too old (no bzImage)")
    values = {name: (struct.unpack_from("<" + fmt, data, off)[0] if version >= since else None)
              for name, (off, fmt, since) in HEADER_FIELDS.items()}
    values["kernel_version"] = _kernel_version(data, values["kernel_version"])
    values["xloadflags"] = values["xloadflags"] or 0
    pe = _parse_pe(path, data)
    bz = BzImage(path=path, file_size=size, pe=pe, **values)
    if size < bz.protected_mode_offset:
        raise EntrycheckError(f"{where}: truncated bzImage: {size:#x} bytes, the protected-mode "
                              f"code starts at {bz.protected_mode_offset:#x}")
    return replace(bz, compat_entry_rva=_compat_entry(path, pe), warnings=tuple(_check(bz)))


def _read_head(path: Path) -> tuple[bytes, int]:
    """The first bytes of a regular file, enough for the setup header and a PE header,
    and the file's size."""
    where = shown(path)
    size = check_regular(path, "a bzImage", "open").st_size
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            data = os.pread(fd, HEAD_BYTES, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        raise EntrycheckError(f"{where}: cannot open: {exc.strerror or exc}") from None
    if len(data) < HDRS_OFFSET + 4:
        raise EntrycheckError(f"{where} is not a bzImage: {len(data)} bytes, too short for a "
                              f"setup header")
    if len(data) < HEADER_END:
        raise EntrycheckError(f"{where}: truncated bzImage: setup header cut at "
                              f"{len(data):#x}")
    return data, size


def _kernel_version(data: bytes, pointer: int | None) -> str | None:
    """The version string the header points at (offset + 0x200), when inside the head."""
    if not pointer:
        return None
    start = pointer + 0x200
    end = data.find(b"\0", start)
    if start >= len(data) or end < 0:
        return None
    return data[start:end].decode("ascii", "replace")


def _parse_pe(path: Path, data: bytes) -> PeHeader | None:
    """The PE/COFF header when the image starts with "MZ" (CONFIG_EFI_STUB), else None."""
    if data[:2] != b"MZ":
        return None
    (pe_off,) = struct.unpack_from("<I", data, 0x3C)
    where = shown(path)
    if pe_off + PE_HEADER_BYTES > len(data) or data[pe_off : pe_off + 4] != b"PE\0\0":
        raise EntrycheckError(f"{where}: malformed PE/COFF header: no PE signature and "
                              f"optional header at e_lfanew {pe_off:#x} (the first "
                              f"{len(data):#x} bytes)")
    machine, nsections = struct.unpack_from("<HH", data, pe_off + 4)
    (opt_size,) = struct.unpack_from("<H", data, pe_off + 20)
    opt = pe_off + 24
    magic, entry, base_of_code = struct.unpack_from("<H14xII", data, opt)
    size_of_image, size_of_headers = struct.unpack_from("<II", data, opt + 56)
    (subsystem,) = struct.unpack_from("<H", data, opt + 68)
    table = opt + opt_size
    if table + 40 * nsections > len(data):
        raise EntrycheckError(f"{where}: malformed PE/COFF header: section table past "
                              f"{len(data):#x}")
    sections = []
    for i in range(nsections):
        raw = struct.unpack_from("<8sIIII12xI", data, table + 40 * i)
        name = raw[0].rstrip(b"\0").decode("ascii", "replace")
        sections.append(PeSection(name, raw[1], raw[2], raw[3], raw[4], raw[5]))
    return PeHeader(pe_off, machine, magic, entry, base_of_code, size_of_image,
                    size_of_headers, subsystem, tuple(sections))


def _compat_entry(path: Path, pe: PeHeader | None) -> int | None:
    """The IA32 entry RVA from `.compat` entries {u8 type=1, u8 size, u16 machine, u32 rva}."""
    sec = pe.section(".compat") if pe else None
    if sec is None:
        return None
    with path.open("rb") as f:
        f.seek(sec.raw_offset)
        blob = f.read(min(sec.raw_size, 0x1000))
    pos = 0
    while pos + 8 <= len(blob) and blob[pos] == 1:
        _, size, machine, rva = struct.unpack_from("<BBHI", blob, pos)
        if machine == IMAGE_FILE_MACHINE_I386:
            return rva
        pos += max(size, 8)
    return None


def _check(bz: BzImage) -> list[str]:
    """Consistency warnings: code past the end of the file, a PE `.text` elsewhere."""
    out = []
    if bz.syssize and bz.protected_mode_offset + bz.protected_mode_size > bz.file_size:
        out.append(f"syssize says {bz.protected_mode_size:#x} bytes of code, the file has "
                   f"{bz.file_size - bz.protected_mode_offset:#x}")
    text = bz.pe.section(".text") if bz.pe else None
    if text and text.raw_offset != bz.setup_size:
        out.append(f"PE .text starts at file offset {text.raw_offset:#x}, not at the setup "
                   f"size {bz.setup_size:#x}")
    if bz.payload_offset is not None and bz.payload_length and bz.syssize and \
            bz.payload_offset + bz.payload_length > bz.protected_mode_size:
        out.append("payload_offset + payload_length runs past the protected-mode code")
    return out


# -- the compressed vmlinux ------------------------------------------------------------

EXPECTED_SYMBOLS = {"decompressor-32": "startup_32", "decompressor-64": "startup_64",
                    "efi-pe": "efi_pe_entry", "efi-pe-32": "efi32_pe_entry",
                    "efi-handover-64": "efi64_stub_entry",
                    "efi-handover-32": "efi32_stub_entry"}


def map_entries(bz: BzImage, compressed: Image) -> dict[str, tuple[int, str | None]]:
    """The header's entries as (address, symbol there or None) in a compressed vmlinux."""
    base = compressed.symbol_address("startup_32") or 0
    return {name: (base + addr, symbol_at(compressed, base + addr, EXPECTED_SYMBOLS.get(name)))
            for name, (addr, _) in bz.entry_addresses().items()}


def symbol_at(image: Image, addr: int, prefer: str | None = None) -> str | None:
    """A code or label symbol at `addr`: `prefer` if it is there, else a FUNC, else a global."""
    names = {s.name: s for s in image.symbols
             if s.value == addr and s.section and s.type in ("FUNC", "NOTYPE")}
    if prefer in names:
        return prefer
    if not names:
        return None
    return min(names.values(), key=lambda s: (s.type != "FUNC", s.bind == "LOCAL",
                                              s.name.startswith("_"), s.name)).name


def same_build(bz: BzImage, compressed: Image, size: int = 256) -> bool:
    """True if the bzImage's protected-mode code starts with the compressed vmlinux's bytes."""
    base = compressed.symbol_address("startup_32") or 0
    want = compressed.read(base, size)
    return want is not None and read_code(bz, 0, size) == bytes(want)


def read_code(bz: BzImage, addr: int, size: int) -> bytes:
    """Bytes of the protected-mode code at a compressed-vmlinux address."""
    with bz.path.open("rb") as f:
        f.seek(bz.protected_mode_offset + addr)
        return f.read(size)


def decode_at(bz: BzImage, addr: int, mode: int, count: int = 6) -> list[tuple[int, str]]:
    """The first `count` instructions at an entry, decoded with capstone in `mode` bits."""
    import capstone  # for this dump only

    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if mode == 64 else
                     capstone.CS_MODE_32)
    out = []
    for insn_addr, _, mnem, ops in cs.disasm_lite(read_code(bz, addr, 16 * count), addr):
        out.append((insn_addr, f"{mnem} {ops}".strip()))
        if len(out) == count:
            break
    return out
