# Two commands a new user needs: `make run` (default experiment) and `make test` (`make test-all`: with the slow cases).
# Each creates $(VENV) with the newest Python >= 3.11 that runs on this machine and installs the project
# on first use.
#
# PYTHON: the interpreter. Default: the first of $(PYTHON_CANDIDATES) that actually runs (a shim that
#   fails, as pyenv's do for versions it does not have selected, does not count) and is >= 3.11.
#   `make PYTHON=/path/to/python3.12 test` overrides.
# VENV: the virtual environment's directory (default .venv); `make test PYTHON=python3.13 VENV=.venv-py313`
#   keeps a second interpreter's environment beside the first.
# The venv is rebuilt when it was made with another Python version than $(PYTHON)'s (its stamp names
# the version), and reinstalled when pyproject.toml changes.
PYTHON_CANDIDATES := python3.13 python3.12 python3.11 python3
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for c in $(PYTHON_CANDIDATES); do \
	$$c -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$c; break; }; \
	done)
endif
VENV := .venv
BIN := $(VENV)/bin
# e.g. cpython-3.13.0; empty when $(PYTHON) does not run
PY_TAG_CODE := import sys; print(sys.implementation.name + "-" + ".".join(map(str, sys.version_info[:3])))
PY_TAG := $(if $(PYTHON),$(shell $(PYTHON) -c '$(PY_TAG_CODE)' 2>/dev/null))
STAMP := $(VENV)/.installed-$(PY_TAG)

# TEST_WORKERS: pytest-xdist workers for `make test` / `make test-all` (default: one per core, at most 4; each
#   worker is a JAX process of up to ~2.5 GB); `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS := auto --maxprocesses 4
PYTEST := MPLBACKEND=Agg $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

.PHONY: run test test-all test-slow bench setup clean-venv which-python docs docs-serve notebooks lint

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "compmech needs Python >= 3.11 and none of $(PYTHON_CANDIDATES) runs here; install one, or run: make PYTHON=/path/to/python3.11 ..." >&2; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "compmech needs Python >= 3.11 ($(PYTHON) is " + sys.version.split()[0] + "); run: make PYTHON=/path/to/python3.11 ...")'
	@if [ -e $(BIN)/python ] && [ "$$($(BIN)/python -c '$(PY_TAG_CODE)' 2>/dev/null)" != "$(PY_TAG)" ]; then \
		echo "$(VENV) was made with another Python than $(PYTHON) ($(PY_TAG)): rebuilding it"; rm -rf $(VENV); fi
	@echo "setting up $(VENV) with $(PYTHON) ($(PY_TAG))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/compmech run $(ARGS)

# `make test`: the suite without the long end-to-end cases (marked slow); `make test-all`: every test.
test: $(STAMP)
	$(PYTEST) -m "not slow" $(ARGS)

test-all: $(STAMP)
	$(PYTEST) $(ARGS)

# The long end-to-end cases alone (CI runs them after `make test`).
test-slow: $(STAMP)
	$(PYTEST) -m slow $(ARGS)

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The documentation site and the example notebooks need the [docs] extra (MkDocs Material, mkdocstrings, jupytext,
# nbmake), installed into $(VENV) on first use. The stamp is removed whenever $(STAMP) is remade.
DOCS_STAMP := $(VENV)/.installed-docs-$(PY_TAG)
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $(DOCS_STAMP)

# `make lint`: ruff check, ruff format --check and pyright (the configuration: pyproject.toml's [tool.ruff] and
# [tool.pyright]); the [lint] extra is installed into $(VENV) on first use. `.ci/run` runs it; so do the pre-commit
# hooks (`$(BIN)/pre-commit install` once, after `make lint`).
LINT_STAMP := $(VENV)/.installed-lint-$(PY_TAG)
$(LINT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,lint]"
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright --pythonpath $(BIN)/python

# The site, into site/ (docs/ + mkdocs.yml; the config and CLI references are generated from the code). --strict:
# a broken link, a missing page or an unresolved API reference fails the build.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The same site served at http://127.0.0.1:8000, rebuilt when a page changes.
docs-serve: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# The example notebooks: examples/NN_*.py (jupytext percent scripts, the source) -> examples/NN_*.ipynb, executed
# in place by nbmake (their outputs written back), each from examples/ with its runs in examples/runs/ (removed
# first, so that every run trains afresh). Each runs on a budget of a minute or two; ARGS passes options to pytest.
NOTEBOOKS := $(wildcard examples/[0-9]*.py)
notebooks: $(DOCS_STAMP)
	rm -rf examples/runs
	$(BIN)/jupytext --quiet --to ipynb $(NOTEBOOKS)
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=600 --overwrite --durations=0 \
		$(NOTEBOOKS:.py=.ipynb) $(ARGS)

# The interpreter make picked and its version tag (used by .ci/run); builds nothing.
which-python:
	@echo "$(PYTHON) $(PY_TAG)"

clean-venv:
	rm -rf $(VENV)
