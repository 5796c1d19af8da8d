"""The fast decoder's direct call/jump targets agree with angr's CFGFast."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import Image
from entrycheck.crosscheck.with_angr import CrossCheck, crosscheck, sized_functions

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_vmlinux" / "vmlinux"
REAL_ABI = "6.1.0-56-cloud-amd64"
REAL_CACHE = Path.home() / ".cache" / "entrycheck"

real_kernel = pytest.mark.skipif(
    os.environ.get("ENTRYCHECK_REAL_KERNEL") != "1" and os.environ.get("CI") != "true",
    reason="real-kernel tier: set ENTRYCHECK_REAL_KERNEL=1 (CI runs it)")


def _fetch_module():
    spec = importlib.util.spec_from_file_location("fetch_kernel",
                                                  ROOT / "scripts" / "fetch_kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_agrees_completely():
    image = Image(SAMPLE)
    functions = FunctionTable(image)
    names = [f.name for f in sized_functions(image, functions)]
    result = crosscheck(image, functions, names=names, mode=64)
    assert result.functions == len(names) > 10
    assert result.mismatches == [], result.as_json()
    assert result.agreeing == result.functions


def test_sample_json_and_default_sample():
    image = Image(SAMPLE)
    functions = FunctionTable(image)
    result = crosscheck(image, functions, sample=3, seed=1)
    again = crosscheck(image, functions, sample=3, seed=1)
    assert isinstance(result, CrossCheck)
    assert result.functions == again.functions <= 3
    data = json.loads(json.dumps(result.as_json()))
    assert set(data) >= {"functions", "agreeing", "mismatches", "seconds_angr", "seconds_fast"}


@pytest.mark.realkernel
@real_kernel
def test_real_kernel_sample_agrees():
    paths = _fetch_module().fetch(REAL_ABI, ["dbg"], REAL_CACHE)
    image = Image(paths.get("vmlinux_nodebug", REAL_CACHE / "kernels" / REAL_ABI
                            / "vmlinux.nodebug"))
    result = crosscheck(image, FunctionTable(image), sample=20)
    print(json.dumps(result.as_json(), indent=1))
    assert result.functions == 20
    assert result.agreement >= 0.95, result.as_json()
