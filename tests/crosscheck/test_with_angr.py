"""The fast decoder's direct call/jump targets agree with angr's CFGFast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import Image
from entrycheck.crosscheck.with_angr import CrossCheck, crosscheck, sized_functions

from ..conftest import debian_kernel

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_vmlinux" / "vmlinux"


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
def test_real_kernel_sample_agrees():
    """20 random functions of Debian's 6.1 (the tier's kernel, as the fixtures fetch it)."""
    image = Image(debian_kernel("6.1")["vmlinux_nodebug"])
    result = crosscheck(image, FunctionTable(image), sample=20)
    print(json.dumps(result.as_json(), indent=1))
    assert result.functions == 20
    assert result.agreement >= 0.95, result.as_json()
