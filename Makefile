# deepmmsearch — the two commands are `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export TRL_EXPERIMENTAL_SILENCE := 1

.PHONY: install test test-fast test-verl demo bench bench-gpu lint clean browser-deps

install: $(STAMP)

# torch first (the CPU wheel on disk), then the package: a later resolver step never replaces it.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,dev]'
	touch $(STAMP)

# The main suite, then the veRL adapters in their own environment (see test-verl below).
test: install browser-deps
	$(BIN)/python -m pytest -q -x --timeout=900
	$(MAKE) test-verl

# The browser test (tests/serve) drives Debian's chromium. Installed here when missing and apt-get
# is available; if that fails the test is skipped and the run prints why.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "browser-deps: installing chromium (apt-get)"; \
	    (DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	    echo "browser-deps: could not install chromium; the browser test will be skipped"; \
	  else echo "browser-deps: no apt-get; the browser test will be skipped"; fi; \
	fi

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# veRL (the many-node GRPO run) pins transformers < 5.11 while our TRL stack pins 5.24, so its
# adapters are tested in their own environment (DESIGN.md §4): torch first (the CPU wheel), then
# veRL 0.9.1 without extras (they pull CUDA wheels), then this package without dependencies plus
# the core's own. Any failing step fails the target.
VERL_VENV  := .venv-verl
VERL_BIN   := $(VERL_VENV)/bin
VERL_STAMP := $(VERL_VENV)/.installed

$(VERL_STAMP): pyproject.toml
	test -d $(VERL_VENV) || $(PY) -m venv $(VERL_VENV)
	$(VERL_BIN)/pip install -q --upgrade pip
	$(VERL_BIN)/pip install -q torch==2.13.0
	$(VERL_BIN)/pip install -q verl==0.9.1 cachetools fastapi uvicorn pytest pytest-asyncio pytest-timeout
	$(VERL_BIN)/pip install -q --no-deps -e .
	$(VERL_BIN)/pip install -q pyyaml numpy pillow httpx tqdm
	$(VERL_BIN)/python -c "import torch, verl; assert verl.__version__ == '0.9.1', verl.__version__; print('veRL env: verl', verl.__version__, 'torch', torch.__version__)"
	touch $(VERL_STAMP)

test-verl: $(VERL_STAMP)
	$(VERL_BIN)/python -m pytest -q -p no:cacheprovider --timeout=600 tests/verl

demo: install
	$(BIN)/deepmmsearch quickstart --out runs/quickstart

bench: install
	$(BIN)/python bench/run_all.py

# The real-size recipe on one GPU (issue 20): Qwen2.5-VL-7B built from configs/models, SFT, hf
# generation and GRPO steps measured under an 8-minute limit (bench/run_gpu_recipe.sh; carry the
# wheels of bench/gpu_wheels.sh). `make bench-gpu ARGS=--tiny` runs the same code on a CPU.
bench-gpu:
	PY=$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PY)) bash bench/run_gpu_recipe.sh $(ARGS)

# ruff with the rules of pyproject.toml ([tool.ruff.lint]: defaults + E, F, I, B, UP); .ci/run runs it.
lint: install
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) $(VERL_VENV) runs/quickstart
