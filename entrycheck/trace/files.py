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
from pathlib import Path

from entrycheck.errors import EntrycheckError
from entrycheck.trace.mapping import TraceResult

FORMAT = "entrycheck-trace/1"


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
