"""entrycheck.resolve.direct: direct calls and jumps, fall-through into the next symbol,
and the noreturn functions after whose call decoding stops (sample kernel)."""

from __future__ import annotations

import json

from entrycheck.cli import main
from entrycheck.model import EdgeKind
from entrycheck.resolve.direct import Direct


def test_calls_and_a_condition(built):
    links = built.links(Direct, "early_cpu_init")
    got = {(built.functions.at(ln.target).name, ln.kind, ln.condition, ln.tail) for ln in links}
    assert got == {
        ("__SCT__early_hook", EdgeKind.CALL, None, False),
        ("early_cpu_set_mode", EdgeKind.CALL, None, False),
        ("panic", EdgeKind.CALL, None, False),
        # the static key's out-of-line block: decoded as conditional (jump_labels)
        ("static_key_only_helper", EdgeKind.CALL, "static key early_debug_key enabled",
         False),
    }


def test_tail_jump(built):
    links = built.links(Direct, "startup_64")
    jumps = [ln for ln in links if ln.kind == EdgeKind.JUMP]
    assert [(built.functions.at(ln.target).name, ln.tail) for ln in jumps] == [
        ("common_startup_64", True)]


def test_fallthrough_after_a_call_that_returns(built):
    """secondary_startup_64 ends in `call verify_cpu` right before common_startup_64."""
    falls = [ln for ln in built.links(Direct, "secondary_startup_64")
             if ln.kind == EdgeKind.FALLTHROUGH]
    assert [ln.target for ln in falls] == [built.addr("common_startup_64")]
    site, = [s for s in built.facts("secondary_startup_64").sites if s.after_call]
    assert site.after_call == built.addr("verify_cpu")


def test_noreturn_stops_decoding(built, graphs):
    options = built.resolver(Direct).decoder_options()
    assert built.addr("panic") in options["noreturn"]
    assert built.addr("panic") in options["error_exits"]
    targets = {ln.target for ln in built.links(Direct, "early_cpu_init")}
    assert built.addr("dead_after_panic") not in targets  # `call panic; call dead_after_panic`
    for graph in graphs.values():
        assert "dead_after_panic" not in built.reached(graph)


def test_noreturn_in_the_cli(capsys, sample, expected):
    assert main(["why", str(sample), "--entry", "native", "dead_after_panic"]) == 1
    assert "native does not reach dead_after_panic." in capsys.readouterr().out
    for entry in ("xen-pv", "pvh"):  # xen-pv reaches panic before the paths join
        assert main(["skip", str(sample), "--entry", entry, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["convergence"] == expected["convergence"][entry]
        assert "panic" not in out["convergence"]
