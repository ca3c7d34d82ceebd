"""Which objects the CAE draws as it trains: the mean reconstructed intensity on the background and on each
object label's pixels of 200 val images (targets 0 and 1 on the grayscale sets), every --every steps. It is
how the 2Shapes stall was found (docs/cae.md): squares drawn, triangles rendered as background. Prints one
row per check; asserts nothing.
    python probes/cae_objects.py [--dataset two_shapes] [--steps 4500] [--batch 16] [--lr 3e-3] [--warmup 100]
                                [--seed 0] [--output-bias 0]
Fed: docs/log/cae.md: which objects the CAE draws as it trains (the 2Shapes output-bias finding).
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
    parser.add_argument("--dataset", default="two_shapes")
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-bias", type=float, default=0.0, help="the output conv's initial bias")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = ImageSet.read(f"data/processed/{args.dataset}/train.h5")
    val = ImageSet.read(f"data/processed/{args.dataset}/val.h5").batch(torch.arange(200))
    config = cae.Config(output_bias=args.output_bias)
    model = cae.Model(config, train.info())
    optimizer = torch.optim.Adam(model.parameters(), args.lr)
    schedule = {"warmup_steps": args.warmup, "steps": 10**9, "schedule": "constant"}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, schedule))
    labels = [int(label) for label in val["mask"].unique() if label < 255]  # 255: overlaps, scored by nobody
    rows, trained = [], 0.0
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        batch = train.batch(step_rows(len(train), args.batch, args.seed, step - 1))
        loss = cae.loss(model(batch), batch, config)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        trained += time.perf_counter() - start
        if step % args.every == 0:
            model.eval()
            with torch.no_grad():
                intensity = model(val)["reconstruction"].mean(1)  # (B, H, W), channels averaged
            model.train()
            rows.append((str(step), f"{trained / 60:.1f}", f"{loss.item():.4f}",
                         *(f"{intensity[val['mask'] == label].mean().item():.2f}" for label in labels)))
            print(" ".join(rows[-1]), flush=True)
    print_table(("step", "train min", "mse", *(f"label {label}" for label in labels)), rows)


if __name__ == "__main__":
    main()
