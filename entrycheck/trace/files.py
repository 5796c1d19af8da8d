"""Trace files: one boot's functions as entrycheck-trace/1 JSON::

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
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from entrycheck import safeio
from entrycheck.errors import EntrycheckError
from entrycheck.trace.mapping import TraceResult

FORMAT = "entrycheck-trace/1"
_HEX = re.compile(r"0x[0-9a-fA-F]{1,16}")


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
    safeio.write_text(Path(path), json.dumps(data, indent=1), "trace")


MAX_TRACE = 64 << 20  # bytes of a trace file (Debian 6.1 to start_kernel: under 1 MiB)
MAX_NAME = 512        # characters of a function name
_FIELDS = {  # top-level key -> (required, accepted types)
    "unmapped_blocks": (True, int), "reached_until": (True, bool), "until": (True, str),
    "entry": (True, str), "kernel": (True, str), "blocks": (False, int),
    "unnamed_blocks": (False, int), "build_id": (False, (str, type(None))),
    "seconds": (False, (int, float, type(None))), "log_bytes": (False, (int, type(None))),
    "command": (False, list),
}


def read_trace(path: Path | str) -> TraceResult:
    """Read an entrycheck-trace/1 JSON file; EntrycheckError when it is not one (a
    regular file of bounded size and nesting, every field of the type it must have)."""
    path = Path(path)
    where = safeio.shown(path)
    data = safeio.read_json(path, "trace", MAX_TRACE)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise EntrycheckError(f"{where}: not an {FORMAT} trace (format "
                              f"{safeio.shown(repr(found), 60)})")
    fields = {}
    for key, (required, kinds) in _FIELDS.items():
        if key not in data:
            if required:
                raise EntrycheckError(f"{where}: malformed trace file: no {key!r}")
            continue
        value = data[key]
        if not isinstance(value, kinds) or (kinds is int and isinstance(value, bool)):
            raise EntrycheckError(f"{where}: malformed trace file: {key!r} is "
                                  f"{safeio.shown(repr(value), 60)}")
        fields[key] = value
    funcs = _functions(where, data.get("functions"))
    return TraceResult(
        functions=[f["name"] for f in funcs],
        addresses={f["name"]: int(f["address"], 16) for f in funcs},
        first_index={f["name"]: f.get("first_block", f["order"]) for f in funcs},
        physical={f["name"] for f in funcs if f.get("physical")},
        blocks=fields.get("blocks", 0),
        unmapped_blocks=fields["unmapped_blocks"],
        unnamed_blocks=fields.get("unnamed_blocks", 0),
        reached_until=fields["reached_until"],
        until=fields["until"],
        entry=fields["entry"],
        kernel=fields["kernel"],
        build_id=fields.get("build_id"),
        seconds=fields.get("seconds"),
        log_bytes=fields.get("log_bytes"),
        command=[str(c) for c in fields.get("command", [])],
    )


def _functions(where: str, funcs: object) -> list[dict]:
    """The trace's functions, checked one by one and sorted by `order`."""
    if not isinstance(funcs, list):
        raise EntrycheckError(f"{where}: malformed trace file: 'functions' is not a list")
    for i, f in enumerate(funcs):
        problem = _function_problem(f)
        if problem:
            raise EntrycheckError(f"{where}: malformed trace file: function {i}: {problem}")
    return sorted(funcs, key=lambda f: f["order"])


def _function_problem(f: object) -> str | None:
    if not isinstance(f, dict):
        return "not an object"
    name, address, order = f.get("name"), f.get("address"), f.get("order")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        return f"name {safeio.shown(repr(name), 60)} is not a function name"
    if not isinstance(address, str) or not _HEX.fullmatch(address):
        return f"address {safeio.shown(repr(address), 60)} is not a 0x... hex string"
    for key in ("order", "first_block"):
        value = f.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"{key} {safeio.shown(repr(value), 60)} is not a count"
    if order is None:
        return "no order"
    return None
