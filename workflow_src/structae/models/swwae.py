"""Stacked What-Where Auto-encoders (Zhao, Mathieu, Goroshin & LeCun 2015).

Each encoder block is conv -> ReLU -> 2×2 pooling that returns "what" (the pooled values) and "where"
(the position inside each window). The decoder mirrors it: unpooling puts "what" back at "where", then a
conv. With blocks m = 1..M:

    loss = λ_NLL·NLL(labelled) + λ_rec·‖x − x̂‖² + λ_M·Σ_{m<M} ‖h_m − ĥ_m‖²

where h_m is block m's "what" and ĥ_m the decoder's reconstruction of it; squared errors are means over
elements, so the λ's weigh terms of comparable size. The classifier is linear on the top "what".

Hard pooling: max and one-hot argmax. Soft pooling (Goroshin et al. 2015): what = Σ softmax(β·a)·a and
where = Σ softmax(β·a)·(dx, dy), a position inside the window; unpooling splats "what" bilinearly at that
position, which is exactly max-unpooling when "where" is a corner (hard pooling, or β → ∞).

Modes are λ settings (config.yaml): supervised (λ_rec = λ_M = 0), semi-supervised (all terms, NLL on the
labelled rows only) and unsupervised (λ_NLL trains only a linear probe on detached features: `probe`).
The first `labelled` training rows carry labels; `labelled_fraction` of every batch is drawn from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from structae import metrics
from structae.data import loader
from structae.models.layers import require_divisible_sides

POOLINGS = ("hard", "soft")


@dataclass
class Config:
    channels: tuple[int, ...] = (32, 64)  # one conv + pool block each; MNIST 28 -> 14 -> 7
    kernel: int = 3
    pooling: str = "hard"  # hard | soft
    beta: float = 5.0  # soft pooling's inverse temperature (β → ∞ is hard pooling)
    lambda_nll: float = 1.0
    lambda_rec: float = 1.0
    lambda_m: float = 1.0
    probe: bool = False  # True: the classifier sees detached features (the unsupervised mode's linear probe)
    labelled: int = 100  # N: the first N training rows carry labels (0 = every row)
    labelled_fraction: float = 0.5  # share of each batch drawn from the labelled rows

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}")
        if not self.channels or min(self.channels) < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("channels must be positive and kernel an odd positive size")
        if min(self.lambda_nll, self.lambda_rec, self.lambda_m, self.labelled) < 0 or self.beta <= 0:
            raise ValueError("the λ's and labelled must be >= 0, beta > 0")
        if not 0 <= self.labelled_fraction <= 1:
            raise ValueError("labelled_fraction must be in [0, 1]")

    @property
    def mode(self) -> str:
        """The training mode these λ settings and the probe flag encode (the module docstring)."""
        if self.probe:
            return "unsupervised"
        if self.lambda_rec == 0 and self.lambda_m == 0:
            return "supervised"
        return "semi-supervised"


def _windows(a: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 4, H/2, W/2): each 2×2 window's values at positions (dy, dx) = (0,0), (0,1), (1,0),
    (1,1). pixel_unshuffle keeps memory contiguous, so softmax and sums over the window stay fast."""
    b, c, h, w = a.shape
    return F.pixel_unshuffle(a, 2).view(b, c, 4, h // 2, w // 2)


def pool(a: torch.Tensor, pooling: str, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """What (B, C, H/2, W/2) and where (B, C, 2, H/2, W/2) = (dx, dy) in [0, 1] inside each window."""
    if pooling == "hard":  # max_pool2d's indices give the window position without building the window
        what, index = F.max_pool2d(a, 2, return_indices=True)
        width = a.shape[-1]
        where = torch.stack([index % width % 2, index // width % 2], 2).to(a.dtype)
        return what, where
    windows = _windows(a)
    weights = torch.softmax(beta * windows, 2)
    what = (weights * windows).sum(2)
    where = torch.stack([weights[:, :, 1] + weights[:, :, 3], weights[:, :, 2] + weights[:, :, 3]], 2)
    return what, where


def unpool(what: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Place `what` at `where` in each 2×2 window by bilinear weights: (B, C, h, w) -> (B, C, 2h, 2w)."""
    dx, dy = where[:, :, 0], where[:, :, 1]
    weights = torch.stack([(1 - dx) * (1 - dy), dx * (1 - dy), (1 - dx) * dy, dx * dy], 2)
    b, c, h, w = what.shape
    return F.pixel_shuffle((what[:, :, None] * weights).reshape(b, 4 * c, h, w), 2)


class Model(nn.Module):
    def __init__(self, config: Config, info):
        super().__init__()
        scale = 2 ** len(config.channels)
        require_divisible_sides(info, scale, "SWWAE")
        self.config = config
        widths = [info.channels, *config.channels]
        pad = config.kernel // 2
        self.encoder = nn.ModuleList(nn.Conv2d(c_in, c_out, config.kernel, padding=pad)
                                     for c_in, c_out in zip(widths[:-1], widths[1:], strict=True))
        self.decoder = nn.ModuleList(nn.Conv2d(c_out, c_in, config.kernel, padding=pad)
                                     for c_in, c_out in zip(widths[:-1], widths[1:], strict=True))
        top = config.channels[-1] * (info.height // scale) * (info.width // scale)
        self.classifier = nn.Linear(top, 10)

    def forward(self, batch: dict) -> dict:
        config = self.config
        h, whats, wheres = batch["image"], [], []
        for conv in self.encoder:
            what, where = pool(F.relu(conv(h)), config.pooling, config.beta)
            whats.append(what)
            wheres.append(where)
            h = what
        features = h.flatten(1)
        logits = self.classifier(features.detach() if config.probe else features)
        reconstructions = []  # ĥ_m for m = M-1 .. 1, then x̂
        for index in reversed(range(len(self.encoder))):
            h = self.decoder[index](unpool(h, wheres[index]))
            h = F.relu(h) if index else torch.sigmoid(h)  # the image is in [0, 1]
            reconstructions.append(h)
        return {"logits": logits, "whats": whats, "wheres": wheres, "reconstruction": reconstructions[-1],
                "intermediate": list(zip(reversed(whats[:-1]), reconstructions[:-1], strict=True))}


def labelled_mask(batch: dict, config: Config) -> torch.Tensor:
    """Which rows of the batch carry labels: the first `labelled` rows of the training split (all when 0)."""
    index = batch["index"]
    return torch.ones_like(index, dtype=torch.bool) if config.labelled == 0 else index < config.labelled


def step_rows(n: int, batch_size: int, seed: int, step: int, config: Config) -> torch.Tensor:
    """A batch with `labelled_fraction` of its rows from the labelled rows (epochs over them) and the rest
    from every row: N = 100 labels would otherwise appear about once per batch of 64. A function of
    (seed, step) alone, as the engine's own sampler, so resumed runs stay bit-identical."""
    labelled = n if config.labelled == 0 else min(config.labelled, n)
    from_labelled = round(batch_size * config.labelled_fraction)
    if from_labelled == 0:
        return loader.step_rows(n, batch_size, seed, step)
    rows = loader.step_rows(labelled, min(from_labelled, labelled), seed + 1, step)
    rows = rows.repeat((from_labelled + len(rows) - 1) // len(rows))[:from_labelled]
    rest = batch_size - from_labelled
    return rows if rest == 0 else torch.cat([rows, loader.step_rows(n, rest, seed, step)])


def loss(outputs: dict, batch: dict, config: Config) -> dict:
    labels = batch["factors"]["label"]
    labelled = labelled_mask(batch, config)
    per_image = F.cross_entropy(outputs["logits"], labels, reduction="none")
    nll = (per_image * labelled).sum() / labelled.sum().clamp(min=1)
    rec = F.mse_loss(outputs["reconstruction"], batch["image"])
    middle = sum((F.mse_loss(r, h) for h, r in outputs["intermediate"]), torch.zeros((), device=rec.device))
    total = config.lambda_nll * nll + config.lambda_rec * rec + config.lambda_m * middle
    return {"loss": total, "nll": nll, "rec": rec, "rec_m": middle}


def evaluate(model: Model, batch: dict, config: Config, settings: None = None) -> dict:
    """Test error (1 − accuracy of the classifier, or the probe) and the reconstruction's squared error."""
    outputs = model(batch)
    error = 1.0 - metrics.accuracy(outputs["logits"], batch["factors"]["label"])
    mse = metrics.squared_error_per_image(outputs["reconstruction"], batch["image"]) / batch["image"][0].numel()
    return {"error": error, "mse": mse}
