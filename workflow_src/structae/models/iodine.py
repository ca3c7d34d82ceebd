"""IODINE (Greff et al., ICML 2019): K slots with Gaussian posteriors, refined T times by a network that
reads the image, the current decoding and the gradient of the loss, then decoded by a spatial broadcast
decoder into a mixture of K images.

One pass (iteration t = 1..T):
    z_k ~ N(μ_k, σ_k)                      posterior λ_k = (μ_k, raw σ_k), λ⁰ learned, shared by the slots
    (x̂_k, ℓ_k) = decoder(broadcast(z_k))  per-slot means and mask logits; m = softmax_k(ℓ)
    L_t = −Σ_pixels log Σ_k m_k p(x | x̂_k, σ) + β·KL(q(z) ‖ N(0, I))
    λ ← λ + refine(inputs(λ, ∇_λ L_t, x̂, m, ...))   (or the gated form), for t < T
The loss is Σ_t (t/T)·L_t: later iterations count more, as in the paper. Gradients fed to the refinement
network are inputs, not part of the graph (no second-order terms), as in the release.

Slots start from the same λ⁰, so only the sampling noise tells them apart: evaluation samples too (all
slots decoding the posterior mean would stay identical forever), from a generator seeded per batch, so
scores are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from structae import clustering, metrics

# Refinement inputs (the paper's Table 3 / the release's `refinement_inputs`): images and maps, per slot...
SPATIAL_INPUTS = {"image": "C", "means": "C", "mask": 1, "mask_logits": 1, "grad_means": "C", "grad_mask": 1,
                  "likelihood": 1, "leave_one_out": 1, "coordinates": 2}
# ... and vectors per slot.
VECTOR_INPUTS = {"posterior": 2, "grad_posterior": 2}  # × latent
NORMALISED = {"grad_means", "grad_mask", "likelihood", "leave_one_out", "grad_posterior"}  # scale varies by 1e3
ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU}
UPDATES = ("additive", "gated")
POOLS = ("flatten", "average")
INITIALS = ("shared", "per_slot")
WEIGHT_INITS = ("torch", "release")
LIKELIHOODS = ("gaussian", "logistic")
SIGMA_SHIFT = math.log(math.e - 1)  # softplus⁻¹(1): the initial posterior has σ = 1, the prior's


@dataclass
class Config:
    slots: int = 4  # K (release: 7 CLEVR6, 6 Multi-dSprites, 4 Tetrominoes)
    iterations: int = 3  # T refinement passes (release: 5)
    latent: int = 16  # per slot (release: 64 CLEVR6, 16 Multi-dSprites, 32 Tetrominoes)
    decoder_width: int = 32  # channels of the broadcast decoder's convs (release: 64)
    decoder_layers: int = 3  # 3×3 convs before the 1×1 output (release: 4)
    coordinate_scale: float = 1.0  # the decoder's x, y span [−s, s] (paper, release: 1); a probe of docs/iodine.md
    refine_width: int = 32  # channels of the refinement convs (release: 64)
    refine_layers: int = 3  # stride-2 3×3 convs of the refinement network (release: 4)
    refine_hidden: int = 128  # its MLP and LSTM size (release: 256 CLEVR6, 128 Multi-dSprites and Tetrominoes)
    kernel_size: int = 3  # of the decoder's and the refinement's convs (release: 3 CLEVR6, 5 the others)
    refine_pool: str = "flatten"  # the refinement convs' map to its MLP: flatten | average (release: average)
    refine_lstm: bool = True  # the LSTM between MLP and head (release: none on Tetrominoes)
    update: str = "additive"  # additive: λ += Δλ (release); gated: λ = g·λ + (1 − g)·u (reimplementation notes)
    activation: str = "elu"  # elu (release) | relu: the ablation
    layer_norm: bool = True  # layer norm on gradient and likelihood inputs (release); off: the ablation
    inputs: tuple[str, ...] = tuple(SPATIAL_INPUTS) + tuple(VECTOR_INPUTS)  # any subset; see the ablations
    likelihood: str = "gaussian"  # pixel likelihood: gaussian (σ = sigma, the paper) | logistic (the release)
    sigma: float = 0.1  # global σ of the Gaussian pixel likelihood (paper: 0.1)
    logistic_scale: float = 0.03  # scale of the logistic pixel likelihood (release: 0.03)
    kl_weight: float = 1.0  # β of the KL term
    initial: str = "shared"  # λ⁰: shared by the slots (the paper) | per_slot (a symmetry-breaking probe)
    # Conv and linear weights' start: torch (PyTorch's U(±1/√fan_in), random biases) | release (Sonnet's, as
    # the release: N(0, 1/fan_in) truncated at 2σ, zero biases; about 1.5× larger). The LSTM keeps PyTorch's.
    weight_init: str = "torch"

    def __post_init__(self):
        unknown = set(self.inputs) - set(SPATIAL_INPUTS) - set(VECTOR_INPUTS)
        if unknown:
            raise ValueError(f"unknown refinement inputs {sorted(unknown)}; known: "
                             f"{', '.join([*SPATIAL_INPUTS, *VECTOR_INPUTS])}")
        if self.update not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(UPDATES)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        if self.slots == 1 and "leave_one_out" in self.inputs:
            raise ValueError("the leave_one_out input needs 2 or more slots (with one there is no other slot); "
                             "remove it from inputs or raise slots")
        if self.initial not in INITIALS:
            raise ValueError(f"initial must be one of {', '.join(INITIALS)}")
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {', '.join(WEIGHT_INITS)}")
        if self.refine_pool not in POOLS:
            raise ValueError(f"refine_pool must be one of {', '.join(POOLS)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd and positive (same-size convs)")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}")
        if min(self.slots, self.iterations, self.latent, self.decoder_width, self.decoder_layers,
               self.refine_width, self.refine_hidden) < 1 or self.refine_layers < 0:
            raise ValueError("slots, iterations, latent and the widths must be positive")
        if self.sigma <= 0 or self.logistic_scale <= 0 or self.coordinate_scale <= 0:
            raise ValueError("sigma, logistic_scale and coordinate_scale must be positive")


def release_init(modules) -> None:
    """Sonnet's default start, the release's: every conv and linear weight from N(0, 1/fan_in) truncated at
    2σ, biases 0. PyTorch's U(±1/√fan_in) has a standard deviation √3 times smaller and random biases."""
    for module in modules:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            std = 1 / math.sqrt(module.weight[0].numel())  # fan_in: in_channels·k·k, or in_features
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def coordinate_grid(height: int, width: int, device=None) -> torch.Tensor:
    """(2, H, W) x and y in [−1, 1]: what the broadcast decoder and the refinement network see of position."""
    ys = torch.linspace(-1, 1, height, device=device)
    xs = torch.linspace(-1, 1, width, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])


