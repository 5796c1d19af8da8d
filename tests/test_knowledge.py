"""entrycheck.knowledge: data/x86.yaml is checked against its schema, a mistake is named
with FILE:LINE; symbol lists per image, exception entries, version ranges."""

from __future__ import annotations

from importlib import resources

import pytest

from entrycheck.errors import EntrycheckError
from entrycheck.knowledge import FIELD_KINDS, load, version_in, x86

SOURCE = "x86-test.yaml"


@pytest.fixture(scope="module")
def text() -> str:
    return resources.files("entrycheck").joinpath("data/x86.yaml").read_text()


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth line holding `needle`."""
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth]


def error(text: str) -> str:
    with pytest.raises(EntrycheckError) as exc:
        load(text, SOURCE)
    return str(exc.value)


def test_shipped_data_loads(text):
    k = load(text, SOURCE)
    assert k == x86()  # the cached copy is the same data
    assert k.reference == "native"
    assert [e.name for e in k.entries][:3] == ["native", "xen-pv", "pvh"]
    assert all(kind in FIELD_KINDS for t in k.tables for lay in t.layouts
               for _, kind in lay.fields.values())
    alternatives = next(t for t in k.tables if t.name == "alternatives")
    assert [(lay.versions, lay.size) for lay in alternatives.layouts] == [("<6.3", 12),
                                                                          (">=6.3", 14)]


def test_missing_key_names_file_and_line(text):
    about = "    about: native boot, entered from the decompressor"
    broken = text.replace(about + " (arch/x86/kernel/head_64.S)\n", "", 1)
    assert broken != text
    assert error(broken) == (f"{SOURCE}:{line_of(text, '- name: native')}: "
                             "top level.entries[0]: missing key 'about'")


def test_bad_value_names_file_and_line(text):
    broken = text.replace("    mode: 64\n    bits: 64\n", "    mode: sixty-four\n    bits: 64\n", 1)
    assert error(broken) == (f"{SOURCE}:{line_of(broken, 'mode: sixty-four')}: "
                             "top level.entries[0].mode: must be one of 32, 64 "
                             "(got 'sixty-four')")


def test_bad_type_names_file_and_line(text):
    broken = text.replace("{function: __static_call_update, trampoline: 2,",
                          "{function: __static_call_update, trampoline: two,", 1)
    assert error(broken) == (f"{SOURCE}:{line_of(broken, 'trampoline: two')}: "
                             "top level.static_call_updates[0].trampoline: expected an integer "
                             "(got 'two')")


def test_scalar_where_a_list_belongs(text):
    old = "indirect_thunk_prefixes: [__x86_indirect_thunk_, __x86_indirect_call_thunk_,"
    i = text.index(old)
    end = text.index("]", i) + 1
    broken = text[:i] + "indirect_thunk_prefixes: __x86_indirect_thunk_" + text[end:]
    assert error(broken) == (f"{SOURCE}:{line_of(broken, 'indirect_thunk_prefixes:')}: "
                             "top level.indirect_thunk_prefixes: expected a list")


def test_unknown_key(text):
    broken = text.replace("  - name: native\n", "  - name: native\n    colour: red\n", 1)
    message = error(broken)
    assert message.startswith(f"{SOURCE}:{line_of(broken, '- name: native')}: "
                              "top level.entries[0]: unknown key 'colour' (allowed: ")


def test_invalid_yaml(text):
    broken = text.replace("reference: native", "reference: [native", 1)
    assert error(broken).startswith(f"{SOURCE}:")
    assert error(broken).endswith(": invalid YAML")


def test_layout_errors_name_the_layout_line(text):
    bad_versions = text.replace('{versions: ">=6.3", size: 14,', '{versions: "~6.3", size: 14,', 1)
    line = line_of(bad_versions, 'versions: "~6.3"')
    assert error(bad_versions) == (f"{SOURCE}:{line}: table alternatives: bad versions '~6.3'")
    bad_kind = text.replace("repl: [4, rel32],", "repl: [4, rel16],", 1)
    assert error(bad_kind) == (f"{SOURCE}:{line_of(bad_kind, 'repl: [4, rel16]')}: table "
                               f"alternatives: field repl must be [offset < size, one of "
                               f"{', '.join(FIELD_KINDS)}]")
    no_code_field = text.replace("{instr: [0, rel32], repl: [4, rel32],\n",
                                 "{insn: [0, rel32], repl: [4, rel32],\n", 1)
    assert error(no_code_field) == (f"{SOURCE}:{line_of(no_code_field, 'insn: [0, rel32]')}: "
                                    "table alternatives: field instr missing from a layout")

    deep = text.replace("struct_depth: 3", "struct_depth: 9", 1)
    assert error(deep).endswith("table trace_events: struct_depth must be 1 to 4")


def test_a_struct_table_may_be_followed_deeper():
    depths = {t.name: t.struct_depth for t in x86().tables if t.struct_fields}
    assert depths["trace_events"] == 3 and depths["cpu_devs"] == 2


def test_symbol_lists_per_image():
    k = x86()
    # `error` is the compressed kernel's noreturn helper: not an error exit of vmlinux
    assert "error" in k.names("error_exits", "compressed")
    assert "error" not in k.names("error_exits", "vmlinux")
    assert "panic" in k.names("error_exits", "vmlinux") & k.names("error_exits", "compressed")
    assert k.names("boot_ends", "vmlinux") == frozenset({"start_kernel"})
    assert k.names("boot_ends", "compressed") == frozenset()


def test_exception_entries_by_name_and_prefix():
    k = x86()
    assert k.is_exception_entry("early_idt_handler_array")
    assert k.is_exception_entry("asm_exc_page_fault") and k.is_exception_entry("exc_invalid_op")
    assert not k.is_exception_entry("idt_setup_early_handler")
    # Xen PV's own NMI / #DB / #DF / #MC entries, registered through trap_array
    assert all(k.is_exception_entry(n) for n in (
        "xen_asm_xenpv_exc_nmi", "asm_xenpv_exc_machine_check", "xenpv_exc_double_fault"))


@pytest.mark.parametrize(("version", "spec", "inside"), [
    ((6, 1, 0), "<6.3", True), ((6, 3, 0), "<6.3", False), ((6, 3, 0), ">=6.3", True),
    ((6, 12, 117), ">=6.3", True), ((6, 12, 117), "==6.12", True), ((7, 2, 13), "<6.19", False),
    ((6, 19), ">=6.19", True), ((6, 8, 1), "<=6.8", True), ((6, 9), ">6.8", True),
    ((5, 10), "any", True),
])
def test_version_ranges(version, spec, inside):
    assert version_in(version, spec) is inside


def test_digest_follows_the_text(text):
    assert load(text, SOURCE).digest != load(text + "\n# changed\n", SOURCE).digest


def test_a_variable_fact_may_hold_while_one_function_runs(text):
    fact = next(f for f in load(text, SOURCE).boot_facts
                if f.variable == "static_call_initialized")
    assert (fact.entry, fact.function, fact.argument) == ("xen-pv", "xen_start_kernel", None)
    broken = text.replace("    function: xen_start_kernel\n    variable: static_call_initialized\n",
                          "    argument: 1\n    variable: static_call_initialized\n", 1)
    assert broken != text
    assert "needs a variable (while a function runs, or throughout), or a function and an " \
           "argument" in error(broken)
    only_function = text.replace("    variable: static_call_initialized\n", "", 1)
    assert "needs a variable" in error(only_function)
