"""Traced boots under QEMU TCG (`-d in_asm`), mapped to vmlinux functions as they run.

``until`` is a function name (the trace stops at, and includes, its first block) or
``init-end`` (the trace runs until the kernel panics for want of a root file system or
an init, the expected end of a boot with no disk; ``panic=-1`` and ``-no-reboot`` then
make QEMU exit).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from entrycheck.binary import bzimage
from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import XEN_ELFNOTE_PHYS32_ENTRY, Image
from entrycheck.errors import EntrycheckError
from entrycheck.trace.mapping import ENTRIES, INIT_END, InAsmParser, Mapper, TraceResult

QEMU = "qemu-system-x86_64"
END_MARKERS = ("No working init found", "Unable to mount root fs")
POLL_SECONDS = 0.05
APPEND = "nokaslr console=ttyS0 panic=-1"


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


def linux_banner(image: Image) -> str | None:
    """The vmlinux's `linux_banner` string ("Linux version 6.1.0-57-cloud-amd64 (...)
    (gcc ...) #1 SMP ... (2026-11-26)"), or None when it has none."""
    symbols = image.symbols_by_name.get("linux_banner")
    if not symbols:
        return None
    sym = symbols[0]
    data = image.read(sym.value, min(sym.size or 512, 4096))
    if data is None:
        return None
    return bytes(data).split(b"\0", 1)[0].decode("utf-8", "replace").strip()


_VERSION = re.compile(r"^(\S+) \(([^()]*)\) (.+)$")  # release (by@host) UTS version


def banner_matches(version: str, banner: str) -> bool:
    """Does a bzImage's version string (setup header: UTS_RELEASE (BY@HOST) UTS_VERSION)
    name the build of this linux_banner (Linux version UTS_RELEASE (BY@HOST) (COMPILER)
    UTS_VERSION)? Release and builder always; the UTS version (build number, date) when
    the header gives one."""
    m = _VERSION.match(version.strip())
    if m is None:
        release = version.split()[0] if version.split() else ""
        return bool(release) and banner.startswith(f"Linux version {release} ")
    release, builder, uts = m.groups()
    return banner.startswith(f"Linux version {release} ({builder}) ") and banner.endswith(uts)


def check_same_kernel(kernel: Path, image: Image) -> None:
    """EntrycheckError unless the kernel QEMU boots is the build `image` describes: a
    bzImage's version string against the vmlinux's linux_banner, an ELF's build-id (else
    its linux_banner) against the vmlinux's. A trace of another build maps its addresses
    onto the wrong functions."""
    with kernel.open("rb") as f:
        head = f.read(4)
    banner = linux_banner(image)
    if head == b"\x7fELF":
        if kernel.resolve() == image.path.resolve():
            return
        other = Image(kernel)
        if other.build_id and image.build_id:
            if other.build_id != image.build_id:
                raise EntrycheckError(f"trace: {_tail(kernel)} is build {other.build_id}, "
                                      f"{_tail(image.path)} is {image.build_id}")
            return
        theirs = linux_banner(other)
        if banner is None or theirs is None or theirs != banner:
            raise EntrycheckError(f"trace: {_tail(kernel)}: not the build of "
                                  f"{_tail(image.path)} (no common build-id, linux_banner "
                                  "differs or is missing)")
        return
    version = bzimage.parse(kernel).kernel_version
    if version is None or banner is None:
        missing = "its setup header has no kernel version" if version is None else \
            "the vmlinux has no linux_banner"
        raise EntrycheckError(f"trace: {_tail(kernel)}: cannot tell whether it is the build "
                              f"of {_tail(image.path)}: {missing}")
    if not banner_matches(version, banner):
        raise EntrycheckError(f"trace: {_tail(kernel)} is {_build(version)}; the vmlinux is "
                              f"{_build(banner)}: not the same kernel")


def _build(text: str) -> str:
    """`6.1.0-57-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)` from a
    setup-header version string or a linux_banner, at most 75 characters."""
    words = text.removeprefix("Linux version ").split()
    release = words[0] if words else "?"
    uts = text[text.rfind(") #") + 2:] if ") #" in text else ""
    out = f"{release} {uts}".strip()
    return out if len(out) <= 75 else out[:72] + "..."


def _tail(path: Path) -> str:
    """A path short enough for a one-line message: its last 60 characters."""
    text = str(path)
    return text if len(text) <= 60 else "..." + text[-57:]


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


def _watch(proc: subprocess.Popen, mapper: Mapper, log: Path, serial: Path,
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
    check_same_kernel(kernel, image)
    functions = FunctionTable(image)
    start = entry_address(entry, kernel, image, functions)
    mapper = Mapper(image, functions, start, until)
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
