"""Where every stage reads and writes: the one place the workflow's path patterns are spelled out.

rules/common.smk builds its targets from these functions and the CLI uses them as defaults, so
`structae train --experiment NAME` run by hand writes exactly where `snakemake` would.
"""

from __future__ import annotations

from dataclasses import dataclass


def processed(dataset: str, split: str) -> str:
    return f"data/processed/{dataset}/{split}.h5"


def split_index(dataset: str, split: str) -> str:
    return f"data/splits/{dataset}/{split}.npz"


def checkpoint(experiment: str, seed: int | str) -> str:
    """The trained model: the workflow's output, versioned by DVC."""
    return f"results/checkpoints/{experiment}/seed{seed}/model.pt"


def train_log(experiment: str, seed: int | str) -> str:
    """The CSV training curve, kept beside its checkpoint so that figures need no retraining."""
    return f"results/checkpoints/{experiment}/seed{seed}/train_log.csv"


RESUME_ROOT = "results/resume"


def resume_dir(experiment: str, seed: int | str) -> str:
    """Training state of an unfinished run. Not a workflow output (Snakemake would delete it before a
    rerun) and not versioned: it exists only between a preemption and the resumed job's end."""
    return f"{RESUME_ROOT}/{experiment}/seed{seed}"


def metrics(experiment: str) -> str:
    return f"results/metrics/{experiment}.json"


def fresh_test(dataset: str, seed: int | str) -> str:
    """The test split of a generated dataset drawn again with generator seed `seed` (evaluate.fresh_test_seed):
    not under data/processed/, so it is never mistaken for one of the dataset's own splits."""
    return f"data/fresh/{dataset}/test_seed{seed}.h5"


def fresh_metrics(experiment: str) -> str:
    """The experiment's scores on its fresh test split."""
    return f"results/metrics/fresh/{experiment}.json"


def table(name: str) -> str:
    return f"results/tables/{name}.csv"


def figure(paper: str, name: str) -> str:
    return f"results/figures/{paper}/{name}.png"


@dataclass(frozen=True)
class ExperimentData:
    """The files an experiment trains and evaluates on.

    Without a recombination split it trains on the dataset's `train` split file and evaluates on its
    `test` one; with a split, both come from the dataset's first split file, restricted to the rows
    the split's index file lists. `test_split` selects the evaluation rows: the split's own test rows,
    or those of the split named by the experiment's `evaluate.split`.
    """

    train: str
    test: str
    split: str | None = None
    test_split: str | None = None
    val: str | None = None  # scored during training (train.validate_every)

    def __post_init__(self):
        if self.test_split is None and self.split is not None:
            object.__setattr__(self, "test_split", self.split)


def experiment_data(config: dict, name: str) -> ExperimentData:
    entry = config["experiments"][name]
    dataset = entry["dataset"]
    if entry.get("split"):
        source = processed(dataset, next(iter(config["datasets"][dataset]["sizes"])))
        scored = entry.get("evaluate", {}).get("split") or entry["split"]
        return ExperimentData(source, source, split_index(dataset, entry["split"]), split_index(dataset, scored))
    validated = entry.get("train", {}).get("validate_every")
    return ExperimentData(processed(dataset, "train"), processed(dataset, "test"),
                          val=processed(dataset, "val") if validated else None)
