"""Fixtures of the check tests: the proof kernel (the sample plus a native-only init call)
and Microsoft's SARIF multitool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import ROOT

FEATURE = """
noinline __init void early_new_feature_init(void)
{
\tasm volatile("" ::: "memory");
\tboot_command_line[1] = 1;
}
"""
MULTITOOL = "node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"


def need(reason: str) -> None:
    """Skip with the reason; in CI (CI=true) a missing tool fails the test instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: not skipping)")
    pytest.skip(reason)


def build_variant(dest: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """The sample built from a copy of its sources with `edits`: per file, (old, new)
    replacements, each of which must apply once (old "" appends new)."""
    if not all(shutil.which(t) for t in ("gcc", "ld", "make")):
        need("needs gcc, ld and make to build a variant of the sample")
    src = dest / "head"
    shutil.copytree(ROOT / "sample_vmlinux", src, ignore=shutil.ignore_patterns("vmlinux", "build"))
    for name, changes in edits.items():
        path = src / name
        text = path.read_text()
        for old, new in changes:
            if not old:
                text += new
                continue
            assert text.count(old) == 1, (name, old)
            text = text.replace(old, new)
        path.write_text(text)
    proc = subprocess.run(["make", "-s", "-C", str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return src / "vmlinux"


def merged(*edits: dict) -> dict:
    """Several variants' edits as one (per file, in order)."""
    out: dict[str, list] = {}
    for edit in edits:
        for name, changes in edit.items():
            out.setdefault(name, []).extend(changes)
    return out


ANCHOR = "\tload_ucode_bsp();"  # in x86_64_start_kernel
START_KERNEL = "noinline __init __noreturn void x86_64_start_kernel"


def native_call(function: str, definition: str, declaration: str | None = None) -> dict:
    """Edits that wire `function()` into x86_64_start_kernel only, defined in main.c."""
    decl = declaration or f"void {function}(void);"
    return {"head64.c": [(ANCHOR, f"{ANCHOR}\n\t{function}();"),
                         (START_KERNEL, f"{decl}\n{START_KERNEL}")],
            "main.c": [("", definition)]}


def build_proof_kernel(dest: Path) -> Path:
    """The sample with `early_new_feature_init()` wired into x86_64_start_kernel only."""
    return build_variant(dest, native_call("early_new_feature_init", FEATURE))


@pytest.fixture(scope="session")
def proof_head(tmp_path_factory) -> Path:
    return build_proof_kernel(tmp_path_factory.mktemp("proof"))


@pytest.fixture(scope="session")
def multitool() -> Path:
    """Sarif.Multitool, installed by scripts/install-npm-deps (run here if needed)."""
    # not under XDG_CACHE_HOME: the tests point that at a private folder per session
    folder = Path(os.environ.get("ENTRYCHECK_NPM_DIR") or
                  Path.home() / ".cache" / "entrycheck" / "npm")
    tool = folder / MULTITOOL
    if not os.access(tool, os.X_OK):
        if shutil.which("npm") is None:
            need("npm not found: the SARIF multitool test needs Debian's npm")
        env = {**os.environ, "ENTRYCHECK_NPM_DIR": str(folder)}
        subprocess.run(["bash", str(ROOT / "scripts" / "install-npm-deps")], check=True, env=env)
    if not os.access(tool, os.X_OK):
        need(f"{tool}: not installed by scripts/install-npm-deps")
    return tool
