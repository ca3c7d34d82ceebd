"""Building blocks shared by several models (not a model: see models.PARTS)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def require_divisible_sides(info, scale: int, model: str) -> None:
    """Stop with one line when a model that halves the image `log2(scale)` times gets sides it cannot halve."""
    if info.height % scale or info.width % scale:
        raise ValueError(f"{model} needs image sides divisible by {scale}; got {info.height}×{info.width}")


class GaussianEncoder(nn.Module):
    """Stride-2 4×4 convs with ReLU, then an MLP giving the mean and log-variance of q(z | x).

    MAGANet and its VAE baseline share this encoder (Hwang et al. 2023 use one for both)."""

    def __init__(self, channels: int, height: int, width: int, latent: int, conv: tuple[int, ...], hidden: int):
        super().__init__()
        layers, c_in = [], channels
        for c_out in conv:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        flat = c_in * (height >> len(conv)) * (width >> len(conv))
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * latent))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> mean, log-variance, each (B, latent)."""
        return self.mlp(self.convs(image)).chunk(2, -1)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) summed over the latent. (B, L) -> (B,)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)


def reparameterise(mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample of N(mean, exp(log_var)); from `generator` when given (seeded evaluation), else torch's."""
    if generator is None:
        return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * log_var) * noise


@dataclass
class EvalSettings:
    """MAGANet's and the VAE's evaluation settings (an experiment's `evaluate.model`): changing them re-evaluates,
    never retrains. The defaults are those of the numbers compared against: the public reimplementation samples
    z at evaluation (Roodster/dsait4125-cv src/networks/maga_net.py:44-45, vae.py:64 at 966cf13) and scores
    torch's BCE on its sigmoid output with no clamp of its own (src/losses/maga_loss.py:18)."""

    sample: bool = True  # z drawn from the posterior (False: the posterior mean, deterministic)
    probability_floor: float = 0.0  # probabilities clamped to [floor, 1 − floor]; 0: torch's 100-nat cap alone
    seed: int = 0  # the posterior samples' random stream, restarted for every batch

    def __post_init__(self):
        if not 0 <= self.probability_floor < 0.5:
            raise ValueError("probability_floor must be in [0, 0.5)")

    def generator(self, device: torch.device) -> torch.Generator:
        return torch.Generator(device).manual_seed(self.seed)
