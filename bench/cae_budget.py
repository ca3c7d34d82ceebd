"""How far the CAE gets on 2Shapes in a fixed wall-clock budget on this machine (the issue's question:
ARI without background >= 0.9 within 15 minutes on 2 cores?). Trains the paper's architecture (hidden 32,
batch 64, Adam 1e-3, 500-step warm-up) on data/processed/two_shapes, evaluates 500 test images every
250 steps, prints a table; asserts nothing.
    python bench/cae_budget.py [MINUTES] [HIDDEN]      (defaults: 15, 32)
Needs the embedded 2Shapes: `snakemake data/processed/two_shapes/train.h5 data/processed/two_shapes/test.h5`.
"""

from __future__ import annotations

import sys
import time

import torch

from bench_common import print_table
from structae.data.loader import ImageSet, step_rows
from structae.models import cae
from structae.train import lr_factor


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
    hidden = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    torch.manual_seed(0)
    train = ImageSet.read("data/processed/two_shapes/train.h5")
    test = ImageSet.read("data/processed/two_shapes/test.h5")
    config = cae.Config(hidden=hidden)
    model = cae.Model(config, train.info())
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    schedule = {"warmup_steps": 500, "steps": 10**9, "schedule": "constant"}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, schedule))
    rows, trained, step = [], 0.0, 0
    while trained < minutes * 60:
        start = time.perf_counter()
        batch = train.batch(step_rows(len(train), 64, 0, step))
        loss = cae.loss(model(batch), batch, config)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        trained += time.perf_counter() - start  # training time only; evaluation is not counted
        step += 1
        if step % 250 == 0:
            model.eval()
            with torch.no_grad():
                scores = cae.evaluate(model, test.batch(torch.arange(500)), config)
            model.train()
            keys = ("ari", "ari_fg", "phase_gap", "phase_spread")
            rows.append((str(step), f"{trained / 60:.1f}", f"{loss.item():.4f}",
                         *(f"{scores[k].nanmean().item():.3f}" for k in keys)))
            print(" ".join(rows[-1]), flush=True)
    print_table(("step", "train min", "mse", "ARI", "ARI-FG", "phase gap", "phase spread"), rows)
    print(f"hidden {hidden}, {torch.get_num_threads()} threads, {step * 64 / trained:.0f} training images/s")


if __name__ == "__main__":
    main()
