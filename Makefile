# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Torch is installed first and pinned, so no multi-GB CUDA build is pulled on a CPU box.
# On a GPU workstation use conda-env.yml (or: make TORCH_SPEC='torch' ...).
TORCH_SPEC ?= torch==2.13.0
DATA ?= ./data

.PHONY: demo test gpu-check bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m engine demo --data $(DATA)

test: $(VENV)/.installed
	$(PY) -m pytest -q

# On a CUDA machine, straight from the source tree (no installs: GPU boxes may be offline).
gpu-check:
	PYTHONPATH=$(CURDIR) $(PYTHON) -m engine gpu-info
	PYTHONPATH=$(CURDIR) $(PYTHON) -m pytest -m gpu -p no:cacheprovider tests
	PYTHONPATH=$(CURDIR) $(PYTHON) -m bench insert --rows 200000 --dim 128 --device cuda
	PYTHONPATH=$(CURDIR) $(PYTHON) -m bench search --rows 200000 --dim 128 --device cuda

bench: $(VENV)/.installed
	$(PY) -m bench insert --rows 1000000 --dim 128

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
