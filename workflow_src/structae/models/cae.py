"""Complex AutoEncoder (Löwe, Lippe, Rudolph, Welling: Complex-Valued Autoencoders for Object Discovery,
TMLR 2022), with channel pooling for RGB inputs.

Every activation is complex, z = m·e^{iφ}. A complex layer applies one real weight W to the real and
imaginary parts, ψ = W·Re z + i·W·Im z, and binds magnitudes through χ = W·|z|:
    m = ½(|ψ| + b_m) + ½(χ + b_m),  φ = arg ψ + b_φ,
then BatchNorm (LayerNorm after linear layers) on m and ReLU; φ passes through. The input's phase is 0.
Objects come out as groups of pixels with similar output phase; the reconstruction reads magnitudes only.

Speed: W·Re z, W·Im z and W·|z| are one real convolution over the three stacked along the batch axis, in
channels-last layout (oneDNN's and cuDNN's native one: 1.2–1.35× faster steps on CPU, bench/cae.py).

RGB channel pooling (this project's extension; the paper is grayscale): the C output channels each have a
phase, but a pixel belongs to one object. The pooled phase φ* of a pixel is chosen by `pooling`
(max: the phase of the channel with the largest magnitude, so only that channel's phase gets gradient;
weighted: the magnitude-weighted circular mean; softmax: the circular mean weighted by softmax(m / τ);
hardmax: the max channel's phase forward, the softmax weights' gradient backward), and each channel is
reconstructed from its component along φ*, m_c·cos(φ_c − φ*). A channel out of phase with its pixel then
reconstructs badly, so pooling shapes training, and the evaluation clusters φ*. With one channel,
φ* = φ and this is exactly the paper's model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from structae import metrics
from structae.clustering import batched_kmeans
from structae.data.h5 import IGNORE_LABEL
from structae.models.layers import require_divisible_sides

POOLINGS = ("max", "weighted", "softmax", "hardmax")
OUTPUT_HEADS = ("sigmoid", "magnitude")


@dataclass
class Config:
    hidden: int = 32  # channels of the first conv layers; the encoder is [h, h, 2h, 2h, 2h] (official: 32)
    linear: int = 64  # size of the complex bottleneck (official: 64)
    pooling: str = "max"  # RGB channel pooling, one of POOLINGS; irrelevant for one channel
    softmax_temperature: float = 1.0  # τ of softmax and hardmax pooling
    # Initial bias of the 1×1 output conv (official: 0). The output is sigmoid(w·|z| + b) with |z| ≥ 0, so a
    # black background needs b near −4; from 0, Adam takes thousands of steps to get there (docs/log/cae.md).
    output_bias: float = 0.0
    # "sigmoid": the paper's sigmoid(1×1 conv(magnitudes)). "magnitude": the aligned magnitudes themselves, no
    # conv and no sigmoid (so no output_bias), one of CAE++'s changes for colour datasets (Stanić et al.,
    # NeurIPS 2023; official code: use_out_conv 0, use_out_sigmoid 0). A probe option (docs/log/cae.md).
    output_head: str = "sigmoid"

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}")
        if self.output_head not in OUTPUT_HEADS:
            raise ValueError(f"output_head must be one of {', '.join(OUTPUT_HEADS)}")
        if self.hidden < 1 or self.linear < 1 or self.softmax_temperature <= 0:
            raise ValueError("hidden, linear and softmax_temperature must be positive")


@dataclass
class EvalConfig:
    """Evaluation-only settings (an experiment's `evaluate.model`): changing them re-evaluates, never retrains."""

    mask_threshold: float = 0.1  # phases of outputs weaker than this count less (official 0.1)
    kmeans_iterations: int = 30  # Lloyd iterations of the batched k-means
    kmeans_restarts: int = 3  # k-means++ restarts per image; the lowest inertia wins
    seed: int = 0  # the k-means seeding's random stream

    def __post_init__(self):
        if self.mask_threshold <= 0 or self.kmeans_iterations < 1 or self.kmeans_restarts < 1:
            raise ValueError("mask_threshold, kmeans_iterations and kmeans_restarts must be positive")


class Activation(NamedTuple):
    """A complex activation z = m·e^{iφ} kept as magnitude and unit direction: m (B, C, ...) and cos φ,
    sin φ of the same shape. Cheaper on CPU than complex tensors: no atan2, exp or polar inside the net."""

    magnitude: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor

    def phase(self) -> torch.Tensor:
        return torch.atan2(self.sin, self.cos)


# Where Im ψ ≈ 0 it is set to EPS, as the official code's stable_angle does. Besides keeping the gradient
# finite, this breaks the symmetry of a network whose input phase is 0: without it every activation stays on
# the real axis, phases stay 0 or π and the phase biases never receive a gradient.
EPS = 1e-8


class ComplexLayer(nn.Module):
    """A real linear map (conv, transposed conv or linear, without bias) applied the complex way, with
    magnitude and phase biases, then the magnitude normalisation and ReLU."""

    def __init__(self, linear_map: nn.Module, out_channels: int, fan_in: int, norm: nn.Module, spatial: bool):
        super().__init__()
        self.map, self.norm = linear_map, norm
        shape = (1, out_channels, 1, 1) if spatial else (1, out_channels)
        bound = 1 / math.sqrt(fan_in)  # as PyTorch initialises a conv bias
        self.magnitude_bias = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.phase_bias = nn.Parameter(torch.zeros(shape))

    def forward(self, z: Activation) -> Activation:
        """(B, C_in, ...) -> (B, C_out, ...)."""
        stacked = torch.cat([z.magnitude * z.cos, z.magnitude * z.sin, z.magnitude])  # Re z, Im z, |z|: (3B, ...)
        real, imag, chi = self.map(stacked).chunk(3)  # ψ = W·Re z + i·W·Im z and χ = W·|z| in one real op
        imag = torch.where(imag.abs() < EPS, torch.full_like(imag, EPS), imag)
        psi = torch.sqrt(real * real + imag * imag)  # |ψ| > 0
        magnitude = F.relu(self.norm(0.5 * (psi + self.magnitude_bias) + 0.5 * (chi + self.magnitude_bias)))
        # Direction of ψ rotated by the phase bias: e^{i(arg ψ + b)} without computing arg ψ.
        bias_cos, bias_sin = torch.cos(self.phase_bias), torch.sin(self.phase_bias)
        cos = (real * bias_cos - imag * bias_sin) / psi
        sin = (real * bias_sin + imag * bias_cos) / psi
        return Activation(magnitude, cos, sin)


def conv(c_in, c_out, stride) -> ComplexLayer:
    return ComplexLayer(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), c_out, c_in * 9, nn.BatchNorm2d(c_out), True)


