# dsd: `make demo` runs the main job end to end; `make test` runs the test suite.
# Both create the virtual environment .venv and install the project into it first.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DSD    := $(VENV)/bin/dsd
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DEMO   ?= runs/demo

.PHONY: install test lint demo study bench fashion-mnist gpu-data clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

# Two test processes: most slow tests wait on a one-thread training subprocess, so a
# second process keeps the other core busy.
test: $(STAMP)
	$(VENV)/bin/ruff check dsd tests bench
	$(PY) -m pytest -q -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check dsd tests bench

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
