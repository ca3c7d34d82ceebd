"""A tiny convolutional autoencoder that exercises the whole engine in seconds (tests, benchmarks).

No BatchNorm: its loss under DistributedDataParallel equals the single-process loss at the same global
batch, which the DDP test relies on. Optional input noise (a denoising autoencoder) draws from torch's
random stream, so the resume tests check that the stream is restored too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from structae import metrics


@dataclass
class Config:
    width: int = 16  # channels of both hidden layers: enough to reconstruct blobs, small enough for tests
    input_noise: float = 0.0  # std of Gaussian noise added to inputs in training; 0 = plain autoencoder


class Model(nn.Module):
    def __init__(self, config: Config, info):
        super().__init__()
        channels = info.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, config.width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(config.width, config.width, 4, stride=2, padding=1), nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(config.width, config.width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(config.width, channels, 4, stride=2, padding=1),
        )
        self.input_noise = config.input_noise

    def forward(self, batch: dict) -> dict:
        image = batch["image"]  # (B, C, H, W), H and W divisible by 4
        if self.training and self.input_noise:
            image = image + self.input_noise * torch.randn_like(image)
        logits = self.decoder(self.encoder(image))  # (B, C, H, W)
        return {"logits": logits}


def loss(outputs: dict, batch: dict, config: Config) -> dict:
    bce = metrics.bce_with_logits_per_image(outputs["logits"], batch["image"]).mean()
    return {"loss": bce, "bce": bce}


def evaluate(model: Model, batch: dict, config: Config, settings: None = None) -> dict:
    logits = model(batch)["logits"]
    return {
        "bce": metrics.bce_with_logits_per_image(logits, batch["image"]),
        "mse": metrics.squared_error_per_image(torch.sigmoid(logits), batch["image"]),
    }
