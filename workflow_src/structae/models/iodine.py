"""IODINE (Greff et al., ICML 2019) as the official release builds it (deepmind-research/iodine): K slots with
Gaussian posteriors λ_k, refined T times by a network that reads the image, the current decoding and the
gradient of the loss; each posterior sample decoded by a spatial broadcast decoder into a mixture of K images.

Pass t = 0..T (T + 1 decodes, T refinements; the release's `num_iters` counts refinements):
    z_k ~ N(μ_k, σ_k²), σ_k² = softplus(s_k)      λ_k = (μ_k, s_k); λ⁰ learned, shared by the slots
    (x̂_k, ℓ_k) = decoder([z_k, 5]) per pixel     per-slot means and mask logits; m = softmax_k(ℓ)
    L_t = −Σ_pixels log Σ_k m_k p(x | x̂_k) + β·Σ_k KL(q(z_k) ‖ N(0, softplus(0)))
    λ ← λ + refine(inputs(λ, ∇L_t, x̂, ℓ, m, ...)), for t < T
The loss is Σ_t (t/T)·L_t (the release's `linspace(0, 1, T + 1)`: the decode of λ⁰ weighs 0), averaged over
images and summed over pixels, so the release's gradient clip at 5 acts on the same scale. The gradients fed
to the refinement network are inputs, not part of the graph (the release's stop-gradients), taken of the
batch-mean loss as the release takes them.

Slots start from the same λ⁰, so only the sampling noise tells them apart: evaluation samples too (all
slots decoding the posterior mean would stay identical forever), from a generator seeded per batch, so
scores are deterministic. docs/iodine.md compares every part with the release, line by line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from structae import clustering, metrics

# Refinement inputs, named after what they are; the release's names (iodine.py, DEFAULT_INPUTS) in brackets.
# Maps per slot, with their channels ("C": the image's; "coordinates": 2 linear or 8 cosine channels)...
SPATIAL_INPUTS = {"image": "C",  # [image]
                  "means": "C",  # [components] each slot's decoded pixels
                  "mask": 1,  # [pred_mask] softmax over slots of the mask logits
                  "mask_logits": 1,  # [mask]
                  "mask_posterior": 1,  # [posterior] p(x | slot k) / Σ_j p(x | slot j)
                  "grad_means": "C",  # [dcomponents] ∂L/∂ means
                  "grad_mask": 1,  # [dmask] ∂L/∂ mask logits
                  "likelihood": 1,  # [log_prob] the mixture's log p(x), per pixel
                  "leave_one_out": 1,  # [counterfactual] log p(x) − log p(x | every slot but k)
                  "coordinates": "coordinates",  # [coordinates]
                  "capacity": 1}  # [capacity] a constant 0.5 map (the release's "legacy" input)
# ... and vectors per slot.
VECTOR_INPUTS = {"posterior": "2L",  # [zp] λ_k
                 "grad_posterior": "2L",  # [dzp] ∂L/∂λ_k
                 "flat_capacity": 1}  # [flat_capacity] a constant 0.5 (legacy)
# Layer-normalised, with a learned gain and offset per channel (the release's DEFAULT_PREPROCESSING): their scale
# varies by orders of magnitude over training.
NORMALISED = ("grad_means", "grad_mask", "likelihood", "leave_one_out", "grad_posterior")
ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU}
UPDATES = ("additive", "gated")
POOLS = ("flatten", "average")
INITIALS = ("shared", "per_slot")
WEIGHT_INITS = ("torch", "release")
LIKELIHOODS = ("gaussian", "logistic")
COORDINATES = ("linear", "cos")
DECODER_CONSTANT = 5.0  # appended to every z before decoding (the release's decode(), marked "legacy")
PRIOR_VARIANCE = math.log(2)  # the release's prior: its posterior parametrisation at λ = 0, σ² = softplus(0)
CAPACITY = 0.5  # the value of the release's constant "capacity" inputs
MASK_POSTERIOR_EPS = 1e-6  # the release's: p_k / (Σ_j p_j + 1e-6)
COSINE_FREQUENCIES = 3  # the release's coord_freqs: 3² − 1 = 8 cosine channels


@dataclass
class Config:
    slots: int = 4  # K (release: 7 CLEVR6, 6 Multi-dSprites, 4 Tetrominoes)
    iterations: int = 3  # T refinements, so T + 1 decodes (release: 5)
    latent: int = 16  # per slot (release: 64 CLEVR6, 16 Multi-dSprites, 32 Tetrominoes)
    decoder_width: int = 32  # channels of the broadcast decoder's convs (release: 64 CLEVR6, 32 the others)
    decoder_layers: int = 4  # k×k convs with ELU before the k×k output conv (release: 4)
    coordinate_scale: float = 1.0  # the decoder's x, y span [−s, s] (paper, release: 1); a probe of docs/iodine.md
    refine_width: int = 32  # channels of the refinement convs (release: 64 CLEVR6, 32 the others)
    refine_layers: int = 3  # stride-2 k×k convs of the refinement network (release: 4 CLEVR6, 3 the others)
    refine_hidden: int = 128  # its MLP and LSTM size (release: 256 CLEVR6, 128 Multi-dSprites and Tetrominoes)
    refine_mlp_layers: int = 1  # the MLP's layers, the last without activation (release: 2 CLEVR6, 1 the others)
    refine_coordinates: str = "linear"  # the refinement's coordinate input (release: cos on Multi-dSprites and
    #                                     Tetrominoes, 3 frequencies; linear x, y on CLEVR6)
    kernel_size: int = 3  # of every conv of the decoder and the refinement (release: 3 CLEVR6, 5 the others)
    refine_pool: str = "average"  # the refinement convs' map to its MLP: average (release) | flatten
    refine_lstm: bool = True  # the LSTM between MLP and head (release: none on Tetrominoes)
    update: str = "additive"  # additive: λ += Δλ (release); gated: λ = g·λ + (1 − g)·u (reimplementation notes)
    activation: str = "elu"  # elu (release) | relu: the ablation
    layer_norm: bool = True  # layer norm on gradient and likelihood inputs (release); off: the ablation
    inputs: tuple[str, ...] = tuple(SPATIAL_INPUTS) + tuple(VECTOR_INPUTS)  # any subset; see the ablations
    likelihood: str = "logistic"  # pixel likelihood: logistic (the release) | gaussian (σ = sigma, the paper)
    sigma: float = 0.1  # global σ of the Gaussian pixel likelihood (paper: 0.1)
    logistic_scale: float = 0.03  # scale of the logistic pixel likelihood (release: 0.03)
    kl_weight: float = 1.0  # β of the KL term (release: 1)
    initial: str = "shared"  # λ⁰: shared by the slots (the paper) | per_slot (a symmetry-breaking probe)
    # The start of conv, linear and LSTM weights: release (Sonnet 1's defaults, as the release sets no
    # initialisers: N(0, 1/fan_in) truncated at 2σ, zero biases; the LSTM's biases drawn like its weights and a
    # forget-gate bias of 1) | torch (PyTorch's U(±1/√fan_in), random biases, the LSTM's U(±1/√hidden)).
    weight_init: str = "release"

    def __post_init__(self):
        unknown = set(self.inputs) - set(SPATIAL_INPUTS) - set(VECTOR_INPUTS)
        if unknown:
            raise ValueError(f"unknown refinement inputs {sorted(unknown)}; known: "
                             f"{', '.join([*SPATIAL_INPUTS, *VECTOR_INPUTS])}")
        for name, value, allowed in (("update", self.update, UPDATES), ("activation", self.activation, ACTIVATIONS),
                                     ("initial", self.initial, INITIALS),
                                     ("weight_init", self.weight_init, WEIGHT_INITS),
                                     ("refine_pool", self.refine_pool, POOLS),
                                     ("likelihood", self.likelihood, LIKELIHOODS),
                                     ("refine_coordinates", self.refine_coordinates, COORDINATES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        if self.slots == 1 and "leave_one_out" in self.inputs:
            raise ValueError("the leave_one_out input needs 2 or more slots (with one there is no other slot); "
                             "remove it from inputs or raise slots")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd and positive (same-size convs)")
        if min(self.slots, self.iterations, self.latent, self.decoder_width, self.decoder_layers,
               self.refine_width, self.refine_hidden, self.refine_mlp_layers) < 1 or self.refine_layers < 0:
            raise ValueError("slots, iterations, latent, the widths and refine_mlp_layers must be positive")
        if self.sigma <= 0 or self.logistic_scale <= 0 or self.coordinate_scale <= 0:
            raise ValueError("sigma, logistic_scale and coordinate_scale must be positive")


def release_init(modules) -> None:
    """Sonnet 1's default start, the release's (it sets no initialisers): every conv and linear weight from
    N(0, 1/fan_in) truncated at 2σ, biases 0 (sonnet/python/modules/conv.py create_weight_initializer,
    basic.py create_linear_initializer); snt.LSTM's weights and biases both from N(0, 1/(input + hidden))
    truncated, plus a forget-gate bias of 1 (gated_rnn.py LSTM, forget_bias=1.0). PyTorch's U(±1/√fan_in) has
    a standard deviation √3 times smaller and random biases."""
    for module in modules:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            _truncated_normal(module.weight, module.weight[0].numel())  # fan_in: in_channels·k·k, or in_features
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LSTMCell):
            fan_in = module.input_size + module.hidden_size
            for weight in (module.weight_ih, module.weight_hh, module.bias_ih):
                _truncated_normal(weight, fan_in)
            with torch.no_grad():  # Sonnet adds its forget bias as a constant; here it starts the trainable bias
                module.bias_hh.zero_()
                module.bias_hh[module.hidden_size:2 * module.hidden_size] = 1.0  # PyTorch's gates: i, f, g, o


def _truncated_normal(weight: torch.Tensor, fan_in: int) -> None:
    std = 1 / math.sqrt(fan_in)
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def coordinate_grid(height: int, width: int, device=None) -> torch.Tensor:
    """(2, H, W) x and y in [−1, 1]: what the broadcast decoder sees of position."""
    ys = torch.linspace(-1, 1, height, device=device)
    xs = torch.linspace(-1, 1, width, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])


def cosine_grid(height: int, width: int, frequencies: int = COSINE_FREQUENCIES) -> torch.Tensor:
    """(F² − 1, H, W) products cos(f_x·u)·cos(f_y·v), u, v in [0, π], f in 0..F−1, without the constant
    (f_x = f_y = 0): the release's "cos" coordinate channels."""
    u = torch.linspace(0, math.pi, width)
    v = torch.linspace(0, math.pi, height)
    f = torch.arange(frequencies, dtype=torch.float32)
    x_basis = torch.cos(u[:, None] * f)  # (W, F)
    y_basis = torch.cos(v[:, None] * f)  # (H, F)
    basis = x_basis[None, :, :, None] * y_basis[:, None, None, :]  # (H, W, F_x, F_y)
    return basis.reshape(height, width, -1)[..., 1:].permute(2, 0, 1).contiguous()


