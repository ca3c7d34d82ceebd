"""Side-by-side timing of one of our steps against a public implementation (an "anchor") at identical settings.

Each side runs in its own process: ours in this interpreter's environment, the anchor in its own throwaway
virtualenv (bench/anchor_venv.sh), importing the anchor's code from the path given; none of it is copied here.
Both processes build their model, feed it random tensors of the same shape (seed 0) and warm up; then they
take turns, A B A B, each timing a few steps per turn with the same number of threads, so that a change in
the machine's load hits both alike. Printed: median and range of the seconds per step, images per second,
the peak RSS of each process, and the ratio anchor / ours (> 1: ours is faster).

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

from bench_common import print_table

TURN_SECONDS = 4.0  # timed per side and turn (at least one step)
PROFILE_ROWS = 12


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
    print(json.dumps({"ready": True, "seconds": warm[-1]}), flush=True)
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


class _Side:
    def __init__(self, name: str, python: str, script: str, case: str, anchor: str | None, threads: int,
                 batch: int):
        self.name = name
        command = [python, script, "--worker", name, "--case", case, "--threads", str(threads), "--batch", str(batch)]
        if anchor:
            command += ["--anchor", anchor]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
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
            batch: int, profile: bool) -> list[tuple[str, ...]]:
    sides, ready = [], []
    for name, python, path in (("anchor", anchor_python, anchor), ("ours", sys.executable, None)):
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
    medians, rows = {}, []
    for side in sides:
        side.send("quit")
        peak = side.read()["peak_rss_mb"]
        side.process.wait()
        medians[side.name] = statistics.median(side.times)
        rows.append((case_name, side.name, str(len(side.times)), f"{medians[side.name]:.4f}",
                     f"{min(side.times):.4f}–{max(side.times):.4f}", f"{batch / medians[side.name]:,.1f}",
                     f"{peak:,.0f}"))
    rows.append((case_name, "ratio", "", "", "", f"{medians['anchor'] / medians['ours']:.2f}×", ""))
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
    parser.add_argument("--worker", choices=("ours", "anchor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(cases, args.worker, args.case[0], args.anchor, args.threads, args.batch)
        return
    if not args.anchor or not Path(args.anchor).is_dir():
        raise SystemExit(f"{Path(script).name}: give --anchor, the anchor's checked-out repository "
                         f"(not a directory: {args.anchor}); see docs/benchmarks.md")
    rows = []
    for name in args.case or sorted(cases):
        print(f"{name}: {cases[name].about}", flush=True)
        rows += compare(script, name, str(Path(args.anchor).resolve()), args.anchor_python or sys.executable,
                        args.threads, args.rounds, args.batch or cases[name].batch, args.profile)
    print()
    print_table(("case", "side", "steps", "median s/step", "range", "images/s", "peak RSS MB"), rows)
    print(f"threads per side: {args.threads}; turns per side: {args.rounds}; ratio = anchor median / ours (> 1: "
          "ours faster)")
