"""Training throughput (images/s) of every experiment at the embedded and the paper-scale config, on this
machine, with random data shaped as each experiment's dataset (so paper-scale datasets need not be here).
Prints a table; asserts nothing.
    python bench/train.py                            # every experiment
    python bench/train.py cae_                       # experiments whose name matches a regular expression
    python bench/train.py 'iodine_multi_dsprites$'   # one experiment, at both scales
"""

from __future__ import annotations

import copy
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from structae.config import load_config
from structae.data.datasets import describe
from structae.data.loader import ImageSet
from structae.scales import SCALES
from structae.tables import print_table
from structae.train import Run, fit

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 8.0  # time measured per experiment, after one warm-up step


def throughput(name: str, entry: dict, config: dict) -> tuple[float, float]:
    """(images/s, seconds per step) over about BUDGET_S of training after a warm-up step."""
    entry = copy.deepcopy(entry)
    info = describe(config["datasets"][entry["dataset"]], entry["dataset"])
    batch = entry["train"]["batch_size"]
    images = ImageSet.synthetic(info, 2 * batch, pivot=entry["split"] is not None)
    with tempfile.TemporaryDirectory() as tmp:
        def steps_of(n: int) -> float:
            entry["train"].update(steps=n, log_every=n, checkpoint_every=10**9, warmup_steps=0)
            start = time.perf_counter()
            fit(name, entry, 0, images, Run(Path(tmp, "m.pt"), Path(tmp, "l.csv"), Path(tmp, "r")))
            return time.perf_counter() - start

        steps_of(1)  # warm-up: lazy initialisation in torch and the allocator
        first = steps_of(1)  # one step plus the fixed costs, and a first estimate of a step's cost
        n = max(2, min(200, int(BUDGET_S / max(first, 1e-3))))
        per_step = (steps_of(n + 1) - first) / n  # model building and file writes cancel out
    return batch / per_step, per_step


def main() -> None:
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    rows = []
    for scale, files in SCALES.items():
        config = load_config([ROOT / path for path in files])
        for name, entry in config["experiments"].items():
            if not re.search(pattern, name):
                continue
            rate, per_step = throughput(name, entry, config)
            rows.append((scale, name, entry["model"], str(entry["train"]["batch_size"]), f"{rate:,.0f}",
                         f"{1 / per_step:.2f}"))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_table(("scale", "experiment", "model", "batch", "images/s", "steps/s"), rows)
    print(f"peak RSS of this process: {peak_mb:,.0f} MB; torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
