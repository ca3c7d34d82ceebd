"""A Glow-style normalizing flow (Kingma & Dhariwal 2018) that is exactly invertible: MAGANet's decoder.

Each level squeezes (C, H, W) -> (4C, H/2, W/2) and applies `steps` of ActNorm, an invertible 1×1
convolution and an additive coupling. There is no multi-scale split: f maps the image to a tensor of the
same size, so f⁻¹(f(x) + v) is defined for every v of that size. Additive couplings and a plain 1×1
weight make f volume-changing only through ActNorm and the 1×1 weight, and exactly invertible in
floating point up to the 1×1 inverse's rounding.

Images in [0, 1] and the flow's space are related by u = logit(ε + (1 − 2ε)·x) and its inverse
x = (sigmoid(u) − ε)/(1 − 2ε): binary pixels sit at ±logit(1 − ε) instead of ±∞.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPSILON = 0.05  # of the image <-> flow-space mapping: 0 and 1 become ∓2.94


def to_flow_space(image: torch.Tensor) -> torch.Tensor:
    return torch.logit(EPSILON + (1 - 2 * EPSILON) * image)


def to_image_space(u: torch.Tensor) -> torch.Tensor:
    """The exact inverse of to_flow_space; values lie in (−ε/(1−2ε), 1 + ε/(1−2ε)), slightly beyond [0, 1]."""
    return (torch.sigmoid(u) - EPSILON) / (1 - 2 * EPSILON)


def squeeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, 2 * h, 2 * w)


class ActNorm(nn.Module):
    """y = (x + bias)·exp(log_scale) per channel; the first batch it sees sets zero mean and unit variance."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.initialized and self.training:
            with torch.no_grad():  # data-dependent initialisation (Glow §3.1)
                mean = x.mean((0, 2, 3), keepdim=True)
                std = x.std((0, 2, 3), keepdim=True) if x[:, 0].numel() > 1 else torch.ones_like(mean)
                self.bias.copy_(-mean)
                self.log_scale.copy_(-torch.log(std.clamp(min=1e-3)))
                self.initialized.fill_(True)
        return (x + self.bias) * torch.exp(self.log_scale)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvertibleConv1x1(nn.Module):
    """A 1×1 convolution with a square weight, started as a random rotation (always invertible then)."""

    def __init__(self, channels: int):
        super().__init__()
        weight, _ = torch.linalg.qr(torch.randn(channels, channels))
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight[:, :, None, None])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        inverse = torch.linalg.inv(self.weight.double()).to(self.weight.dtype)  # float64: exact round trips
        return F.conv2d(y, inverse[:, :, None, None])


class AdditiveCoupling(nn.Module):
    """x = (a, b) -> (a, b + t(a)); t is a small conv net whose last layer starts at zero (identity start)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        half = channels // 2
        self.net = nn.Sequential(nn.Conv2d(half, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels - half, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.half = half

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, :self.half], x[:, self.half:]
        return torch.cat([a, b + self.net(a)], 1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b = y[:, :self.half], y[:, self.half:]
        return torch.cat([a, b - self.net(a)], 1)


class Flow(nn.Module):
    """f: (B, C, H, W) -> (B, C·4^levels, H/2^levels, W/2^levels), with an exact inverse."""

    def __init__(self, channels: int, levels: int, steps: int, hidden: int):
        super().__init__()
        self.levels = nn.ModuleList()
        for level in range(levels):
            width = channels * 4 ** (level + 1)
            self.levels.append(nn.ModuleList(
                layer for _ in range(steps)
                for layer in (ActNorm(width), InvertibleConv1x1(width), AdditiveCoupling(width, hidden))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layers in self.levels:
            x = squeeze(x)
            for layer in layers:
                x = layer(x)
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layers in reversed(self.levels):
            for layer in reversed(layers):
                y = layer.inverse(y)
            y = unsqueeze(y)
        return y