def upconv(c_in, c_out) -> ComplexLayer:
    return ComplexLayer(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1, bias=False), c_out, c_out * 9,
                        nn.BatchNorm2d(c_out), True)


def linear(n_in, n_out) -> ComplexLayer:
    return ComplexLayer(nn.Linear(n_in, n_out, bias=False), n_out, n_in, nn.LayerNorm(n_out), False)


def pool_phase(output: Activation, pooling: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One direction per pixel from the C output channels: (cos φ*, sin φ*), each (B, 1, H, W)."""
    magnitude = output.magnitude
    if pooling == "max":
        channel = magnitude.argmax(1, keepdim=True)
        return output.cos.gather(1, channel), output.sin.gather(1, channel)
    if pooling == "weighted":
        weights = magnitude
    else:
        weights = torch.softmax(magnitude / temperature, dim=1)
        if pooling == "hardmax":  # forward: one-hot on the largest magnitude; backward: the softmax's gradient
            hard = torch.zeros_like(weights).scatter_(1, magnitude.argmax(1, keepdim=True), 1.0)
            weights = hard - weights.detach() + weights
    cos, sin = (weights * output.cos).sum(1, keepdim=True), (weights * output.sin).sum(1, keepdim=True)
    norm = torch.sqrt(cos * cos + sin * sin + EPS**2)  # circular mean: the direction of the weighted sum
    return cos / norm, sin / norm


class Model(nn.Module):
    def __init__(self, config: Config, info):
        super().__init__()
        h, channels = config.hidden, info.channels
        require_divisible_sides(info, 8, "CAE")
        self.config = config
        self.bottleneck = (2 * h, info.height // 8, info.width // 8)
        flat = 2 * h * (info.height // 8) * (info.width // 8)
        self.encoder = nn.Sequential(conv(channels, h, 2), conv(h, h, 1), conv(h, 2 * h, 2), conv(2 * h, 2 * h, 1),
                                     conv(2 * h, 2 * h, 2))
        self.encoder_linear = linear(flat, config.linear)
        self.decoder_linear = linear(config.linear, flat)
        self.decoder = nn.Sequential(upconv(2 * h, 2 * h), conv(2 * h, 2 * h, 1), upconv(2 * h, h), conv(h, h, 1),
                                     upconv(h, channels))
        # 1×1 conv on the aligned magnitudes, starting as the identity (the official weight 1 for one channel;
        # for RGB the identity keeps each colour its own rather than summing all three) with bias output_bias.
        if config.output_head == "sigmoid":
            self.output = nn.Conv2d(channels, channels, 1)
            with torch.no_grad():
                self.output.weight.copy_(torch.eye(channels)[:, :, None, None])
                self.output.bias.fill_(config.output_bias)
        self.to(memory_format=torch.channels_last)

    def forward(self, batch: dict) -> dict:
        image = batch["image"].contiguous(memory_format=torch.channels_last)  # (B, C, H, W) in [0, 1]
        z = Activation(image, torch.ones_like(image), torch.zeros_like(image))  # input phase 0
        z = self.encoder(z)  # (B, 2h, H/8, W/8)
        z = self.encoder_linear(Activation(*(part.flatten(1) for part in z)))  # (B, linear)
        z = self.decoder_linear(z)  # (B, 2h·H/8·W/8)
        z = self.decoder(Activation(*(part.view(-1, *self.bottleneck) for part in z)))  # (B, C, H, W)
        cos, sin = pool_phase(z, self.config.pooling, self.config.softmax_temperature)  # (B, 1, H, W)
        aligned = z.magnitude * (z.cos * cos + z.sin * sin)  # m_c·cos(φ_c − φ*): each channel along φ*
        reconstruction = torch.sigmoid(self.output(aligned)) if self.config.output_head == "sigmoid" else aligned
        return {"reconstruction": reconstruction, "phase": torch.atan2(sin, cos)[:, 0],
                "magnitude": z.magnitude.amax(1)}


def loss(outputs: dict, batch: dict, config: Config) -> dict:
    mse = F.mse_loss(outputs["reconstruction"], batch["image"])
    return {"loss": mse, "mse": mse}


def phase_features(phase: torch.Tensor, magnitude: torch.Tensor, threshold: float) -> torch.Tensor:
    """Points for clustering: (cos φ, sin φ) scaled by the magnitude clipped at `threshold` and rescaled to
    [0, 1], so that dark pixels, whose phase is arbitrary, sit near the origin. (B, H, W) -> (B, H·W, 2)."""
    weight = magnitude.clamp(0, threshold) / threshold
    return torch.stack([weight * torch.cos(phase), weight * torch.sin(phase)], -1).flatten(1, 2)


def _circular_mean(phase, weight, labels, n_labels):
    """Per-label weighted circular mean and mean angular deviation. phase, weight (B, N); labels (B, N) long.
    Returns centre (B, L), spread (B, L) and total weight (B, L)."""
    def per_label(values):
        return torch.zeros(phase.shape[0], n_labels, dtype=values.dtype, device=phase.device).scatter_add_(
            1, labels, values)

    totals = per_label(weight)
    centre = torch.atan2(per_label(weight * torch.sin(phase)), per_label(weight * torch.cos(phase)))
    deviation = torch.remainder(phase - centre.gather(1, labels) + math.pi, 2 * math.pi) - math.pi
    return centre, per_label(weight * deviation.abs()) / totals.clamp(min=1e-12), totals


def phase_separation(phase, magnitude, mask, threshold) -> dict[str, torch.Tensor]:
    """How far apart objects sit in phase, against how spread each object is (the notes' question).

    phase, magnitude (B, H, W); mask (B, H, W) labels, 0 = background, IGNORE_LABEL unscored.
    Per image: gap = smallest angular distance between the circular means of two objects; spread = mean
    angular deviation of an object's pixels from its mean (weighted as the clustering weighs them);
    separation = gap / spread. NaN where an image has fewer than two objects.
    """
    batch = phase.shape[0]
    weight = (magnitude.clamp(0, threshold) / threshold).flatten(1)
    labels = mask.flatten(1).long()
    objects = (labels > 0) & (labels != IGNORE_LABEL)
    n_labels = int(labels[objects].max()) + 1 if objects.any() else 1
    labels = torch.where(objects, labels, 0)
    centre, spread, totals = _circular_mean(phase.flatten(1), weight * objects, labels, n_labels)
    present = (totals > 1e-6) & (torch.arange(n_labels, device=phase.device) > 0)  # (B, L), objects only
    difference = torch.remainder(centre[:, :, None] - centre[:, None, :] + math.pi, 2 * math.pi) - math.pi
    pair = present[:, :, None] & present[:, None, :] & ~torch.eye(n_labels, dtype=torch.bool, device=phase.device)
    gap = difference.abs().masked_fill(~pair, float("inf")).flatten(1).min(1).values  # (B,)
    mean_spread = (spread * present).sum(1) / present.sum(1).clamp(min=1)
    enough = present.sum(1) >= 2
    nan = torch.full((batch,), float("nan"), device=phase.device)
    return {"phase_gap": torch.where(enough, gap, nan), "phase_spread": torch.where(enough, mean_spread, nan),
            "phase_separation": torch.where(enough, gap / mean_spread.clamp(min=1e-6), nan)}


def segment(outputs: dict, mask: torch.Tensor, settings: EvalConfig) -> torch.Tensor:
    """Predicted object labels (B, H, W): k-means on output phases with k = objects + background per image,
    ignoring IGNORE_LABEL pixels (overlaps), as the paper evaluates."""
    scored = mask != IGNORE_LABEL
    k = torch.where(scored, mask, 0).flatten(1).amax(1) + 1  # labels 0..max: objects + background
    points = phase_features(outputs["phase"], outputs["magnitude"], settings.mask_threshold)
    generator = torch.Generator().manual_seed(settings.seed)  # on the CPU: the same seeds on every device
    labels = batched_kmeans(points, k, scored.flatten(1), settings.kmeans_iterations, settings.kmeans_restarts,
                            generator)
    return labels.view_as(mask)


def evaluate(model: Model, batch: dict, config: Config, settings: EvalConfig | None = None) -> dict:
    settings = settings or EvalConfig()
    outputs = model(batch)
    predicted = segment(outputs, batch["mask"], settings)
    scores = metrics.segmentation_ari(batch["mask"], predicted)
    separation = phase_separation(outputs["phase"], outputs["magnitude"], batch["mask"], settings.mask_threshold)
    mse = metrics.squared_error_per_image(outputs["reconstruction"], batch["image"]) / batch["image"][0].numel()
    return {**scores, **separation, "mse": mse}
