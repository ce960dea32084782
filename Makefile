# Entry points, all safe on a fresh clone: `make chat`, `make serve` and `make test`.
# torch is installed first from its CPU wheel, so sentence-transformers never pulls a CUDA build.
VENV   ?= .venv
PYTHON ?= python3
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin

.PHONY: setup chat serve test lint bench clean

$(BIN)/article-qa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/article-qa

chat: setup
	$(BIN)/article-qa chat

serve: setup
	$(BIN)/article-qa serve --open

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
