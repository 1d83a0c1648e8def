# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Torch is installed first and pinned, so no multi-GB CUDA build is pulled on a CPU box.
# On a GPU workstation use conda-env.yml (or: make TORCH_SPEC='torch' ...).
TORCH_SPEC ?= torch==2.13.0
DATA ?= ./data

.PHONY: demo test ecosystem node-sdk gpu-check wheels bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test,cluster]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m engine demo --data $(DATA)

# Two processes (CI has two cores); each test file stays in one of them (its module
# fixtures, servers and data directories are its own).
test: $(VENV)/.installed ecosystem
	$(PY) -m pytest -q -n 2 --dist loadfile

# Real client stacks for tests/ecosystem/, each in its own environment (langchain-milvus
# needs pymilvus 3, llama-index-vector-stores-milvus pymilvus < 3); the Node SDK where node
# is installed. None of them needs torch.
ECO := .venv-eco
ecosystem: $(ECO)-langchain/.installed $(ECO)-llamaindex/.installed node-sdk

$(ECO)-%/.installed: tests/ecosystem/requirements-%.txt
	$(PYTHON) -m venv $(ECO)-$*
	$(ECO)-$*/bin/python -m pip install -q -r $<
	touch $@

node-sdk:
	@if command -v npm >/dev/null; then \
		cd tests/ecosystem/node && npm install --silent --no-audit --no-fund; \
	else echo "npm not found: the Node SDK test will be skipped"; fi

# On a CUDA machine, straight from the source tree (no network installs: GPU boxes may be
# offline). What the box lacks (lark, xxhash, faiss-cpu; it has pytest, hypothesis, triton) comes from wheels
# in .whl/ (`make wheels` on a connected machine), installed into .gpu-site/. Each step
# runs even if an earlier one failed (make prints "Error ... (ignored)"), so one device
# session gets every figure.
GPU_PATH := $(CURDIR):$(CURDIR)/.gpu-site
gpu-check:
	@if [ -d .whl ]; then $(PYTHON) -m pip install -q --no-index --no-deps --no-compile \
		--upgrade --target .gpu-site .whl/*.whl; fi
	PYTHONPATH=$(GPU_PATH) $(PYTHON) -m engine gpu-info
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m pytest -m gpu -p no:cacheprovider -q tests
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench load --rows 1000000 --dim 128 --device cuda
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench kernels --rows 1000000 --dim 128 --nq 1000 \
		--latency 1000 --crossover
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench kernels --rows 1000000 --dim 128 --nq 10000 \
		--nprobe 32 --repeat 3
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench roofline
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench search --rows 1000000 --dim 128 --nq 1000 \
		--batch 1,1000 --device cuda --no-faiss --cpu-baseline
	-HOTSET_KERNELS=torch PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench search --rows 1000000 \
		--dim 128 --nq 1000 --batch 1000 --device cuda --no-faiss
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench insert --rows 200000 --dim 128 --device cuda \
		--dict-rows 0 --peer-rows 0
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench search --index HNSW --rows 200000 --dim 128 \
		--nq 1000 --batch 1,1000 --ef 16,64,256 --device cuda
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench search --index IVF_SQ8 --rows 1000000 \
		--dim 128 --nq 1000 --batch 1000 --nprobe 8,32,128 --device cuda
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench search --index IVF_PQ --m 16 --rows 1000000 \
		--dim 128 --nq 1000 --batch 1000 --nprobe 8,32,128 --device cuda
	-PYTHONPATH=$(GPU_PATH) $(PYTHON) -m bench search --index IVF_PQ --m 16 --refine-k 4 \
		--rows 1000000 --dim 128 --nq 1000 --batch 1000 --nprobe 32 --device cuda

wheels:
	$(PYTHON) -m pip download --no-deps --only-binary=:all: -d .whl lark xxhash faiss-cpu

bench: $(VENV)/.installed
	$(PY) -m bench insert --rows 1000000 --dim 128

clean:
	rm -rf $(VENV) $(ECO)-* $(DATA) .pytest_cache tests/ecosystem/node/node_modules
