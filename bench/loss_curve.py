"""Seeded short loss curves of the models a speed-up touches, to compare before and after a change:
    python bench/loss_curve.py > after.txt; git stash; python bench/loss_curve.py > before.txt; git stash pop
    diff before.txt after.txt
Small models, random images, 6 AdamW steps, one thread (so the float summation order is fixed); prints the
loss after each step with 7 significant digits. A speed-up that keeps the results changes nothing here, or
only the last digits.
"""

from __future__ import annotations

import torch

from structae.data.info import DataInfo
from structae.models import get

STEPS = 6
CASES = {  # model -> (small config, image channels, side, needs a pivot)
    "cae": ({"hidden": 8, "linear": 16}, 1, 32, False),
    "iodine": ({"slots": 3, "iterations": 3, "latent": 8, "decoder_width": 16, "decoder_layers": 3}, 3, 32, False),
    "maganet": ({"flow_steps": 2, "flow_hidden": 16}, 1, 64, True),
    "vae": ({}, 1, 64, False),
}


def curve(name: str) -> list[float]:
    changes, channels, side, pivot = CASES[name]
    module = get(name)
    config = module.Config(**changes)
    torch.manual_seed(0)
    model = module.Model(config, DataInfo(channels, side, side, 4, 2, ()))
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    losses = []
    for _ in range(STEPS):
        images = torch.rand(5, channels, side, side, generator=generator)
        batch = {"image": images[1:], **({"pivot": images[:1]} if pivot else {})}
        loss = module.loss(model(batch), batch, config)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def main() -> None:
    torch.set_num_threads(1)
    for name in CASES:
        print(name, " ".join(f"{value:.7g}" for value in curve(name)))


if __name__ == "__main__":
    main()
