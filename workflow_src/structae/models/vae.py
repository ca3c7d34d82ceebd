"""The VAE baseline of MAGANet (Hwang et al. 2023): MAGANet's encoder, a transposed-conv decoder mirroring
it, and the same summed BCE; q(z | x) of the image itself (no pivot)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from structae import metrics
from structae.models.layers import EvalSettings, GaussianEncoder, gaussian_kl, reparameterise, require_divisible_sides


@dataclass
class Config:
    latent: int = 10  # as MAGANet's
    conv: tuple[int, ...] = (32, 32, 64, 64)  # encoder channels; the decoder mirrors them
    hidden: int = 256
    beta_kl: float = 1.0  # as MAGANet's

    def __post_init__(self):
        if min(self.latent, self.hidden) < 1 or not self.conv or self.beta_kl < 0:
            raise ValueError("latent and hidden must be positive, conv non-empty, beta_kl >= 0")


EvalConfig = EvalSettings  # the same evaluation settings as MAGANet's


class Model(nn.Module):
    def __init__(self, config: Config, info):
        super().__init__()
        scale = 2 ** len(config.conv)
        require_divisible_sides(info, scale, "the VAE")
        self.encoder = GaussianEncoder(info.channels, info.height, info.width, config.latent, config.conv,
                                       config.hidden)
        self.start = (config.conv[-1], info.height // scale, info.width // scale)
        flat = config.conv[-1] * self.start[1] * self.start[2]
        self.mlp = nn.Sequential(nn.Linear(config.latent, config.hidden), nn.ReLU(inplace=True),
                                 nn.Linear(config.hidden, flat), nn.ReLU(inplace=True))
        layers = []
        widths = [*reversed(config.conv), info.channels]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.decoder = nn.Sequential(*layers[:-1])  # logits out
        self.to(memory_format=torch.channels_last)  # faster convolutions on CPU, as MAGANet's

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, C, H, W) of z (B, L)."""
        return self.decoder(self.mlp(z).view(-1, *self.start))

    def forward(self, batch: dict, sample: bool | None = None, generator: torch.Generator | None = None) -> dict:
        """sample: z drawn from the posterior, else its mean (default: while training)."""
        mean, log_var = self.encoder(batch["image"])
        sample = self.training if sample is None else sample
        z = reparameterise(mean, log_var, generator) if sample else mean
        return {"logits": self.decode(z), "mean": mean, "log_var": log_var}


def _probabilities(outputs: dict, floor: float = metrics.PROBABILITY_FLOOR) -> torch.Tensor:
    return metrics.as_probabilities(torch.sigmoid(outputs["logits"]), floor)


def reconstruct(model: Model, batch: dict) -> torch.Tensor:
    return _probabilities(model(batch))


def loss(outputs: dict, batch: dict, config: Config) -> dict:
    bce = metrics.bce_with_logits_per_image(outputs["logits"], batch["image"]).mean()
    kl = gaussian_kl(outputs["mean"], outputs["log_var"]).mean()
    return {"loss": bce + config.beta_kl * kl, "bce": bce, "kl": kl}


def evaluate(model: Model, batch: dict, config: Config, settings: EvalConfig | None = None) -> dict:
    """Per-image BCE (nats, summed over pixels) of the reconstruction (evaluate.model: sampled or from the
    posterior mean, and the probability floor), and the KL of the posterior (nats; near 0 is posterior
    collapse: the decoder draws an average image)."""
    settings = settings or EvalConfig()
    outputs = model(batch, settings.sample, settings.generator(batch["image"].device))
    return {"bce": metrics.bce_per_image(_probabilities(outputs, settings.probability_floor), batch["image"]),
            "kl": gaussian_kl(outputs["mean"], outputs["log_var"])}


def latents(model: Model, batch: dict) -> torch.Tensor:
    """The posterior mean of each image, for the UMAP figures. (B, L)."""
    return model.encoder(batch["image"])[0]


def decode_latents(model: Model, z: torch.Tensor, batch: dict) -> torch.Tensor:
    """Images (B, C, H, W) in [0, 1] of latents z (B, L); `batch` is unused (MAGANet's takes its pivot)."""
    return torch.sigmoid(model.decode(z))
