"""Side-by-side timing of one of our steps against a public implementation (an "anchor") at identical settings.

Each side runs in its own process: ours in this interpreter's environment, the anchor in its own throwaway
virtualenv (bench/anchor_venv.sh), importing the anchor's code from the path given; none of it is copied here.
Both processes build their model, feed it random tensors of the same shape (seed 0) and warm up; then they
take turns, A B A B, each timing a few steps per turn with the same number of threads, so that a change in
the machine's load hits both alike. Printed: median and range of the seconds per step, images per second,
the peak RSS of each process, and the ratio anchor / ours (> 1: ours is faster).

Ours computes with the pipeline's default kernels (`kernels: portable`, structae.kernels: oneDNN and ATen capped
at AVX2, MKL's compatible branch), the anchor with whatever its libraries pick; `--kernels both` adds ours with
native kernels as a third side, so the table shows what the pin costs in the same run.

How close each step is to the machine: every worker counts one step's floating-point operations with
torch.utils.flop_counter.FlopCounterMode (matrix products and convolutions, forward and backward; element-wise
work is not counted, so a step dominated by it shows a low rate) and times a 2048 × 2048 fp32 matmul with its own
threads and kernels. The table gives each step's GFLOP, its GFLOP/s, and that as a share of the fastest matmul
measured in the run (the machine's fp32 peak as torch reaches it).

A model's script (bench/cae.py, ...) defines its cases, each a pair of builders that return a step callable,
and calls `main`. This module and the builders' top level import only the standard library and torch: the
anchor's environment has no structae.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TURN_SECONDS = 4.0  # timed per side and turn (at least one step)
PROFILE_ROWS = 12
MATMUL_SIZE = 2048  # the reference product: large enough that MKL runs at its peak on a few threads
KERNEL_MODES = ("portable", "native", "both")


@dataclass
class Case:
    """What one row pair measures: `ours(batch)` and `anchor(path, batch)` each return a step callable that
    processes `batch` images."""

    ours: Callable[[int], Callable[[], None]]
    anchor: Callable[[Path, int], Callable[[], None]]
    about: str
    batch: int


def _worker(cases: dict[str, Case], side: str, case: str, anchor: str | None, threads: int, batch: int) -> None:
    """Build one side's step, warm up, then answer 'run N' with the seconds of each of N steps."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")  # an anchor's per-image warnings would flood the table
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if side == "ours":
        step = cases[case].ours(batch)
    else:
        sys.path.insert(0, anchor)
        step = cases[case].anchor(Path(anchor), batch)
    warm = []
    for _ in range(2):  # lazy initialisation, allocator growth
        start = time.perf_counter()
        step()
        warm.append(time.perf_counter() - start)
    print(json.dumps({"ready": True, "seconds": warm[-1], "flops": step_flops(step),
                      "matmul_gflops": matmul_gflops()}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            times = []
            for _ in range(int(command[1])):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            print(json.dumps({"times": times}), flush=True)
        elif command[0] == "profile":  # where a step's time goes: the top operations by own CPU time
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as profiled:
                for _ in range(int(command[1])):
                    step()
            table = profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=PROFILE_ROWS)
            print(json.dumps({"table": table}), flush=True)
        else:
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"peak_rss_mb": rss_mb}), flush=True)
            return


def step_flops(step: Callable[[], None]) -> int | None:
    """Floating-point operations of one step as torch counts them (matmuls and convolutions); None where the
    counter cannot follow the step (a compiled graph)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter:
            step()
    except Exception:  # noqa: BLE001 - the table says "–" rather than lose the timing
        return None
    return counter.get_total_flops()


def matmul_gflops(size: int = MATMUL_SIZE, seconds: float = 1.0) -> float:
    """GFLOP/s of a size × size fp32 matrix product with this process's threads and kernels."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up: MKL's buffers, the threads' start
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - start) / 1e9


