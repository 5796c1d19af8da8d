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


def build_proof_kernel(dest: Path) -> Path:
    """The sample with `early_new_feature_init()` wired into x86_64_start_kernel only."""
    if not all(shutil.which(t) for t in ("gcc", "ld", "make")):
        need("needs gcc, ld and make to build the proof kernel")
    src = dest / "head"
    shutil.copytree(ROOT / "sample_vmlinux", src, ignore=shutil.ignore_patterns("vmlinux", "build"))
    head64 = src / "head64.c"
    text = head64.read_text()
    anchor = "\tload_ucode_bsp();"
    decl = "noinline __init __noreturn void x86_64_start_kernel"
    assert anchor in text and decl in text
    text = text.replace(anchor, anchor + "\n\tearly_new_feature_init();")
    head64.write_text(text.replace(decl, "void early_new_feature_init(void);\n" + decl, 1))
    main_c = src / "main.c"
    main_c.write_text(main_c.read_text() + FEATURE)
    subprocess.run(["make", "-s", "-C", str(src)], check=True, capture_output=True)
    return src / "vmlinux"


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
