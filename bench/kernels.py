"""What `kernels: portable` costs: each model's training step at the embedded config's settings, portable against
native, on this machine. Prints a table; asserts nothing.

The mode is fixed when a process starts (the libraries read it once), so each measurement is a fresh process
timing every model under one mode; the two modes alternate, the first of each round swapped, and the table shows
the median over rounds (and their range), so that load from other work on the machine falls on both alike.
    python bench/kernels.py            # 5 rounds
    python bench/kernels.py 9          # 9 rounds
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_common import pipeline_step
from structae.tables import print_table

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("cae_mnist_shape", "iodine_multi_dsprites", "maganet_to_element", "vae_to_element",
               "swwae_semi_hard_n100")  # one per model of the embedded config
BUDGET_S = 2.0  # wall time per model and process, after two warm-up steps


def step_seconds(name: str) -> float:
    """CPU seconds per training step of experiment `name` (random images shaped as its dataset), with the one
    thread its workflow job gets: CPU time, not wall time, since other work on the machine stretches the
    latter by whatever share of the cores it takes at the moment."""
    import torch

    from structae import models
    from structae.config import load_config
    from structae.data.datasets import describe
    from structae.data.loader import ImageSet
    from structae.options import from_mapping

    config = load_config([ROOT / "config.yaml"])
    entry = config["experiments"][name]
    torch.set_num_threads(entry["resources"]["cpus"])  # 1 for every embedded experiment
    torch.manual_seed(0)
    module = models.get(entry["model"])
    model_config = from_mapping(module.Config, entry["model_config"], name)
    batch_size = entry["train"]["batch_size"]
    images = ImageSet.synthetic(describe(config["datasets"][entry["dataset"]], entry["dataset"]), batch_size,
                                pivot=entry["split"] is not None)
    model = module.Model(model_config, images.info())
    step = pipeline_step(module, model_config, model, images.batch(torch.arange(batch_size), torch.device("cpu")),
                         entry["train"]["lr"], entry["train"]["grad_clip"])
    step(), step()
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < BUDGET_S:
        step()
        count += 1
    return (time.process_time() - cpu_start) / count


def child(mode: str) -> None:
    from structae import kernels

    kernels.pin(mode)
    facts = kernels.describe()
    print(json.dumps({"capability": facts["cpu_capability"], "seconds": {n: step_seconds(n) for n in EXPERIMENTS}}))


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    times: dict[str, dict[str, list[float]]] = {"portable": {}, "native": {}}
    capability = {}
    for index in range(rounds):
        for mode in ("portable", "native") if index % 2 == 0 else ("native", "portable"):
            env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEDNN_", "DNNL_", "ATEN_CPU", "MKL_CBWR",
                                                                             "OPENBLAS_CORETYPE", "STRUCTAE_"))}
            run = subprocess.run([sys.executable, __file__, "--child", mode], env=env, capture_output=True,
                                 text=True, check=True)
            result = json.loads(run.stdout.splitlines()[-1])
            capability[mode] = result["capability"]
            for name, seconds in result["seconds"].items():
                times[mode].setdefault(name, []).append(seconds)
        print(f"round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    rows = []
    for name in EXPERIMENTS:
        portable, native = times["portable"][name], times["native"][name]
        rows.append((name, _spread(portable), _spread(native),
                     f"{statistics.median(portable) / statistics.median(native):.2f}",
                     f"{min(portable) / min(native):.2f}"))
    print_table(("experiment", "portable CPU ms/step", "native CPU ms/step", "portable/native (medians)",
                 "(fastest rounds)"), rows)
    print(f"{rounds} rounds, alternating; ATen capability portable {capability['portable']}, native "
          f"{capability['native']}; CPU: {_cpu()}")


def _spread(seconds: list[float]) -> str:
    """Median (fastest–slowest round) in milliseconds."""
    return f"{1000 * statistics.median(seconds):.0f} ({1000 * min(seconds):.0f}–{1000 * max(seconds):.0f})"


def _cpu() -> str:
    from structae.kernels import describe

    return describe()["cpu"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
