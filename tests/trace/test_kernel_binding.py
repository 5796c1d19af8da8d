"""Traces bound to their kernel: `trace` refuses to boot a kernel other than the vmlinux
it maps addresses on; `validate` and `skip` refuse traces of another build or entry."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from entrycheck.binary.image import Image
from entrycheck.cli import main
from entrycheck.errors import EntrycheckError
from entrycheck.trace import qemu

from ..conftest import ROOT, SAMPLE

BZIMAGE = ROOT / "sample_vmlinux" / "compressed" / "bzImage"  # 6.1.0-entrycheck-sample (...)

# The strings of Debian's 6.1.0-57 and 6.12.117+deb12 cloud kernels (setup header / banner).
V61 = ("6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC "
       "Debian 6.1.192-3 (2026-11-26)")
B61 = ("Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
       "12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
       "PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)")
B612 = ("Linux version 6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) "
        "(x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils "
        "for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1~deb12u1 (2026-11-14)")


def test_banner_matches():
    assert qemu.banner_matches(V61, B61)
    assert not qemu.banner_matches(V61, B612)
    rebuilt = B61.replace("(2026-11-26)", "(2026-12-01)")  # same release, another build
    assert not qemu.banner_matches(V61, rebuilt)
    assert qemu.banner_matches("6.1.0-x (model)", "Linux version 6.1.0-x (a) (b) #1")
    assert not qemu.banner_matches("", B61)


def tiny_kernel(tmp_path: Path, banner: str) -> Path:
    """A small x86-64 ELF with a linux_banner and a startup_64, built with gcc."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    src = tmp_path / "banner.c"
    src.write_text("const char linux_banner[] = " + json.dumps(banner + "\n") + ";\n"
                   "void startup_64(void) { for (;;); }\n")
    out = tmp_path / f"vmlinux-{abs(hash(banner)) % 10**6}"
    subprocess.run(["gcc", "-O1", "-nostdlib", "-static", "-Wl,-e,startup_64", "-o", str(out),
                    str(src)], check=True)
    return out


def test_sample_bzimage_against_a_vmlinux_of_its_build(tmp_path):
    same = tiny_kernel(tmp_path, "Linux version 6.1.0-entrycheck-sample (x) (gcc) #1")
    qemu.check_same_kernel(BZIMAGE, Image(same))  # no error


def test_trace_refuses_another_kernel(tmp_path, monkeypatch, capsys):
    other = tiny_kernel(tmp_path, "Linux version 6.1.0-53-cloud-amd64 (x) (gcc) #1")
    monkeypatch.setattr(qemu.shutil, "which", lambda name: f"/usr/bin/{name}")  # no boot
    out = tmp_path / "native.json"
    assert main(["trace", str(other), "--entry", "native", "--kernel", str(BZIMAGE),
                 "-o", str(out)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("entrycheck: error: trace: ") and "not the same kernel" in line
    assert "6.1.0-entrycheck-sample" in line and "6.1.0-53-cloud-amd64" in line
    assert len(line) < 300 and not out.exists()


def test_trace_refuses_a_vmlinux_without_banner(monkeypatch):
    monkeypatch.setattr(qemu.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(EntrycheckError, match="cannot tell whether it is the build"):
        qemu.run_boot("native", BZIMAGE, Image(SAMPLE))


def test_pvh_trace_refuses_another_elf(tmp_path, monkeypatch):
    one = tiny_kernel(tmp_path, "Linux version 1 (a) (b) #1")
    two = tiny_kernel(tmp_path, "Linux version 2 (a) (b) #1")
    monkeypatch.setattr(qemu.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(EntrycheckError, match=r"is build|not the build of"):
        qemu.run_boot("pvh", one, Image(two))


def _trace(tmp_path: Path, entry: str, build_id: str | None) -> Path:
    path = tmp_path / f"{entry}-{build_id}.json"
    path.write_text(json.dumps({
        "format": "entrycheck-trace/1", "entry": entry, "kernel": "k", "build_id": build_id,
        "until": "start_kernel", "functions": [
            {"name": "startup_64", "address": "0x0", "order": 0, "first_block": 0}],
        "unmapped_blocks": 0, "reached_until": True}))
    return path


def test_validate_refuses_another_build(tmp_path, capsys, sample):
    trace = _trace(tmp_path, "native", "00" * 20)
    assert main(["validate", str(sample), "--entry", "native", "--trace", str(trace)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "not the same kernel" in line and "0000" in line


def test_validate_refuses_another_entry(tmp_path, capsys, sample):
    build = Image(sample).build_id
    trace = _trace(tmp_path, "native", build)
    assert main(["validate", str(sample), "--entry", "pvh", "--trace", str(trace)]) == 2
    assert "a native boot, not of pvh" in capsys.readouterr().err
    assert main(["validate", str(sample), "--entry", "native", "--trace", str(trace),
                 "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["same_build"] is True


def test_skip_refuses_a_trace_of_another_entry(tmp_path, capsys, sample):
    build = Image(sample).build_id
    pvh, native = _trace(tmp_path, "pvh", build), _trace(tmp_path, "native", build)
    assert main(["skip", str(sample), "--entry", "xen-pv", "--trace", str(pvh),
                 "--reference-trace", str(native)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "a trace of a pvh boot, but --trace stands for xen-pv" in line
    other = _trace(tmp_path, "pvh", "11" * 20)
    assert main(["skip", str(sample), "--entry", "pvh", "--trace", str(other),
                 "--reference-trace", str(native)]) == 2
    assert "traced on build-id 1111" in capsys.readouterr().err


def _cached(abi: str) -> dict[str, Path]:
    """The kernel's files: read where fetch_kernel left them (fetch rewrites the
    manifest, so it runs only when a file is missing)."""
    kdir = Path.home() / ".cache" / "entrycheck" / "kernels" / abi
    files = {"vmlinux_nodebug": kdir / "vmlinux.nodebug", "vmlinuz": kdir / "vmlinuz"}
    if all(f.is_file() for f in files.values()):
        return files
    spec = importlib.util.spec_from_file_location("fetch_kernel", ROOT / "scripts/fetch_kernel.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fetch(abi, ["dbg", "image"], Path.home() / ".cache" / "entrycheck")


@pytest.mark.realkernel
def test_real_vmlinuz_of_another_kernel_is_refused(tmp_path, capsys):
    """Debian 6.1.0-57's vmlinuz with 6.12's vmlinux: refused before QEMU starts; each
    vmlinuz with its own vmlinux passes the check."""
    k61, k612 = _cached("6.1.0-57-cloud-amd64"), _cached("6.12.117+deb12-cloud-amd64")
    capsys.readouterr()  # what fetching logged
    out = tmp_path / "native.json"
    assert main(["trace", str(k612["vmlinux_nodebug"]), "--entry", "native",
                 "--kernel", str(k61["vmlinuz"]), "-o", str(out)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "6.1.0-57-cloud-amd64" in line and "6.12.117+deb12-cloud-amd64" in line
    assert "not the same kernel" in line and len(line) < 300 and not out.exists()
    for k in (k61, k612):
        qemu.check_same_kernel(k["vmlinuz"], Image(k["vmlinux_nodebug"]))
