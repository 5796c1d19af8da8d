"""Boot tracing: which vmlinux functions really ran during an early boot under QEMU (TCG).

QEMU's ``-d in_asm`` log lists every translated block, instruction by instruction, the
first time the block is about to run. TCG translates on demand, so the order of first
translations is the order of first execution (a block retranslated later, after a
code patch or a cache flush, only repeats itself). Every instruction address of a block
is mapped, so a block that falls through from one symbol into the next (an inner label
such as ``secondary_startup_64_no_verify``) credits both.

Addresses are virtual once paging is on and physical before (``pvh_start_xen``, the
identity-mapped start of ``startup_64``); physical ones are mapped through the PT_LOAD
headers. With ``nokaslr`` the kernel runs at its link address. Blocks before the
vmlinux entry point (firmware, option ROM, the bzImage's setup code and decompressor)
are counted as unmapped and never credited, even when they land inside the vmlinux's
load range.

Trace files are JSON::

    {"format": "entrycheck-trace/1", "entry": "native", "kernel": "/path/vmlinuz",
     "build_id": "3b43...", "until": "start_kernel",
     "functions": [{"name": "startup_64", "address": "0xffffffff81000000", "order": 0,
                    "first_block": 10811, "physical": true}, ...],
     "blocks": 12345, "unmapped_blocks": 10811, "unnamed_blocks": 0, "reached_until": true,
     "seconds": 1.2, "log_bytes": 1234567, "command": ["qemu-system-x86_64", ...]}

``order`` is the 0-based first-execution rank; ``first_block`` the 0-based index in the
log of the block that first ran the function; ``physical`` says it first ran at its
physical address. ``unmapped_blocks`` counts blocks that credit no function (firmware,
setup code, decompressor, and vmlinux code without symbols); ``unnamed_blocks`` counts
those of them inside the vmlinux's executable sections, such as the ``static_cpu_has``
slow paths of ``.altinstr_aux`` that run until alternatives are applied.

``until`` is a function name (the trace stops at, and includes, its first block) or
``init-end`` (the trace runs until the kernel panics for want of a root file system or
an init, the expected end of a boot with no disk; ``panic=-1`` and ``-no-reboot`` then
make QEMU exit).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from entrycheck.errors import EntrycheckError
from entrycheck.functions import Function, FunctionTable
from entrycheck.image import XEN_ELFNOTE_PHYS32_ENTRY, Image

FORMAT = "entrycheck-trace/1"
QEMU = "qemu-system-x86_64"
INIT_END = "init-end"
ENTRIES = ("native", "pvh")
END_MARKERS = ("No working init found", "Unable to mount root fs")
POLL_SECONDS = 0.05
APPEND = "nokaslr console=ttyS0 panic=-1"

_INSN = re.compile(r"^0x([0-9a-fA-F]+):")


class FunctionLookup(Protocol):
    """What mapping needs from a FunctionTable (tests pass a stub)."""

    def at(self, addr: int) -> Function | None: ...

    def named(self, name: str) -> Function | None: ...


class PhysMap(Protocol):
    """What mapping needs from an Image (tests pass a stub)."""

    def phys_to_virt(self, paddr: int) -> int | None: ...

    def is_code(self, addr: int) -> bool: ...


@dataclass
class TraceResult:
    """Functions of one boot in first-execution order, and how the trace ended."""

    functions: list[str] = field(default_factory=list)
    addresses: dict[str, int] = field(default_factory=dict)
    first_index: dict[str, int] = field(default_factory=dict)
    physical: set[str] = field(default_factory=set)
    blocks: int = 0
    unmapped_blocks: int = 0
    unnamed_blocks: int = 0
    reached_until: bool = False
    until: str | None = None
    entry: str = ""
    kernel: str = ""
    build_id: str | None = None
    seconds: float | None = None
    log_bytes: int | None = None
    command: list[str] = field(default_factory=list)

    @property
    def reached_start_kernel(self) -> bool:
        return "start_kernel" in self.first_index

    def order(self, name: str) -> int | None:
        """First-execution rank of a function, or None when it never ran."""
        try:
            return self.functions.index(name)
        except ValueError:
            return None


# -- parsing ---------------------------------------------------------------------------


class InAsmParser:
    """Incremental parser of a ``-d in_asm`` log: lines in, finished blocks out."""

    def __init__(self) -> None:
        self._block: list[int] | None = None

    def feed(self, lines: Iterable[str]) -> list[list[int]]:
        """Blocks (lists of instruction addresses) completed by these lines."""
        done: list[list[int]] = []
        for line in lines:
            if line.startswith("IN:"):
                self._flush(done)
                self._block = []
            elif self._block is not None:
                m = _INSN.match(line)
                if m:
                    self._block.append(int(m[1], 16))
                elif not line.strip() or line.startswith("---"):
                    self._flush(done)
        return done

    def close(self) -> list[list[int]]:
        done: list[list[int]] = []
        self._flush(done)
        return done

    def _flush(self, done: list[list[int]]) -> None:
        if self._block:
            done.append(self._block)
        self._block = None


def parse_in_asm_blocks(lines: Iterable[str]) -> list[list[int]]:
    """Every translated block of an in_asm log, as its instruction addresses, in log order."""
    parser = InAsmParser()
    return parser.feed(lines) + parser.close()


def parse_in_asm_log(lines: Iterable[str]) -> list[int]:
    """Start addresses of the translated blocks of an in_asm log, in log order."""
    return [block[0] for block in parse_in_asm_blocks(lines)]


# -- mapping ---------------------------------------------------------------------------


class _Mapper:
    """Credits functions block by block; stops at the `until` function."""

    def __init__(self, image: PhysMap, functions: FunctionLookup, entry: int | None,
                 until: str | None):  # fmt: skip
        self.image, self.functions, self.entry = image, functions, entry
        self.until_start: int | None = None
        if until and until != INIT_END:
            func = functions.named(until)
            if func is None:
                raise EntrycheckError(f"trace: no function named {until!r} to stop at")
            self.until_start = func.start
        self.entered = entry is None
        self.mapped_blocks = 0
        self.result = TraceResult(until=until)

    def resolve(self, addr: int) -> tuple[Function | None, int, bool]:
        """(function, virtual address, was physical) of a logged address."""
        func = self.functions.at(addr)
        if func is not None:
            return func, addr, False
        virt = self.image.phys_to_virt(addr)
        if virt is None:
            return None, addr, False
        return self.functions.at(virt), virt, True

    def add(self, block: int | Sequence[int]) -> bool:
        """Take one block; True once the `until` function has run (later blocks are ignored)."""
        res = self.result
        if res.reached_until and self.until_start is not None:
            return True
        addrs = [block] if isinstance(block, int) else block
        index, mapped, unnamed = res.blocks, False, False
        res.blocks += 1
        for addr in addrs:
            func, virt, phys = self.resolve(addr)
            if not self.entered:
                if virt != self.entry:
                    continue
                self.entered = True
            if func is None:
                unnamed = unnamed or self.image.is_code(virt)
                continue
            mapped = True
            if func.name not in res.first_index:
                res.functions.append(func.name)
                res.first_index[func.name] = index
                res.addresses[func.name] = func.start
                if phys:
                    res.physical.add(func.name)
            if func.start == self.until_start:
                res.reached_until = True
                break
        self.mapped_blocks += mapped
        res.unnamed_blocks += unnamed and not mapped
        res.unmapped_blocks = res.blocks - self.mapped_blocks
        return res.reached_until and self.until_start is not None


def map_to_functions(addresses: Iterable[int | Sequence[int]], image: PhysMap,
                     functions: FunctionLookup, *, entry: int | None = None,
                     until: str | None = None) -> TraceResult:  # fmt: skip
    """Map logged blocks (start addresses, or each block's instruction addresses) to functions.

    `entry`: virtual address of the kernel entry point; blocks before the first one that
    runs it are not credited. `until`: a function name; mapping stops after its first block.
    """
    mapper = _Mapper(image, functions, entry, until)
    for block in addresses:
        if mapper.add(block):
            break
    return mapper.result


# -- running QEMU ----------------------------------------------------------------------


def qemu_command(entry: str, kernel: Path, log: Path, serial: Path, append: str = "") -> list[str]:
    """The QEMU command line of a traced boot (TCG, no network, no display, no reboot)."""
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise EntrycheckError(f"trace: {QEMU} not found: install Debian's qemu-system-x86")
    return [
        qemu, "-machine", "q35", "-accel", "tcg", "-m", "1G", "-smp", "1",
        "-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
        "-serial", f"file:{serial}", "-d", "in_asm", "-D", str(log),
        "-kernel", str(kernel), "-append", f"{APPEND} {append}".strip(),
    ]  # fmt: skip


def check_request(entry: str, kernel: Path) -> None:
    """EntrycheckError unless `entry` can be traced and QEMU and the kernel file exist."""
    if entry == "xen-pv":
        raise EntrycheckError("trace: Xen PV needs a Xen hypervisor: out of scope for trace")
    if entry not in ENTRIES:
        raise EntrycheckError(f"trace: entry {entry!r} cannot be traced (use native or pvh)")
    if shutil.which(QEMU) is None:
        raise EntrycheckError(f"trace: {QEMU} not found: install Debian's qemu-system-x86")
    if not kernel.is_file():
        raise EntrycheckError(f"trace: {kernel}: no such kernel file")


def entry_address(entry: str, kernel: Path, image: Image, functions: FunctionTable) -> int:
    """Check the kernel file's kind; return the virtual address the boot enters vmlinux at."""
    with kernel.open("rb") as f:
        head = f.read(0x206)
    is_elf, is_bzimage = head[:4] == b"\x7fELF", head[0x202:0x206] == b"HdrS"
    if entry == "native":
        if not is_bzimage:
            raise EntrycheckError(f"trace: {kernel}: native boots need the bzImage (vmlinuz)")
        name = "startup_64" if image.bits == 64 else "startup_32"
        func = functions.named(name)
        if func is None:
            raise EntrycheckError(f"trace: {image.path}: no {name} symbol")
        return func.start
    if not is_elf:
        raise EntrycheckError(f"trace: {kernel}: pvh boots need the vmlinux ELF, not a bzImage")
    if kernel.resolve() != image.path.resolve():
        other = Image(kernel).build_id
        if other and image.build_id and other != image.build_id:
            raise EntrycheckError(f"trace: {kernel} and {image.path} differ (build-id)")
    paddr = image.xen_note(XEN_ELFNOTE_PHYS32_ENTRY)
    virt = None if paddr is None else image.phys_to_virt(paddr)
    if virt is None:
        raise EntrycheckError(f"trace: {image.path}: no XEN_ELFNOTE_PHYS32_ENTRY: not PVH-bootable")
    return virt


class _LogTail:
    """Reads the lines a growing file gained since the last call."""

    def __init__(self, path: Path):
        self.path, self.offset, self._rest = path, 0, b""

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        return data[:cut].decode("utf-8", "replace").splitlines()


def _serial_end(serial: Path) -> tuple[bool, str | None]:
    """(expected end reached, panic line) from the serial console text so far."""
    try:
        text = serial.read_text("utf-8", "replace")
    except FileNotFoundError:
        return False, None
    panic = next((ln.strip() for ln in text.splitlines() if "Kernel panic" in ln), None)
    return any(m in text for m in END_MARKERS), panic


def _stop(proc: subprocess.Popen) -> None:
    """Stop QEMU: SIGTERM, then SIGKILL after 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _watch(proc: subprocess.Popen, mapper: _Mapper, log: Path, serial: Path,
           timeout: float) -> str | None:  # fmt: skip
    """Feed the growing log to the mapper until the stop condition; None or why it failed."""
    tail, parser = _LogTail(log), InAsmParser()
    deadline = time.monotonic() + timeout
    while True:
        exited = proc.poll() is not None
        blocks = parser.feed(tail.lines()) + (parser.close() if exited else [])
        if any(mapper.add(b) for b in blocks):
            return None
        if mapper.result.until == INIT_END:
            ended, panic = _serial_end(serial)
            if ended:
                mapper.result.reached_until = True
                return None
            if panic:
                return "the kernel panicked"
        if exited:
            return f"QEMU exited (status {proc.returncode})"
        if time.monotonic() > deadline:
            return f"not reached within {timeout:g} s"
        time.sleep(POLL_SECONDS)


def run_boot(entry: str, kernel: Path, image: Image, *, until: str = "start_kernel",
             timeout: float = 180, workdir: Path | None = None,
             append: str = "") -> TraceResult:  # fmt: skip
    """Boot `kernel` under QEMU TCG through `entry` and trace the vmlinux functions that ran.

    native: `kernel` is the bzImage; pvh: the vmlinux ELF (QEMU enters it through its
    XEN_ELFNOTE_PHYS32_ENTRY note). `image` is the vmlinux the addresses are mapped on.
    `until`: a function name or INIT_END. `workdir` keeps the in_asm log and serial output.
    """
    kernel = Path(kernel)
    check_request(entry, kernel)
    functions = FunctionTable(image)
    start = entry_address(entry, kernel, image, functions)
    mapper = _Mapper(image, functions, start, until)
    with tempfile.TemporaryDirectory(prefix="entrycheck-trace-") as tmp:
        wdir = Path(workdir) if workdir else Path(tmp)
        wdir.mkdir(parents=True, exist_ok=True)
        log, serial, err = wdir / "in_asm.log", wdir / "serial.log", wdir / "qemu.stderr"
        for path in (log, serial):
            path.unlink(missing_ok=True)
        cmd = qemu_command(entry, kernel, log, serial, append)
        t0 = time.monotonic()
        with err.open("wb") as errf:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=errf)  # fmt: skip
            try:
                failure = _watch(proc, mapper, log, serial, timeout)
                seconds = time.monotonic() - t0
            finally:
                _stop(proc)
        res = mapper.result
        res.seconds, res.log_bytes = round(seconds, 3), log.stat().st_size if log.exists() else 0
        if failure:
            why = _serial_end(serial)[1] or _last_line(err) or _last_line(serial)
            raise EntrycheckError(f"trace: {entry} boot of {kernel} did not reach {until}: "
                                  f"{failure}" + (f" ({why})" if why else ""))  # fmt: skip
    res.entry, res.kernel, res.build_id, res.command = entry, str(kernel), image.build_id, cmd
    return res


def _last_line(path: Path) -> str | None:
    try:
        lines = [ln.strip() for ln in path.read_text("utf-8", "replace").splitlines()]
    except FileNotFoundError:
        return None
    lines = [ln for ln in lines if ln and ln.isprintable() and "terminating on signal" not in ln]
    return lines[-1][:200] if lines else None


# -- trace files -----------------------------------------------------------------------


def write_trace(result: TraceResult, path: Path | str) -> None:
    """Write a trace as entrycheck-trace/1 JSON (format in the module docstring)."""
    data = {
        "format": FORMAT,
        "entry": result.entry,
        "kernel": result.kernel,
        "build_id": result.build_id,
        "until": result.until,
        "functions": [
            {
                "name": name,
                "address": f"{result.addresses[name]:#x}",
                "order": i,
                "first_block": result.first_index[name],
                "physical": name in result.physical,
            }
            for i, name in enumerate(result.functions)
        ],
        "blocks": result.blocks,
        "unmapped_blocks": result.unmapped_blocks,
        "unnamed_blocks": result.unnamed_blocks,
        "reached_until": result.reached_until,
        "seconds": result.seconds,
        "log_bytes": result.log_bytes,
        "command": result.command,
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def read_trace(path: Path | str) -> TraceResult:
    """Read an entrycheck-trace/1 JSON file; EntrycheckError when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise EntrycheckError(f"{path}: not an {FORMAT} trace (format {data.get('format')!r})")
        funcs = sorted(data["functions"], key=lambda f: f["order"])
        return TraceResult(
            functions=[f["name"] for f in funcs],
            addresses={f["name"]: int(f["address"], 16) for f in funcs},
            first_index={f["name"]: f.get("first_block", f["order"]) for f in funcs},
            physical={f["name"] for f in funcs if f.get("physical")},
            blocks=data.get("blocks", 0),
            unmapped_blocks=data["unmapped_blocks"],
            unnamed_blocks=data.get("unnamed_blocks", 0),
            reached_until=data["reached_until"],
            until=data["until"],
            entry=data["entry"],
            kernel=data["kernel"],
            build_id=data.get("build_id"),
            seconds=data.get("seconds"),
            log_bytes=data.get("log_bytes"),
            command=data.get("command", []),
        )
    except OSError as exc:
        raise EntrycheckError(f"{path}: cannot read trace: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EntrycheckError(f"{path}: malformed trace file: {exc!r}") from None
