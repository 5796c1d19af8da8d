# entrycheck: `make demo` installs and runs on sample_vmlinux; `make test` installs and tests.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install demo test test-real sample clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q entrycheck  # bytecode ready even where Python may not write it
	touch $@

demo: install
	$(BIN)/entrycheck entries
	$(BIN)/entrycheck skip --entry xen-pv
	$(BIN)/entrycheck why --entry pvh x86_64_start_kernel
	$(BIN)/entrycheck why --entry xen-pv kasan_early_init; test $$? -eq 1  # not reached: exit 1

# The real-kernel tier runs when CI=true or ENTRYCHECK_REAL_KERNEL=1 (it fetches Debian's
# kernel into ~/.cache/entrycheck once).
test: install
	bash scripts/install-system-deps
	bash scripts/install-npm-deps
	$(BIN)/ruff check entrycheck tests scripts sample_vmlinux
	$(BIN)/pytest -q

test-real: install
	bash scripts/install-system-deps
	bash scripts/install-npm-deps
	ENTRYCHECK_REAL_KERNEL=1 $(BIN)/pytest -q

sample:
	$(MAKE) -C sample_vmlinux

clean:
	rm -rf $(VENV) build *.egg-info

# The example HTML report of the bundled sample kernel, in reports/sample.
.PHONY: report
report: install
	ENTRYCHECK_NO_CACHE=1 $(BIN)/entrycheck report sample_vmlinux/vmlinux -o reports/sample
