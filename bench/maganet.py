"""MAGANet and its VAE baseline against a public reimplementation (Roodster/dsait4125-cv), side by side
(bench/versus.py):
    python bench/maganet.py --anchor /tmp/anchors/src/maganet --anchor-python /tmp/anchors/venv-maganet/bin/python
All at 64×64×1 (dSprites), latent 10, batch 64: forward, the loss, backward and the Adam step.
    maganet        ours as the embedded config trains it (encoder convs 32, 32, 64, 64; flow 3 levels × 2 steps,
                   couplings of 32 channels) against the anchor's MAGANet (encoder convs 4 × 32, the same MLP;
                   flow 3 levels × 3 steps whose couplings are two 3×3 convs at half the level's channels)
    maganet_paper  ours at the paper config (flow 3 levels × 4 steps, couplings of 64 channels)
    vae            ours with the anchor's conv widths (32, 64, 128, 256; transposed convs mirrored), against its VAE
    vae_embedded   ours as the embedded config trains it (convs 32, 32, 64, 64)
Both MAGANets encode the image and the pivot, decode, and encode the decoding again (the latent-consistency term).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from versus import Case, main

from bench_common import pipeline_step

SIDE, LATENT = 64, 10


def _images(batch: int) -> torch.Tensor:
    return (torch.rand(batch, 1, SIDE, SIDE) < 0.2).float()  # binary, as dSprites


def _ours(model_name: str, batch: int, **changes):
    from structae.data.info import DataInfo
    from structae.models import get

    module = get(model_name)
    config = module.Config(latent=LATENT, **changes)
    model = module.Model(config, DataInfo(1, SIDE, SIDE, batch, 1, ()))
    images = _images(batch + 1)
    data = {"image": images[1:], "pivot": images[:1]}
    return pipeline_step(module, config, model, data, lr=1e-3)


def _anchor_maganet(path: Path, batch: int):
    from src.losses.maga_loss import MAGALoss
    from src.networks.maga_net import MAGANet

    args = SimpleNamespace(latent_dim=LATENT, in_channels=1, beta_kl=2, beta_recon=300, batch_size=batch)
    model, criterion = MAGANet(args), MAGALoss(args)
    images = _images(2 * batch)
    x1, x2 = images[:batch], images[batch:]
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def step():  # its learner's training step (src/learners/maga_learner.py)
        z, mu1, logvar1, mu2, logvar2, decoded = model(x1, x2)
        z_recon = model.compute_z_reconstruction(x1, decoded)
        loss = criterion(x2, z, mu1, logvar1, mu2, logvar2, decoded, z_recon)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def _anchor_vae(path: Path, batch: int):
    from src.losses.vae_loss import VAELoss
    from src.networks.vae import VAE

    args = SimpleNamespace(latent_dim=LATENT, beta_kl=1)
    model, criterion = VAE(args), VAELoss(args)
    images = _images(batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def step():
        reconstruction, mu, logvar = model(images)
        loss = criterion(reconstruction, images, mu, logvar)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


CASES = {
    "maganet": Case(lambda batch: _ours("maganet", batch, flow_steps=2, flow_hidden=32), _anchor_maganet,
                    "MAGANet, ours at the embedded config", batch=64),
    "maganet_paper": Case(lambda batch: _ours("maganet", batch), _anchor_maganet,
                          "MAGANet, ours at the paper config", batch=64),
    "vae": Case(lambda batch: _ours("vae", batch, conv=(32, 64, 128, 256)), _anchor_vae,
                "VAE, ours at the anchor's conv widths", batch=64),
    "vae_embedded": Case(lambda batch: _ours("vae", batch), _anchor_vae, "VAE, ours at the embedded config", batch=64),
}

if __name__ == "__main__":
    main(__file__, CASES, __doc__)
