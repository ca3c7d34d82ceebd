"""Train the official CAE (loeweX/ComplexAutoEncoder) or ours on the same batches of a dataset split and score
both on val with the pipeline's evaluation, to tell whether a gap to a published number lies in the model or
in the data. Prints val ARI-FG, phase gap and MSE every --validate-every steps; asserts nothing.
    python probes/cae_official.py --side official --anchor /tmp/anchors/src/cae --anchor-site /tmp/anchors/site-cae \
        --data data/processed/mnist_shape --steps 2000
    python probes/cae_official.py --side ours --data data/processed/mnist_shape --steps 2000
The anchor's code is cloned outside this repository (docs/benchmarks.md); --anchor-site holds its own imports
(einops, hydra-core: `pip install --target DIR einops hydra-core`), appended after ours on sys.path. Both
sides draw the same batches, use Adam with a linear warm-up (the official schedule) and start the output conv
at weight 1, bias 0 (the official start). --seed seeds the initial weights and the batch order; with --order
pipeline the batches are the workflow trainer's, so that our side repeats the pipeline's run of that seed
(docs/log/cae.md: its val scores match the pipeline's log to the last digit).
Fed: docs/cae.md: the official model against ours on the same batches (the seed-spread table).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from structae.data import loader
from structae.models import cae


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("ours", "official"), required=True)
    parser.add_argument("--data", required=True, help="folder with train.h5 and val.h5")
    parser.add_argument("--anchor", help="the official code's checkout (its codebase/ package)")
    parser.add_argument("--anchor-site", help="a folder holding the anchor's own imports")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--validate-every", type=int, default=250)
    parser.add_argument("--validate-images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--order", choices=("script", "pipeline"), default="script",
                        help="batches from this script's generator, or the workflow trainer's (loader.step_rows)")
    args = parser.parse_args()
    if args.side == "official" and not args.anchor:
        parser.error("--side official needs --anchor, the official code's checkout")
    return args


def official_model(args, channels: int, side: int):
    sys.path.insert(0, args.anchor)
    if args.anchor_site:
        sys.path.append(args.anchor_site)
    from codebase.model.ComplexAutoEncoder import ComplexAutoEncoder
    from omegaconf import OmegaConf

    opt = OmegaConf.create({
        "seed": args.seed, "use_cuda": False,
        "input": {"batch_size": args.batch_size, "channel": channels, "image_height": side, "image_width": side},
        "model": {"hidden_dim": 32, "linear_dim": 64},
        "training": {"learning_rate": args.lr, "print_idx": 10**9},
        "evaluation": {"phase_mask_threshold": 0.1}})
    model = ComplexAutoEncoder(opt)

    def forward(batch: dict) -> dict:
        images = batch["image"]
        model.opt.input.batch_size = len(images)  # its decoder reshapes to the configured batch size
        reconstruction, output = model.decode(model.encode(model._prepare_input(images)))
        return {"reconstruction": reconstruction, "phase": output.angle()[:, 0], "magnitude": output.abs()[:, 0]}
    return model, forward


def score(forward, model, val: dict) -> dict:
    """Val ARI-FG, phase gap and MSE, averaged over images: the pipeline's evaluation (`cae.evaluate`), which
    reads only phase, magnitude and reconstruction from `forward`, so the official model's outputs fit it."""
    model.eval()
    with torch.no_grad():
        scores = cae.evaluate(forward, val, cae.Config())
    model.train()
    return {"ari_fg": scores["ari_fg"].mean().item(), "gap": scores["phase_gap"].nanmean().item(),
            "mse": scores["mse"].mean().item()}


def script_order(n: int, batch_size: int, seed: int):
    """Rows of each batch: an epoch of shuffled rows after another, the last partial batch dropped."""
    order = np.random.default_rng(seed)
    while True:
        permutation = order.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            yield torch.from_numpy(permutation[i:i + batch_size])


def pipeline_order(n: int, batch_size: int, seed: int):
    """The workflow trainer's batches (loader.step_rows), step after step."""
    return (loader.step_rows(n, batch_size, seed, step) for step in itertools.count())


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = loader.ImageSet.read(f"{args.data}/train.h5")
    val_set = loader.ImageSet.read(f"{args.data}/val.h5")
    val = val_set.batch(torch.arange(min(args.validate_images, len(val_set))))
    info = train.info()
    if args.side == "official":
        model, forward = official_model(args, info.channels, info.height)
    else:
        model = cae.Model(cae.Config(hidden=32, linear=64), info)
        forward = model
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = (pipeline_order if args.order == "pipeline" else script_order)(len(train), args.batch_size, args.seed)
    print(f"{args.side} on {args.data}: batch {args.batch_size}, lr {args.lr:g}, warm-up {args.warmup}, "
          f"seed {args.seed}, {args.order} batch order")
    print("| step | training minutes | val ARI-FG | val phase gap (rad) | val MSE |\n|---|---|---|---|---|")
    start = time.process_time()
    for step, rows in zip(range(1, args.steps + 1), batches, strict=False):  # batches never end
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / args.warmup)
        batch = train.batch(rows)
        loss = F.mse_loss(forward(batch)["reconstruction"], batch["image"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.validate_every == 0 or step == args.steps:
            minutes = (time.process_time() - start) / 60
            s = score(forward, model, val)
            print(f"| {step} | {minutes:.1f} | {s['ari_fg']:.3f} | {s['gap']:.2f} | {s['mse']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