class BroadcastDecoder(nn.Module):
    """Spatial broadcast decoder (Watters et al. 2019), the release's BroadcastConv: [z, 5] tiled over the image
    plus x, y coordinates, then k×k convs with ELU and a k×k output conv; per-slot means (C channels, no
    activation) and a mask logit.

    Speed: the first conv never sees the tiled latent. Over a constant map, a k×k conv with zero padding gives,
    at each pixel, the sum of W_o·z over the kernel offsets that fall inside the image: a (N·O, k²) × (k², H·W)
    product, k² instead of k²·(latent + 3) multiply-adds per output; the constant's and the coordinates' part is
    the same for every slot and is computed once. Exactly the conv over the tiled input (a test checks it)."""

    def __init__(self, config: Config, channels: int, height: int, width: int):
        super().__init__()
        act, k = ACTIVATIONS[config.activation], config.kernel_size
        layers, c_in = [], config.latent + 3  # z, the constant, x, y
        for _ in range(config.decoder_layers):
            layers += [nn.Conv2d(c_in, config.decoder_width, k, padding=k // 2), act(inplace=True)]
            c_in = config.decoder_width
        self.net = nn.Sequential(*layers, nn.Conv2d(c_in, channels + 1, k, padding=k // 2))
        grid = coordinate_grid(height, width) * config.coordinate_scale
        self.register_buffer("extras", torch.cat([torch.full((1, height, width), DECODER_CONSTANT), grid]),
                             persistent=False)
        # inside[o, p]: whether kernel offset o of pixel p falls inside the image (F.unfold's order of offsets)
        inside = F.unfold(torch.ones(1, 1, height, width), k, padding=k // 2)[0]  # (k², H·W)
        self.register_buffer("inside", inside, persistent=False)

    def first_layer(self, z: torch.Tensor) -> torch.Tensor:
        """The first conv over [z tiled; 5; coordinates]: (N, latent) -> (N, O, H, W)."""
        conv, (n, latent), (_, height, width) = self.net[0], z.shape, self.extras.shape
        weight = conv.weight  # (O, latent + 3, k, k)
        per_offset = z @ weight[:, :latent].flatten(2).permute(1, 0, 2).flatten(1)  # (N, O·k²): W_o,k·z
        tiled = (per_offset.view(-1, self.inside.shape[0]) @ self.inside).view(n, -1, height, width)
        return tiled + F.conv2d(self.extras[None], weight[:, latent:], conv.bias, padding=conv.padding)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (N, latent) -> means (N, C, H, W), mask logits (N, H, W)."""
        out = self.net[1:](self.first_layer(z))
        return out[:, :-1], out[:, -1]


class RefinementNetwork(nn.Module):
    """The release's RefinementCore: spatial inputs -> stride-2 convs with ELU -> averaged (or flattened) ->
    MLP, its last layer linear; with the vector inputs -> LSTM (or straight on) -> a linear head, the update."""

    def __init__(self, config: Config, spatial_channels: int, vector_size: int, height: int, width: int):
        super().__init__()
        act, k = ACTIVATIONS[config.activation], config.kernel_size
        layers, c_in, h, w = [], spatial_channels, height, width
        for _ in range(config.refine_layers if spatial_channels else 0):
            layers += [nn.Conv2d(c_in, config.refine_width, k, stride=2, padding=k // 2), act(inplace=True)]
            c_in, h, w = config.refine_width, (h + 1) // 2, (w + 1) // 2
        self.convs = nn.Sequential(*layers)
        pool, features = ((nn.Flatten(), c_in * h * w) if config.refine_pool == "flatten"
                          else (nn.AdaptiveAvgPool2d(1), c_in))  # average: then flatten the 1×1 map
        self.mlp = None
        if spatial_channels:
            mlp = [pool, nn.Flatten()]
            for layer in range(config.refine_mlp_layers):  # snt.nets.MLP: activate_final=False
                last = layer == config.refine_mlp_layers - 1
                mlp += [nn.Linear(features, config.refine_hidden)] + ([] if last else [act()])
                features = config.refine_hidden
            self.mlp = nn.Sequential(*mlp)
        core_in = (config.refine_hidden if spatial_channels else 0) + vector_size
        self.core = nn.LSTMCell(core_in, config.refine_hidden) if config.refine_lstm else None
        outputs = 2 * config.latent * (2 if config.update == "gated" else 1)
        self.head = nn.Linear(config.refine_hidden if config.refine_lstm else core_in, outputs)

    def forward(self, spatial, vector, state):
        parts = [] if self.mlp is None else [self.mlp(self.convs(spatial))]
        if vector is not None:
            parts.append(vector)
        features = torch.cat(parts, 1)
        if self.core is None:
            return self.head(features), None
        hidden, cell = self.core(features, state)
        return self.head(hidden), (hidden, cell)


def pixel_log_likelihood(image: torch.Tensor, means: torch.Tensor, config: Config) -> torch.Tensor:
    """log p(x | slot k) per pixel, summed over channels. image (B, 1, C, H, W), means (B, K, C, H, W)."""
    if config.likelihood == "gaussian":
        sigma = config.sigma
        per_channel = -0.5 * ((image - means) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    else:
        scale = config.logistic_scale
        u = (image - means) / scale
        per_channel = -u - math.log(scale) - 2 * F.softplus(-u)
    return per_channel.sum(2)  # (B, K, H, W)


def posterior_sigma(raw: torch.Tensor) -> torch.Tensor:
    """σ of q(z) from its raw parameter s: σ² = softplus(s) (the release's latent_dist, scale "var")."""
    return torch.sqrt(F.softplus(raw))


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, PRIOR_VARIANCE)) per element: the release's prior is its own posterior
    parametrisation at λ = 0 (distributions.py get_default_prior), σ² = softplus(0) = log 2."""
    return 0.5 * ((mu ** 2 + sigma ** 2) / PRIOR_VARIANCE - 1 + math.log(PRIOR_VARIANCE)) - torch.log(sigma)


def initial_posterior(config: Config) -> torch.Tensor:
    """λ⁰, (2L,) or (K, 2L) per slot: the release's tf.get_variable without an initialiser, i.e. TF's default
    glorot_uniform, which for a vector of n entries is U(±√(3/n))."""
    shape = (config.slots, 2 * config.latent) if config.initial == "per_slot" else (2 * config.latent,)
    bound = math.sqrt(3 / (2 * config.latent))
    return torch.empty(shape).uniform_(-bound, bound)


def mixture_log_likelihood(log_p: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Σ_k softmax(ℓ)_k p_k per pixel, (B, K, H, W) -> (B, H, W); log_softmax keeps it finite where a mask
    probability underflows."""
    return torch.logsumexp(torch.log_softmax(logits, 1) + log_p, 1)


def leave_one_out(log_p: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x | every slot but k) per pixel: the mixture of the other slots with their mask logits
    renormalised, as the release builds it (MaskedMixture over the remaining K − 1 slots). (B, K, H, W)."""
    slots = logits.shape[1]
    eye = torch.eye(slots, dtype=torch.bool, device=logits.device)[None, :, :, None, None]  # [k, j]: j == k
    others = logits[:, None].expand(-1, slots, -1, -1, -1).masked_fill(eye, float("-inf"))  # (B, K, K, H, W)
    return torch.logsumexp(torch.log_softmax(others, 2) + log_p[:, None], 2)


def mask_posterior(log_p: torch.Tensor) -> torch.Tensor:
    """p_k / (Σ_j p_j + 1e-6) per pixel: each slot's share of the likelihood, masks ignored (the release's
    _get_mask_posterior), computed in log space so that densities far from 1 neither overflow nor vanish."""
    log_total = torch.logaddexp(torch.logsumexp(log_p, 1, keepdim=True),
                                torch.tensor(math.log(MASK_POSTERIOR_EPS), dtype=log_p.dtype, device=log_p.device))
    return torch.exp(log_p - log_total)


class Model(nn.Module):
    def __init__(self, config: Config, info):
        super().__init__()
        self.config = config
        self.spatial = [name for name in SPATIAL_INPUTS if name in config.inputs]
        self.vector = [name for name in VECTOR_INPUTS if name in config.inputs]
        coordinates = (coordinate_grid(info.height, info.width) if config.refine_coordinates == "linear"
                       else cosine_grid(info.height, info.width))
        self.register_buffer("refine_grid", coordinates, persistent=False)
        sizes = {"C": info.channels, "coordinates": coordinates.shape[0], "2L": 2 * config.latent}
        self.sizes = {name: sizes.get(size, size) for name, size in {**SPATIAL_INPUTS, **VECTOR_INPUTS}.items()}
        self.decoder = BroadcastDecoder(config, info.channels, info.height, info.width)
        self.refine = RefinementNetwork(config, sum(self.sizes[n] for n in self.spatial),
                                        sum(self.sizes[n] for n in self.vector), info.height, info.width)
        # snt.LayerNorm's learned scale and offset, one per channel (its params_shape is the last axis)
        normalised = [n for n in NORMALISED if n in config.inputs] if config.layer_norm else []
        self.norm_scale = nn.ParameterDict({n: nn.Parameter(torch.ones(self.sizes[n])) for n in normalised})
        self.norm_offset = nn.ParameterDict({n: nn.Parameter(torch.zeros(self.sizes[n])) for n in normalised})
        self.initial = nn.Parameter(initial_posterior(config))
        if config.weight_init == "release":
            release_init(self.modules())

    def _decode(self, lam: torch.Tensor, image: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """One decoding of posterior λ (B, K, 2L): means, mask logits and masks, the loss terms per image. Noise
        comes from `generator` when given (evaluation), else from torch's stream (training)."""
        config, (batch, slots, _) = self.config, lam.shape
        mu, raw_sigma = lam.chunk(2, -1)
        sigma = posterior_sigma(raw_sigma)
        if generator is None:
            noise = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype)
        else:  # a CPU generator: the same samples whatever device evaluates (see clustering.batched_kmeans)
            noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        z = mu + sigma * noise
        means, logits = self.decoder(z.reshape(batch * slots, -1))
        means = means.view(batch, slots, *means.shape[1:])  # (B, K, C, H, W)
        logits = logits.view(batch, slots, *logits.shape[1:])  # (B, K, H, W)
        log_p = pixel_log_likelihood(image[:, None], means, config)  # (B, K, H, W)
        log_mixture = mixture_log_likelihood(log_p, logits)  # (B, H, W)
        nll = -log_mixture.flatten(1).sum(1)  # (B,)
        kl = gaussian_kl(mu, sigma).flatten(1).sum(1)
        return {"means": means, "logits": logits, "masks": torch.softmax(logits, 1), "log_p": log_p,
                "log_mixture": log_mixture, "nll": nll, "kl": kl, "loss": nll + config.kl_weight * kl}

    def _normalise(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """snt.LayerNorm over all but the first axis, then its per-channel scale and offset."""
        if name not in self.norm_scale:
            return value
        if value.dim() == 2:
            return F.layer_norm(value, value.shape[1:], self.norm_scale[name], self.norm_offset[name])
        normalised = F.layer_norm(value, value.shape[1:])
        return normalised * self.norm_scale[name][:, None, None] + self.norm_offset[name][:, None, None]

    def _inputs(self, image, lam, decoded, grads) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The refinement inputs the config switches on, per slot: (B·K, channels, H, W) and (B·K, size). The
        likelihood is per image: normalised per image, then shared by its slots, as the release tiles it."""
        batch, slots, channels, height, width = decoded["means"].shape

        def per_slot(value):  # (B, C, H, W) -> (B·K, C, H, W)
            return value[:, None].expand(-1, slots, -1, -1, -1).reshape(batch * slots, -1, height, width)

        def spatial(name):
            if name == "image":
                return per_slot(image)
            if name == "means":
                return decoded["means"].flatten(0, 1)
            if name == "mask":
                return decoded["masks"].flatten(0, 1)[:, None]
            if name == "mask_logits":
                return decoded["logits"].flatten(0, 1)[:, None]
            if name == "mask_posterior":
                return mask_posterior(decoded["log_p"]).flatten(0, 1)[:, None]
            if name == "grad_means":
                return grads["means"].flatten(0, 1)
            if name == "grad_mask":
                return grads["logits"].flatten(0, 1)[:, None]
            if name == "likelihood":
                return per_slot(self._normalise(name, decoded["log_mixture"].detach()[:, None]))
            if name == "leave_one_out":
                log_p, logits = decoded["log_p"].detach(), decoded["logits"].detach()
                return (decoded["log_mixture"].detach()[:, None] - leave_one_out(log_p, logits)).flatten(0, 1)[:, None]
            if name == "capacity":
                return image.new_full((batch * slots, 1, height, width), CAPACITY)
            return self.refine_grid.expand(batch * slots, -1, -1, -1)  # coordinates

        def vector(name):
            if name == "flat_capacity":
                return lam.new_full((batch * slots, 1), CAPACITY)
            return (lam if name == "posterior" else grads["lam"]).flatten(0, 1)

        maps = [spatial(n) if n == "likelihood" else self._normalise(n, spatial(n)) for n in self.spatial]
        vecs = [self._normalise(n, vector(n)) for n in self.vector]
        return (torch.cat(maps, 1) if maps else None), (torch.cat(vecs, 1) if vecs else None)

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """Outputs of each of the T + 1 decodes (t = 0: λ⁰, t: after t refinements): `losses` (T + 1, B), and for
        evaluation `masks_per_iteration` (T + 1, B, K, H, W) and `reconstructions` (T + 1, B, C, H, W), detached;
        the last decode's nll, kl (B,), means (B, K, C, H, W), masks (B, K, H, W), reconstruction (B, C, H, W)
        and posterior λ (B, K, 2L). Posterior samples come from `generator` when given, else in eval mode from a
        fixed seed (0), so figures are reproducible, and in training from torch's stream."""
        image = batch["image"]  # (B, C, H, W) in [0, 1]
        config, b = self.config, image.shape[0]
        lam = self.initial.expand(b, config.slots, -1)  # (2L,) shared or (K, 2L) per slot
        state = None
        if generator is None and not self.training:
            generator = torch.Generator().manual_seed(0)
        losses, masks, reconstructions = [], [], []
        with torch.enable_grad():  # the refinement inputs need ∇L also when evaluating under no_grad
            for t in range(config.iterations + 1):
                if not self.training:
                    lam = lam.detach().requires_grad_()  # evaluation: no graph across iterations
                decoded = self._decode(lam, image, generator)
                losses.append(decoded["loss"])
                reconstruction = (decoded["masks"][:, :, None] * decoded["means"]).sum(1)  # (B, C, H, W)
                masks.append(decoded["masks"].detach())
                reconstructions.append(reconstruction.detach())
                if t == config.iterations:
                    break
                spatial, vector = self._inputs(image, lam, decoded, refinement_gradients(lam, decoded))
                update, state = self.refine(spatial, vector, state)
                update = update.view(b, config.slots, -1)
                if config.update == "gated":
                    candidate, gate = update.chunk(2, -1)
                    gate = torch.sigmoid(gate)
                    lam = gate * lam + (1 - gate) * candidate
                else:
                    lam = lam + update
        outputs = {"losses": torch.stack(losses), "nll": decoded["nll"], "kl": decoded["kl"],
                   "means": decoded["means"], "masks": decoded["masks"], "reconstruction": reconstruction,
                   "posterior": lam, "masks_per_iteration": torch.stack(masks),
                   "reconstructions": torch.stack(reconstructions)}
        if not self.training:  # the gradients above were inputs only; nothing downstream differentiates these
            outputs = {key: value.detach() for key, value in outputs.items()}
        return outputs

    def decode_latents(self, z: torch.Tensor) -> dict:
        """Decode given slot latents (B, K, L) without inference: the traversal figures."""
        batch, slots, _ = z.shape
        means, logits = self.decoder(z.reshape(batch * slots, -1))
        means = means.view(batch, slots, *means.shape[1:])
        masks = torch.softmax(logits.view(batch, slots, *logits.shape[1:]), 1)
        return {"means": means, "masks": masks, "reconstruction": (masks[:, :, None] * means).sum(1)}


def refinement_gradients(lam: torch.Tensor, decoded: dict) -> dict:
    """∂L/∂λ, ∂L/∂means and ∂L/∂mask logits of the batch-mean loss, as the release takes them (iodine.py
    _get_inputs_for): inputs to the refinement, outside the graph. W.r.t. the logits the gradient is bounded,
    (m_k − r_k)/B with r the responsibilities, where ∂/∂m_k grows without bound as the masks sharpen."""
    wanted = [lam, decoded["means"], decoded["logits"]]
    g_lam, g_means, g_logits = torch.autograd.grad(decoded["loss"].mean(), wanted, retain_graph=True)
    return {"lam": g_lam, "means": g_means, "logits": g_logits}


def pass_weights(iterations: int) -> torch.Tensor:
    """The release's iter_loss_weight "linspace": T + 1 weights from 0 (the decode of λ⁰) to 1 (the last)."""
    return torch.linspace(0, 1, iterations + 1)


def loss(outputs: dict, batch: dict, config: Config) -> dict:
    """Σ_t w_t·L_t over the T + 1 decodes, averaged over images and summed over pixels, as the release's
    total_loss (so its clip of the gradient norm at 5 means the same here); the logged nll and kl are the last
    decode's, per image."""
    losses = outputs["losses"]
    weights = pass_weights(losses.shape[0] - 1).to(losses)
    total = (weights[:, None] * losses).sum(0).mean()
    image = batch["image"]
    mse = metrics.squared_error_per_image(outputs["reconstruction"].detach(), image) / image[0].numel()
    return {"loss": total, "nll": outputs["nll"].mean(), "kl": outputs["kl"].mean(), "mse": mse.mean()}


def color_kmeans(image: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """The baseline: per image, k-means with k clusters on pixel colours alone. (B, C, H, W) -> (B, H, W)."""
    batch, channels, height, width = image.shape
    points = image.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
    valid = torch.ones(batch, height * width, dtype=torch.bool, device=image.device)
    generator = torch.Generator().manual_seed(seed)
    labels = clustering.batched_kmeans(points, torch.full((batch,), k, device=image.device), valid, 30, 3, generator)
    return labels.view(batch, height, width)


@dataclass
class EvalConfig:
    """Evaluation-only settings (an experiment's `evaluate.model`): changing them re-evaluates, never retrains."""

    seed: int = 0  # the posterior samples' and the colour k-means baseline's random streams


def evaluate(model: Model, batch: dict, config: Config, settings: EvalConfig | None = None) -> dict:
    """ARI with and without background, and MSE, after each decode: …_t0 of λ⁰, …_t1 after one refinement, …
    …_tT after the last; the last without suffix; the share of multi-object scenes whose objects sit in
    different slots (`objects_apart`); and the colour k-means baseline with as many clusters as slots."""
    settings = settings or EvalConfig()
    image, mask = batch["image"], batch["mask"]
    outputs = model(batch, torch.Generator().manual_seed(settings.seed))
    result = {}
    for t in range(config.iterations + 1):
        segmentation = outputs["masks_per_iteration"][t].argmax(1)  # (B, H, W): each pixel's most likely slot
        scores = metrics.segmentation_ari(mask, segmentation)
        result[f"ari_fg_t{t}"], result[f"ari_t{t}"] = scores["ari_fg"], scores["ari"]
        error = metrics.squared_error_per_image(outputs["reconstructions"][t], image)
        result[f"mse_t{t}"] = error / image[0].numel()
    last = config.iterations
    result.update(ari_fg=result[f"ari_fg_t{last}"], ari=result[f"ari_t{last}"], mse=result[f"mse_t{last}"])
    # scenes of two or more objects whose objects all sit in different slots (the object split; NaN otherwise)
    result["objects_apart"] = metrics.objects_apart(mask, outputs["masks_per_iteration"][last].argmax(1))
    baseline = metrics.segmentation_ari(mask, color_kmeans(image, config.slots, settings.seed))
    result.update(baseline_ari_fg=baseline["ari_fg"], baseline_ari=baseline["ari"])
    return result
