# The README's two commands: `make all` and `make test`. Both set up first (see scripts/setup.sh).
ifneq ($(VIRTUAL_ENV),)
ENV_DIR := $(VIRTUAL_ENV)
else ifneq ($(CONDA_PREFIX),)
ENV_DIR := $(CONDA_PREFIX)
else
ENV_DIR := .venv
endif
BIN := $(ENV_DIR)/bin
STAMP := $(ENV_DIR)/.structae-workflow-installed
# The tests and linters: only `make test`, `check` and `lint` install them (a user who runs the pipeline never needs them).
DEV_STAMP := $(ENV_DIR)/.structae-dev-installed
# Rules call the `structae` command, so the environment's bin/ must lead PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: all test check setup lint rulegraph push pull gpu-check
all: $(STAMP)
	$(BIN)/snakemake all

# Test files run in parallel, one worker per core, each file whole on one worker (--dist loadfile): a
# module's fixtures (the papers' workflow, the private SLURM cluster) are made once, and the SLURM tests'
# waits on the scheduler overlap with the other files' work.
PYTEST := $(BIN)/pytest -n auto --dist loadfile

# Everything, as CI runs it: the linters, then every test (whole-workflow runs, DVC, SLURM included).
test: $(DEV_STAMP) lint
	$(PYTEST)

# The fast tier for an edit-test loop (under 3 minutes on 2 cores): ruff, then the tests not marked slow.
check: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(PYTEST) -m "not slow"

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

setup: $(STAMP)
$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh workflow

$(DEV_STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh dev

# The picture of the rule graph in the README is made by the workflow itself.
rulegraph: $(STAMP)
	$(BIN)/python scripts/rulegraph.py

# Share datasets and checkpoints through DVC (remote `shared`, see README): after training, and in a fresh clone.
push: $(STAMP)
	$(BIN)/structae share push

pull: $(STAMP)
	$(BIN)/structae share pull

# Paper scale on one GPU in at most 8 minutes: every experiment's step, the resources it asks, resume, DDP,
# evaluation and a short IODINE run (docs/cluster.md). On a cluster: `srun --gpus 1 -t 15 make gpu-check`.
gpu-check: $(DEV_STAMP)
	$(BIN)/python bench/gpu_check.py --out results/gpu_check.md
