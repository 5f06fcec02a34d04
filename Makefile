# dsd: `make demo` runs the main job end to end; `make test` runs the test suite.
# Both create the virtual environment .venv and install the project into it first.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DSD    := $(VENV)/bin/dsd
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DEMO   ?= runs/demo

.PHONY: install test lint demo study bench fashion-mnist gpu-data clean

# TORCH_INDEX: a PyTorch wheel index to take torch and torchvision from first, e.g.
# `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu` for the CPU-only build
# (about 1 GB in .venv instead of about 6 GB with the CUDA libraries PyPI's build brings).
TORCH_INDEX ?=

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install -q --index-url $(TORCH_INDEX) 'torch<=2.14.1' 'torchvision<=0.29.1')
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

# Two test processes: most slow tests wait on a one-thread training subprocess, so a
# second process keeps the other core busy; worksteal lets an idle process take queued tests
# from the busy one, so the slow tests do not pile up at the end. The 15 slowest tests are
# listed at the end, so that a slower CI run shows where the time went.
test: lint
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check dsd tests bench scripts

# The embedded default data set: the real Fashion-MNIST from Debian (MIT licence).
fashion-mnist:
	@test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; }

demo: $(STAMP) fashion-mnist
	bash scripts/demo.sh $(DEMO)

# The published study (README, "The published study"): resumable, rerun to go on.
study: $(STAMP) fashion-mnist
	$(DSD) study run studies/fashion-mnist.toml

# Fashion-MNIST beside the code, for a GPU machine that has no Debian package
# (scripts/gpu_check.sh reads it there; .data/ is ignored by git).
gpu-data: fashion-mnist
	mkdir -p .data/fashion-mnist
	cp /usr/share/datasets/fashion-mnist/*.gz .data/fashion-mnist/

bench: $(STAMP)
	$(PY) bench/sample.py
	$(PY) bench/train.py

clean:
	rm -rf $(VENV) build *.egg-info