def side_env(side: str, threads: int) -> dict[str, str]:
    """The environment of one side's worker: its threads, and for ours the kernel pins its mode needs (set
    before the worker starts, since the libraries read them once); the anchor and ours-native keep the
    caller's environment."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if side == "ours":
        from structae import kernels

        env.update(kernels.PORTABLE_ENV if kernels.DEFAULT == "portable" else {})
        env[kernels.ENV_VAR] = kernels.DEFAULT
    return env


class _Side:
    def __init__(self, name: str, python: str, script: str, case: str, anchor: str | None, threads: int,
                 batch: int):
        self.name = name
        worker = "anchor" if name == "anchor" else "ours"
        command = [python, script, "--worker", worker, "--case", case, "--threads", str(threads), "--batch",
                   str(batch)]
        if anchor:
            command += ["--anchor", anchor]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=side_env(name, threads))
        self.times: list[float] = []

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"versus: the {self.name} worker stopped (exit {self.process.wait()}); its error is above")
        return json.loads(line)

    def send(self, text: str) -> None:
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()


def compare(script: str, case_name: str, anchor: str, anchor_python: str, threads: int, rounds: int,
            batch: int, profile: bool, kernel_mode: str = "portable") -> list[tuple[str, ...]]:
    names = [("anchor", anchor_python, anchor)]
    names += [("ours", sys.executable, None)] if kernel_mode in ("portable", "both") else []
    names += [("ours native", sys.executable, None)] if kernel_mode in ("native", "both") else []
    sides, ready = [], []
    for name, python, path in names:
        sides.append(_Side(name, python, script, case_name, path, threads, batch))
        ready.append(sides[-1].read())  # one at a time: warm-ups neither compete nor add up their memory
    per_turn = [max(1, round(TURN_SECONDS / max(r["seconds"], 1e-4))) for r in ready]
    for _ in range(rounds):
        for side, n in zip(sides, per_turn, strict=True):  # A B A B
            side.send(f"run {n}")
            side.times += side.read()["times"]
    if profile:
        for side, n in zip(sides, per_turn, strict=True):
            side.send(f"profile {n}")
            print(f"{case_name}, {side.name}: top operations over {n} step(s)\n{side.read()['table']}", flush=True)
    peak_gflops = max(r["matmul_gflops"] for r in ready)
    medians, rows = {}, []
    for side, measured in zip(sides, ready, strict=True):
        side.send("quit")
        peak = side.read()["peak_rss_mb"]
        side.process.wait()
        median = medians[side.name] = statistics.median(side.times)
        flops = ("–", "–", "–")
        if measured["flops"] is not None:
            gflops = measured["flops"] / median / 1e9
            flops = (f"{measured['flops'] / 1e9:.4g}", f"{gflops:.1f}", f"{100 * gflops / peak_gflops:.0f} %")
        rows.append((case_name, side.name, str(len(side.times)), f"{median:.4f}",
                     f"{min(side.times):.4f}–{max(side.times):.4f}", f"{batch / median:,.1f}", *flops,
                     f"{measured['matmul_gflops']:.0f}", f"{peak:,.0f}"))
    ratios = [(f"anchor / {name}", "anchor", name) for name in medians if name != "anchor"]
    ratios += [("portable / native", "ours", "ours native")] if {"ours", "ours native"} <= medians.keys() else []
    for label, slower, faster in ratios:  # in the images/s column, the other cells blank
        rows.append((case_name, label, "", "", "", f"{medians[slower] / medians[faster]:.2f}×", "", "", "", "", ""))
    return rows


def main(script: str, cases: dict[str, Case], description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--anchor", help="the anchor's checked-out repository (see docs/benchmarks.md)")
    parser.add_argument("--anchor-python", help="its virtualenv's python (bench/anchor_venv.sh); "
                                                "default: this interpreter")
    parser.add_argument("--case", action="append", choices=sorted(cases),
                        help="what to time (repeatable; default: every case)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="A B turns per side")
    parser.add_argument("--batch", type=int, help="images per step (default: each case's own)")
    parser.add_argument("--profile", action="store_true", help="also print each side's top operations")
    parser.add_argument("--kernels", choices=KERNEL_MODES, default="portable",
                        help="ours with the pipeline's default kernels (portable), native ones, or both sides")
    parser.add_argument("--worker", choices=("ours", "anchor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(cases, args.worker, args.case[0], args.anchor, args.threads, args.batch)
        return
    if not args.anchor or not Path(args.anchor).is_dir():
        raise SystemExit(f"{Path(script).name}: give --anchor, the anchor's checked-out repository "
                         f"(not a directory: {args.anchor}); see docs/benchmarks.md")
    from structae.tables import print_table  # here, not at the top: the anchor's worker has no structae

    rows = []
    for name in args.case or sorted(cases):
        print(f"{name}: {cases[name].about}", flush=True)
        rows += compare(script, name, str(Path(args.anchor).resolve()), args.anchor_python or sys.executable,
                        args.threads, args.rounds, args.batch or cases[name].batch, args.profile, args.kernels)
    print()
    print_table(("case", "side", "steps", "median s/step", "range", "images/s", "GFLOP/step", "GFLOP/s",
                 "of matmul", "matmul GFLOP/s", "peak RSS MB"), rows)
    print(f"threads per side: {args.threads}; turns per side: {args.rounds}; ratio = anchor median / ours (> 1: "
          f"ours faster); ours: {args.kernels} kernels; 'of matmul': the step's GFLOP/s over the fastest "
          f"{MATMUL_SIZE}² fp32 matmul of the run")
