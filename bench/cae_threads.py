"""Threads against parallel jobs for the CAE's training step on this machine: the throughput of one job with
N threads, and of N one-thread jobs running at the same time (what the embedded workflow does with its
1-cpu CAE jobs), at each batch size. Random images shaped as 2Shapes; prints a table; asserts nothing.
    python bench/cae_threads.py [--jobs 2] [--batches 16 64] [--seconds 20] [--hidden 32]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import torch

from bench_common import pipeline_step
from structae.data.info import DataInfo
from structae.data.loader import ImageSet
from structae.models import cae
from structae.tables import print_table


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cores to share: threads of one job, or jobs")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per case, after warm-up")
    parser.add_argument("--hidden", type=int, default=32)
    return parser.parse_args()


def images_per_second(batch_size: int, threads: int, seconds: float, hidden: int) -> float:
    """Training images per second of one process with `threads` threads, after 3 warm-up steps."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    info = DataInfo(channels=1, height=32, width=32, n_images=batch_size, max_objects=2, factors=())
    config = cae.Config(hidden=hidden)
    model = cae.Model(config, info)
    batch = ImageSet.synthetic(info, batch_size).batch(torch.arange(batch_size))
    step = pipeline_step(cae, config, model, batch, lr=1e-3)
    for _ in range(3):
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * batch_size / (time.perf_counter() - start)


def _one_thread(args: tuple) -> float:
    return images_per_second(*args)


def main() -> None:
    args = arguments()
    rows = []
    for batch in args.batches:
        threaded = images_per_second(batch, args.jobs, args.seconds, args.hidden)
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            parallel = pool.map(_one_thread, [(batch, 1, args.seconds, args.hidden)] * args.jobs)
        rows.append((str(batch), f"{threaded:.0f}", f"{sum(parallel):.0f}", f"{parallel[0]:.0f}",
                     f"{sum(parallel) / threaded:.2f}×"))
    print_table(("batch", f"1 job × {args.jobs} threads (img/s)", f"{args.jobs} jobs × 1 thread (img/s, total)",
                 "per job", "jobs / threads"), rows)


if __name__ == "__main__":
    main()