class BroadcastDecoder(nn.Module):
    """Spatial broadcast decoder (Watters et al. 2019): z tiled over the image plus coordinates, then
    same-size convs; outputs per-slot means (C channels) and a mask logit.

    Speed: the first conv never sees the tiled input. Over a constant map, a k×k conv with zero padding gives,
    at each pixel, the sum of W_o·z over the kernel offsets that fall inside the image: a (N·O, k²) × (k², H·W)
    product, k² instead of k²·(latent + 2) multiply-adds per output; the coordinates' part is the same for every
    slot and is computed once. Exactly the conv over the tiled input (a test checks it), about 10 % of a step."""

    def __init__(self, config: Config, channels: int, height: int, width: int):
        super().__init__()
        act, k = ACTIVATIONS[config.activation], config.kernel_size
        layers, c_in = [], config.latent + 2
        for _ in range(config.decoder_layers):
            layers += [nn.Conv2d(c_in, config.decoder_width, k, padding=k // 2), act(inplace=True)]
            c_in = config.decoder_width
        self.net = nn.Sequential(*layers, nn.Conv2d(c_in, channels + 1, 1))
        self.register_buffer("grid", coordinate_grid(height, width), persistent=False)
        self.coordinate_scale = config.coordinate_scale
        # inside[o, p]: whether kernel offset o of pixel p falls inside the image (F.unfold's order of offsets)
        inside = F.unfold(torch.ones(1, 1, height, width), k, padding=k // 2)[0]  # (k², H·W)
        self.register_buffer("inside", inside, persistent=False)

    def first_layer(self, z: torch.Tensor) -> torch.Tensor:
        """The first conv over [z tiled; coordinates]: (N, latent) -> (N, O, H, W)."""
        conv, (n, latent), (_, height, width) = self.net[0], z.shape, self.grid.shape
        weight = conv.weight  # (O, latent + 2, k, k)
        per_offset = z @ weight[:, :latent].flatten(2).permute(1, 0, 2).flatten(1)  # (N, O·k²): W_o,k·z
        tiled = (per_offset.view(-1, self.inside.shape[0]) @ self.inside).view(n, -1, height, width)
        coordinates = self.grid[None] * self.coordinate_scale
        return tiled + F.conv2d(coordinates, weight[:, latent:], conv.bias, padding=conv.padding)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (N, latent) -> means (N, C, H, W), mask logits (N, H, W)."""
        out = self.net[1:](self.first_layer(z))
        return out[:, :-1], out[:, -1]


class RefinementNetwork(nn.Module):
    """Spatial inputs -> stride-2 convs -> (flattened or averaged over the map) MLP; with the vector inputs ->
    LSTM (or straight on) -> the update of λ."""

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
        self.mlp = nn.Sequential(pool, nn.Flatten(), nn.Linear(features, config.refine_hidden), act()) \
            if spatial_channels else None
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


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalise each slot's input over all its non-batch dimensions (no learned scale, as the release)."""
    return F.layer_norm(x, x.shape[1:])


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


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per element."""
    return 0.5 * (mu ** 2 + sigma ** 2 - 1) - torch.log(sigma)


class Model(nn.Module):
    def __init__(self, config: Config, info):
        super().__init__()
        self.config = config
        c = info.channels
        sizes = {name: (c if size == "C" else size) for name, size in SPATIAL_INPUTS.items()}
        self.spatial = [name for name in SPATIAL_INPUTS if name in config.inputs]
        self.vector = [name for name in VECTOR_INPUTS if name in config.inputs]
        self.decoder = BroadcastDecoder(config, c, info.height, info.width)
        self.refine = RefinementNetwork(config, sum(sizes[n] for n in self.spatial),
                                        2 * config.latent * len(self.vector), info.height, info.width)
        initial = torch.cat([torch.zeros(config.latent), torch.full((config.latent,), SIGMA_SHIFT)])
        if config.initial == "per_slot":  # each slot its own λ⁰, apart from the start: not the paper's IODINE
            initial = initial.repeat(config.slots, 1)
            initial[:, :config.latent] = torch.randn(config.slots, config.latent)
        self.initial = nn.Parameter(initial)
        if config.weight_init == "release":
            release_init(self.modules())

    def _decode(self, lam: torch.Tensor, image: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """One decoding of posterior λ (B, K, 2L): means, masks, the loss terms per image. Noise comes from
        `generator` when given (evaluation), else from torch's stream (training)."""
        config, (batch, slots, _) = self.config, lam.shape
        mu, raw_sigma = lam.chunk(2, -1)
        sigma = F.softplus(raw_sigma) + 1e-4
        if generator is None:
            noise = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype)
        else:  # a CPU generator: the same samples whatever device evaluates (see clustering.batched_kmeans)
            noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        z = mu + sigma * noise
        means, logits = self.decoder(z.reshape(batch * slots, -1))
        means = means.view(batch, slots, *means.shape[1:])  # (B, K, C, H, W)
        logits = logits.view(batch, slots, *logits.shape[1:])  # (B, K, H, W)
        masks = torch.softmax(logits, 1)
        log_p = pixel_log_likelihood(image[:, None], means, config)  # (B, K, H, W)
        log_joint = torch.log(masks.clamp(min=1e-12)) + log_p
        nll = -torch.logsumexp(log_joint, 1).flatten(1).sum(1)  # (B,)
        kl = gaussian_kl(mu, sigma).flatten(1).sum(1)
        return {"means": means, "logits": logits, "masks": masks, "log_p": log_p, "log_joint": log_joint,
                "nll": nll, "kl": kl, "loss": nll + config.kl_weight * kl}

    def _inputs(self, image, lam, decoded, grads) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The refinement inputs the config switches on, per slot: (B·K, channels, H, W) and (B·K, size)."""
        batch, slots, channels, height, width = decoded["means"].shape
        norm = _layer_norm if self.config.layer_norm else (lambda x: x)

        def spatial(name):
            if name == "image":
                return image[:, None].expand(-1, slots, -1, -1, -1).reshape(batch * slots, channels, height, width)
            if name == "means":
                return decoded["means"].flatten(0, 1)
            if name == "mask":
                return decoded["masks"].flatten(0, 1)[:, None]
            if name == "mask_logits":
                return decoded["logits"].flatten(0, 1)[:, None]
            if name == "grad_means":
                return grads["means"].flatten(0, 1)
            if name == "grad_mask":
                return grads["masks"].flatten(0, 1)[:, None]
            if name == "likelihood":
                return decoded["log_p"].detach().flatten(0, 1)[:, None]
            if name == "leave_one_out":
                return _leave_one_out(decoded["log_joint"].detach(), decoded["masks"].detach()).flatten(0, 1)[:, None]
            return self.decoder.grid.expand(batch * slots, -1, -1, -1)  # coordinates

        def vector(name):
            return (lam if name == "posterior" else grads["lam"]).flatten(0, 1)

        maps = [norm(spatial(n)) if n in NORMALISED else spatial(n) for n in self.spatial]
        vecs = [norm(vector(n)) if n in NORMALISED else vector(n) for n in self.vector]
        return (torch.cat(maps, 1) if maps else None), (torch.cat(vecs, 1) if vecs else None)

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """Outputs after each of the T iterations: `losses` (T, B), and for evaluation `masks_per_iteration`
        (T, B, K, H, W) and `reconstructions` (T, B, C, H, W), detached; the last iteration's nll, kl (B,),
        means (B, K, C, H, W), masks (B, K, H, W), reconstruction (B, C, H, W) and posterior λ (B, K, 2L).
        Posterior samples come from `generator` when given, else in eval mode from a fixed seed (0), so figures
        are reproducible, and in training from torch's stream."""
        image = batch["image"]  # (B, C, H, W) in [0, 1]
        config, b = self.config, image.shape[0]
        lam = self.initial.expand(b, config.slots, -1)  # (2L,) shared or (K, 2L) per slot
        state = None
        if generator is None and not self.training:
            generator = torch.Generator().manual_seed(0)
        losses, masks, reconstructions = [], [], []
        with torch.enable_grad():  # the refinement inputs need ∇L also when evaluating under no_grad
            for t in range(config.iterations):
                if not self.training:
                    lam = lam.detach().requires_grad_()  # evaluation: no graph across iterations
                decoded = self._decode(lam, image, generator)
                losses.append(decoded["loss"])
                reconstruction = (decoded["masks"][:, :, None] * decoded["means"]).sum(1)  # (B, C, H, W)
                masks.append(decoded["masks"].detach())
                reconstructions.append(reconstruction.detach())
                if t == config.iterations - 1:
                    break
                wanted = [lam, decoded["means"], decoded["masks"]]
                g_lam, g_means, g_masks = torch.autograd.grad(decoded["loss"].sum(), wanted, retain_graph=True)
                grads = {"lam": g_lam, "means": g_means, "masks": g_masks}
                spatial, vector = self._inputs(image, lam, decoded, grads)
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


def _leave_one_out(log_joint: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """log p(x | every slot but k), per pixel: the other slots' mixture renormalised. (B, K, H, W)."""
    slots = log_joint.shape[1]
    others = log_joint[:, None].expand(-1, slots, -1, -1, -1).clone()  # [b, k, j]: slot j's term, for slot k
    others[:, torch.arange(slots), torch.arange(slots)] = float("-inf")
    return torch.logsumexp(others, 2) - torch.log((1 - masks).clamp(min=1e-12))


def loss(outputs: dict, batch: dict, config: Config) -> dict:
    """Σ_t (t/T)·L_t, averaged over images and divided by the pixels, so the learning rate does not depend
    on the image size; the logged nll and kl are the last iteration's, per image."""
    iterations = outputs["losses"].shape[0]
    weights = torch.arange(1, iterations + 1, dtype=outputs["losses"].dtype, device=outputs["losses"].device)
    pixels = batch["image"][0, 0].numel()
    total = (weights[:, None] / iterations * outputs["losses"]).sum(0).mean() / pixels
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
    """ARI with and without background, and MSE, after each iteration (…_t1, …_t2, …); the final
    iteration's without suffix; and the colour k-means baseline with as many clusters as slots."""
    settings = settings or EvalConfig()
    image, mask = batch["image"], batch["mask"]
    outputs = model(batch, torch.Generator().manual_seed(settings.seed))
    result = {}
    for t in range(config.iterations):
        segmentation = outputs["masks_per_iteration"][t].argmax(1)  # (B, H, W): each pixel's most likely slot
        scores = metrics.segmentation_ari(mask, segmentation)
        result[f"ari_fg_t{t + 1}"], result[f"ari_t{t + 1}"] = scores["ari_fg"], scores["ari"]
        error = metrics.squared_error_per_image(outputs["reconstructions"][t], image)
        result[f"mse_t{t + 1}"] = error / image[0].numel()
    last = config.iterations
    result.update(ari_fg=result[f"ari_fg_t{last}"], ari=result[f"ari_t{last}"], mse=result[f"mse_t{last}"])
    baseline = metrics.segmentation_ari(mask, color_kmeans(image, config.slots, settings.seed))
    result.update(baseline_ari_fg=baseline["ari_fg"], baseline_ari=baseline["ari"])
    return result
