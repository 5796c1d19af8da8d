"""Shared fixtures: the committed sample kernel, its known answers, and real Debian kernels."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_vmlinux" / "vmlinux"


def real_kernel_enabled() -> bool:
    return os.environ.get("ENTRYCHECK_REAL_KERNEL") == "1" or os.environ.get("CI") == "true"


def pytest_collection_modifyitems(config, items):
    if real_kernel_enabled():
        return
    skip = pytest.mark.skip(reason="real-kernel tier: set ENTRYCHECK_REAL_KERNEL=1 (CI runs it)")
    for item in items:
        if "realkernel" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def expected() -> dict:
    return json.loads((ROOT / "sample_vmlinux" / "expected.json").read_text())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's analysis cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


def _fetch_module():
    script = ROOT / "scripts" / "fetch_kernel.py"
    spec = importlib.util.spec_from_file_location("fetch_kernel", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# version -> (meta-package flavour, apt suite): bookworm's 6.1 and 6.12, and the newest
# kernel in sid (7.x), fetched through an apt configuration of its own under the cache.
FLAVOURS = {"6.1": ("cloud-amd64", None), "6.12": ("6.12-cloud-amd64", None),
            "sid": ("cloud-amd64", "sid")}
CACHE = Path.home() / ".cache" / "entrycheck"


def debian_kernel(version: str) -> dict[str, Path]:
    """Debian's cloud-amd64 kernel files, fetched once and cached in ~/.cache/entrycheck;
    the versioned package is resolved through the meta-package of the suite."""
    fetch = _fetch_module()
    flavour, suite = FLAVOURS[version]
    pinned = os.environ.get("ENTRYCHECK_KERNEL_ABI") if version == "6.1" else None
    abi = pinned or fetch.resolve_abi(flavour, suite=suite, cache_dir=CACHE)
    return fetch.fetch(abi, ["dbg", "image"], CACHE, suite=suite, drop_debs=True)


@pytest.fixture(scope="session")
def debian61() -> dict[str, Path]:
    return debian_kernel("6.1")


@pytest.fixture(scope="session")
def debian_sid() -> dict[str, Path]:
    return debian_kernel("sid")


@pytest.fixture(scope="session", params=["6.1", "6.12", "sid"])
def debian(request) -> dict[str, Path]:
    """Each kernel of the corpus in turn."""
    return debian_kernel(request.param)
