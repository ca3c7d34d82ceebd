"""IODINE against a public PyTorch reimplementation (zhixuan-lin/IODINE), side by side (bench/versus.py):
    python bench/iodine.py --anchor /tmp/anchors/src/iodine --anchor-python /tmp/anchors/venv-iodine/bin/python
Both at the release's Multi-dSprites settings (deepmind-research/iodine): 64×64×3, K 6, T 5, latent 16,
3×3 convs of 64 channels (decoder 4 layers, refinement 4 stride-2 layers), MLP and LSTM 256, every
refinement input, Adam 3e-4, batch 32 (the anchor's dsprites config with the release's widths). A step is
T refinements (T + 1 decodes in ours, as the release), the loss, backward and the optimiser step. The
likelihoods differ: ours the release's logistic (scale 0.03), the anchor's a Gaussian of σ 0.1, the only one it
has. `--batch 8` gives a quicker look.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from versus import Case, main

from bench_common import pipeline_step

SIDE, CHANNELS, SLOTS, ITERATIONS, LATENT, WIDTH, HIDDEN = 64, 3, 6, 5, 16, 64, 256


def _ours(batch: int):
    from structae.data.info import DataInfo
    from structae.models import iodine

    config = iodine.Config(slots=SLOTS, iterations=ITERATIONS, latent=LATENT, decoder_width=WIDTH, decoder_layers=4,
                           refine_width=WIDTH, refine_layers=4, refine_hidden=HIDDEN)
    model = iodine.Model(config, DataInfo(CHANNELS, SIDE, SIDE, batch, 5, ()))
    images = {"image": torch.rand(batch, CHANNELS, SIDE, SIDE)}
    return pipeline_step(iodine, config, model, images, lr=3e-4, grad_clip=5.0)  # the paper config's clipping


def _anchor(path: Path, batch: int):
    from lib.modeling.iodine import IODINE

    encodings = ["posterior", "grad_post", "image", "means", "mask", "mask_logits", "mask_posterior", "grad_means",
                 "grad_mask", "likelihood", "leave_one_out_likelihood", "coordinate"]  # its dsprites config's
    arch = SimpleNamespace(
        DIM_LATENT=LATENT, ITERS=ITERATIONS, SLOTS=SLOTS, ENCODING=encodings, IMG_CHANNELS=CHANNELS, IMG_SIZE=SIDE,
        SIGMA=0.1, LAYERNORM=True, STOP_GRADIENT=False,
        REF=SimpleNamespace(CONV_CHAN=WIDTH, MLP_UNITS=HIDDEN, CONV_LAYERS=4, KERNEL_SIZE=3, STRIDE=2),
        DEC=SimpleNamespace(CONV_CHAN=WIDTH, CONV_LAYERS=4, KERNEL_SIZE=3))
    model = IODINE(arch)
    images = torch.rand(batch, CHANNELS, SIDE, SIDE)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)

    def step():  # its training loop's order (lib/engine/train.py), with the clipping it has commented out
        loss = model(images)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return step


CASES = {"train": Case(_ours, _anchor, "training step at the release's Multi-dSprites settings", batch=32)}

if __name__ == "__main__":
    main(__file__, CASES, __doc__)
