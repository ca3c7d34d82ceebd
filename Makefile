# The README's two commands: `make all` and `make test`. Both set up first (see scripts/setup.sh).
ifneq ($(VIRTUAL_ENV),)
ENV_DIR := $(VIRTUAL_ENV)
else ifneq ($(CONDA_PREFIX),)
ENV_DIR := $(CONDA_PREFIX)
else
ENV_DIR := .venv
endif
BIN := $(ENV_DIR)/bin
STAMP := $(ENV_DIR)/.structae-installed
# Rules call the `structae` command, so the environment's bin/ must lead PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: all test setup lint rulegraph push pull
all: $(STAMP)
	$(BIN)/snakemake all

test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

setup: $(STAMP)
$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

# The picture of the rule graph in the README is made by the workflow itself.
rulegraph: $(STAMP)
	$(BIN)/python scripts/rulegraph.py

# Share datasets and checkpoints through DVC (remote `shared`, see README): after training, and in a fresh clone.
push: $(STAMP)
	$(BIN)/structae share push

pull: $(STAMP)
	$(BIN)/structae share pull
