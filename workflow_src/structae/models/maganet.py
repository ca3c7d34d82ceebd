"""MAGANet (Hwang et al., ICML 2023): a latent z is the transformation from a fixed pivot image to the
input, and the decoder applies it to the pivot as a group action in a flow's space.

    E(x) = (μ, log σ²)                         GaussianEncoder, shared with the VAE baseline
    z = z(x) − z(x_pivot)                      each reparameterised; q(z) = N(μ_x − μ_p, σ_x² + σ_p²)
    D(z, x) = f⁻¹(f(x) + M z)                  f the exactly invertible flow (models.flow), M linear
    loss = BCE(D(z, x_pivot), x) + β_KL·KL(q(z) ‖ N(0, I)) + β_latent·‖E(x_pivot, D(z, x_pivot)) − z‖₁

D(0, x) = x and D(z₂, D(z₁, x)) = D(z₁ + z₂, x) hold by construction (tests check them). Images enter
and leave the flow through flow.to_flow_space / to_image_space (u = logit(ε + (1 − 2ε)x)).

The BCE term is trained in the flow's space: sigmoid(u) against the squashed target ε + (1 − 2ε)x, minus
that target's entropy, so it is 0 exactly when D(z, x_pivot) = x and has a gradient everywhere (BCE on the
image-space output clamped to [0, 1] has none where the clamp bites, and a binary pivot starts there).
Evaluation scores the image-space output as pixel probabilities clamped to [floor, 1 − floor], with z sampled
or the difference of the posterior means: both are evaluation settings (EvalConfig, `evaluate.model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from structae import metrics
from structae.models import flow
from structae.models.layers import EvalSettings, GaussianEncoder, gaussian_kl, reparameterise, require_divisible_sides


@dataclass
class Config:
    latent: int = 10  # size of z (dSprites has 5 factors; 10 as the β-VAE literature on dSprites)
    conv: tuple[int, ...] = (32, 32, 64, 64)  # encoder channels, one stride-2 4×4 conv each
    hidden: int = 256  # encoder MLP width
    flow_levels: int = 3  # squeezes: 64×64×1 -> 8×8×64
    flow_steps: int = 4  # ActNorm + 1×1 conv + coupling per level
    flow_hidden: int = 64  # channels inside each coupling network
    beta_kl: float = 1.0  # the ELBO's weight (β = 1); the paper tunes it per dataset
    beta_latent: float = 1.0  # latent-consistency weight; not stated in the paper, so 1 (both terms equal)

    def __post_init__(self):
        if min(self.latent, self.hidden, self.flow_levels, self.flow_steps, self.flow_hidden) < 1 or not self.conv:
            raise ValueError("latent, hidden and the flow sizes must be positive, conv non-empty")
        if self.beta_kl < 0 or self.beta_latent < 0:
            raise ValueError("beta_kl and beta_latent must be >= 0")


EvalConfig = EvalSettings  # shared with the VAE (models/layers.py)


class Model(nn.Module):
    def __init__(self, config: Config, info):
        super().__init__()
        scale = 2 ** max(len(config.conv), config.flow_levels)
        require_divisible_sides(info, scale, "MAGANet")
        self.config = config
        self.encoder = GaussianEncoder(info.channels, info.height, info.width, config.latent, config.conv,
                                       config.hidden)
        self.flow = flow.Flow(info.channels, config.flow_levels, config.flow_steps, config.flow_hidden)
        f = 2 ** config.flow_levels
        self.flow_shape = (info.channels * f * f, info.height // f, info.width // f)
        self.action = nn.Linear(config.latent, info.channels * info.height * info.width, bias=False)  # M
        nn.init.normal_(self.action.weight, std=0.01)
        # oneDNN's native layout: the convolutions pick it from their weights (1.3× faster steps on CPU,
        # bench/maganet.py); the values, and so the checkpoints, are the same
        self.to(memory_format=torch.channels_last)

    def decode_to_flow_space(self, z: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """f⁻¹(f(u(x)) + Mz) for z (B, L) and images (B or 1, C, H, W) in [0, 1]: (B, C, H, W) in flow space."""
        base = self.flow(flow.to_flow_space(image))
        return self.flow.inverse(base + self.action(z).view(-1, *self.flow_shape))

    def decode(self, z: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """D(z, x) in image space, (B, C, H, W), unclamped (so that D can be applied again exactly)."""
        return flow.to_image_space(self.decode_to_flow_space(z, image))

    def transformation(self, image: torch.Tensor, pivot: torch.Tensor, sample: bool,
                       generator: torch.Generator | None = None):
        """z from the pivot to each image, and the mean and log-variance of its distribution."""
        mean_x, log_var_x = self.encoder(image)
        mean_p, log_var_p = self.encoder(pivot)  # one pivot for the whole batch
        if sample:
            pivot_z = reparameterise(mean_p.expand_as(mean_x), log_var_p.expand_as(mean_x), generator)
            z = reparameterise(mean_x, log_var_x, generator) - pivot_z
        else:
            z = mean_x - mean_p
        log_var = torch.logaddexp(log_var_x, log_var_p)  # variances of independent Gaussians add
        return z, mean_x - mean_p, log_var, mean_p

    def forward(self, batch: dict, sample: bool | None = None, generator: torch.Generator | None = None) -> dict:
        """sample: z drawn from the posteriors, else their means (default: while training)."""
        image, pivot = batch["image"], _pivot(batch)
        sample = self.training if sample is None else sample
        z, mean, log_var, mean_p = self.transformation(image, pivot, sample, generator)
        logits = self.decode_to_flow_space(z, pivot)
        reconstruction = flow.to_image_space(logits)
        # E(x_pivot, D(z, x_pivot)): the transformation the encoder reads back from the reconstruction.
        read_back = self.encoder(reconstruction.clamp(0, 1))[0] - mean_p
        return {"logits": logits, "reconstruction": reconstruction, "z": z, "mean": mean, "log_var": log_var,
                "read_back": read_back}


def _pivot(batch: dict) -> torch.Tensor:
    if "pivot" not in batch:
        raise ValueError("MAGANet needs a pivot image: give the experiment a recombination `split`")
    return batch["pivot"]


def _probabilities(outputs: dict, floor: float = metrics.PROBABILITY_FLOOR) -> torch.Tensor:
    return metrics.as_probabilities(outputs["reconstruction"], floor)


def reconstruct(model: Model, batch: dict) -> torch.Tensor:
    """Pixel probabilities (B, C, H, W): the pivot moved by the encoded transformation."""
    return _probabilities(model(batch))


def loss(outputs: dict, batch: dict, config: Config) -> dict:
    target = flow.EPSILON + (1 - 2 * flow.EPSILON) * batch["image"]
    entropy = F.binary_cross_entropy(target, target, reduction="none").flatten(1).sum(1)  # the minimum
    bce = (metrics.bce_with_logits_per_image(outputs["logits"], target) - entropy).mean()
    kl = gaussian_kl(outputs["mean"], outputs["log_var"]).mean()
    latent = F.l1_loss(outputs["read_back"], outputs["z"], reduction="none").sum(1).mean()
    return {"loss": bce + config.beta_kl * kl + config.beta_latent * latent, "bce": bce, "kl": kl, "latent": latent}


def evaluate(model: Model, batch: dict, config: Config, settings: EvalConfig | None = None) -> dict:
    """Per-image BCE (nats, summed over pixels) of the reconstruction of each test image from the pivot
    (evaluate.model: z sampled or the posterior means, and the probability floor), and the KL of the
    transformation's posterior (nats; near 0 means the latent carries nothing)."""
    settings = settings or EvalConfig()
    outputs = model(batch, settings.sample, settings.generator(batch["image"].device))
    return {"bce": metrics.bce_per_image(_probabilities(outputs, settings.probability_floor), batch["image"]),
            "kl": gaussian_kl(outputs["mean"], outputs["log_var"])}


def latents(model: Model, batch: dict) -> torch.Tensor:
    """The encoded transformation (posterior mean) of each image, for the UMAP figures. (B, L)."""
    return model.transformation(batch["image"], _pivot(batch), sample=False)[0]


def decode_latents(model: Model, z: torch.Tensor, batch: dict) -> torch.Tensor:
    """Images (B, C, H, W) in [0, 1] of latents z (B, L): the transformation z applied to the pivot.
    Shared with the VAE (models/vae.py), so figures treat both alike."""
    return model.decode(z, _pivot(batch).expand(len(z), -1, -1, -1)).clamp(0, 1)
