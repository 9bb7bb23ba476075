# The README's two commands: `make chat` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat test test-quick install bytecode index clean

## chat: set up .venv, build the seed index if there is none, open the chat
chat: install
	@$(BIN)/python -m compileall -q index retrieval bot  # fresh byte code after a pull (a no-op when current)
	@$(BIN)/quotebot index stats >/dev/null 2>&1 || $(BIN)/quotebot index build
	@$(BIN)/quotebot chat

## test: set up .venv and run the whole test suite
test: install
	$(BIN)/python -m pytest

## test-quick: the tests not marked slow or e2e (under a minute; `make test` before a commit)
test-quick: install
	$(BIN)/python -m pytest -m "not slow and not e2e"

## install: create .venv and install quotebot with its test tools (redone when pyproject.toml changes)
install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(MAKE) --no-print-directory bytecode
	touch $@

## bytecode: compile quotebot's modules once. pip does this for a normal install but not for
## this editable one, and with PYTHONDONTWRITEBYTECODE set (as on some machines) every
## `quotebot` command would otherwise compile them again (~0.1 s of each cold `ask`).
bytecode:
	$(BIN)/python -m compileall -q index retrieval bot

## index: rebuild the index of the configured corpus
index: install
	$(BIN)/quotebot index build

clean:
	rm -rf $(VENV) .quotebot .pytest_cache .hypothesis *.egg-info
