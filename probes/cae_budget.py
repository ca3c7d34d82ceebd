"""How far the CAE gets on a dataset in a fixed training-time budget on this machine. Trains the
paper's architecture (hidden 32) with Adam and a linear warm-up on data/processed/DATASET/train.h5 and
scores the validation split (never the test split: settings are chosen here) every --eval-every steps;
prints a table; asserts nothing. The defaults are the official settings (batch 64, lr 1e-3, 500 warm-up
steps); the probes in docs/log/cae.md are what the embedded config was chosen from.
    python probes/cae_budget.py [--dataset two_shapes] [--minutes 15] [--batch 64] [--lr 1e-3] [--warmup 500]
                               [--threads N] [--compile]
Needs the embedded set: `snakemake data/processed/two_shapes/train.h5 data/processed/two_shapes/val.h5`.
Fed: docs/log/cae.md: the budget probes the embedded CAE settings were chosen from.
"""

from __future__ import annotations

import argparse
import time

import torch

from structae.data.loader import ImageSet, step_rows
from structae.models import cae
from structae.tables import print_table
from structae.train import lr_factor


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="two_shapes",
                        help="two_shapes, three_shapes, mnist_shape or three_shapes_rgb")
    parser.add_argument("--data", help="the directory of its train.h5 and val.h5 (default: data/processed/DATASET)")
    parser.add_argument("--minutes", type=float, default=15.0, help="training time, evaluation not counted")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--pooling", default="max", help="RGB channel pooling (three_shapes_rgb): max, weighted, "
                        "softmax or hardmax")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="as train.compile (compiling counts as training)")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = args.data or f"data/processed/{args.dataset}"
    train, val = ImageSet.read(f"{data}/train.h5"), ImageSet.read(f"{data}/val.h5")
    config = cae.Config(hidden=args.hidden, pooling=args.pooling)
    model = cae.Model(config, train.info())
    forward = torch.compile(model) if args.compile else model
    optimizer = torch.optim.Adam(model.parameters(), args.lr)
    schedule = {"warmup_steps": args.warmup, "steps": 10**9, "schedule": "constant"}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, schedule))
    rows, trained, step = [], 0.0, 0
    while trained < args.minutes * 60:
        start = time.perf_counter()
        batch = train.batch(step_rows(len(train), args.batch, args.seed, step))
        loss = cae.loss(forward(batch), batch, config)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        trained += time.perf_counter() - start  # training time only; evaluation is not counted
        step += 1
        if step % args.eval_every == 0:
            model.eval()
            with torch.no_grad():
                scores = cae.evaluate(model, val.batch(torch.arange(min(500, len(val)))), config)
            model.train()
            keys = ("ari", "ari_fg", "phase_gap", "phase_spread")
            rows.append((str(step), f"{trained / 60:.1f}", f"{loss.item():.4f}",
                         *(f"{scores[k].nanmean().item():.3f}" for k in keys)))
            print(" ".join(rows[-1]), flush=True)
    print_table(("step", "train min", "mse", "ARI", "ARI-FG", "phase gap", "phase spread"), rows)
    print(f"{args.dataset}: hidden {args.hidden}, pooling {args.pooling}, batch {args.batch}, lr {args.lr}, "
          f"warm-up {args.warmup}, "
          f"{args.threads} threads: {step * args.batch / trained:.0f} training images/s")


if __name__ == "__main__":
    main()
