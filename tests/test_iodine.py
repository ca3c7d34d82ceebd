"""IODINE's parts against their definitions and the release's (deepmind-research/iodine): likelihoods, the
refinement inputs, T + 1 decodes and their weights, the loss's scale, the posterior, prior and start,
switchable inputs and ablations, deterministic evaluation and the colour k-means baseline."""

import math

import pytest
import torch
from scipy import stats

from structae import metrics
from structae.data.info import DataInfo
from structae.models import iodine

INFO = DataInfo(channels=3, height=16, width=16, n_images=8, max_objects=2, factors=())
SMALL = dict(slots=3, iterations=3, latent=4, decoder_width=8, decoder_layers=2, refine_width=8, refine_layers=2,
             refine_hidden=16)


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(4, 3, 16, 16, generator=generator),
            "mask": torch.randint(0, 3, (4, 16, 16), generator=generator)}


def test_pixel_likelihoods_are_the_gaussian_and_logistic_densities():
    image, means = torch.rand(2, 1, 3, 4, 4), torch.rand(2, 3, 3, 4, 4)
    gaussian = iodine.pixel_log_likelihood(image, means, iodine.Config(likelihood="gaussian", sigma=0.2))
    expected = torch.distributions.Normal(means, 0.2).log_prob(image).sum(2)
    torch.testing.assert_close(gaussian, expected)
    logistic = iodine.pixel_log_likelihood(image, means, iodine.Config(likelihood="logistic", logistic_scale=0.05))
    reference = stats.logistic.logpdf(image.double().numpy(), loc=means.double().numpy(), scale=0.05).sum(2)
    torch.testing.assert_close(logistic.double(), torch.from_numpy(reference), rtol=1e-5, atol=1e-4)


def test_leave_one_out_is_the_mixture_of_the_other_slots_renormalised():
    logits, log_p = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    masks = torch.softmax(logits, 1)
    result = iodine.leave_one_out(log_p, logits)
    for k in range(3):
        others = [j for j in range(3) if j != k]
        direct = (masks[:, others] * log_p[:, others].exp()).sum(1) / masks[:, others].sum(1)
        torch.testing.assert_close(result[:, k], torch.log(direct), rtol=1e-5, atol=1e-5)


def test_likelihood_inputs_are_the_releases_quantities():
    """The likelihood input is the mixture's log p(x) (one map per image), the leave-one-out input log p(x) minus
    the other slots' log p, and the mask posterior p_k / (Σ_j p_j + 1e-6): the release's log_prob,
    counterfactual and posterior. Before, the first two were per-slot log p_k and the other slots' log p alone,
    and the third was missing."""
    torch.manual_seed(0)
    config = iodine.Config(**SMALL, layer_norm=False)
    model = iodine.Model(config, INFO)
    batch = _batch()
    lam = model.initial.expand(4, 3, -1).clone().requires_grad_()
    decoded = model._decode(lam, batch["image"])
    spatial, _ = model._inputs(batch["image"], lam, decoded, iodine.refinement_gradients(lam, decoded))
    channels = {name: model.sizes[name] for name in model.spatial}
    maps = dict(zip(model.spatial, spatial.view(4, 3, -1, 16, 16).split(list(channels.values()), 2), strict=True))
    p = decoded["log_p"].double().exp()  # (B, K, H, W)
    masks = torch.softmax(decoded["logits"].double(), 1)
    mixture = (masks * p).sum(1)
    torch.testing.assert_close(maps["likelihood"][:, :, 0].double(), mixture.log()[:, None].expand(-1, 3, -1, -1),
                               rtol=1e-4, atol=1e-4)
    for k in range(3):
        others = [j for j in range(3) if j != k]
        rest = (masks[:, others] * p[:, others]).sum(1) / masks[:, others].sum(1)
        torch.testing.assert_close(maps["leave_one_out"][:, k, 0].double(), mixture.log() - rest.log(),
                                   rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(maps["mask_posterior"][:, :, 0].double(), p / (p.sum(1, keepdim=True) + 1e-6),
                               rtol=1e-4, atol=1e-6)


def test_the_mask_gradient_input_is_taken_with_respect_to_the_logits():
    """On a constructed scene, ∂L/∂ℓ_k of the batch-mean loss is (m_k − r_k)/B, r the responsibilities: bounded.
    The gradient w.r.t. the mask probabilities, which the model fed before, is −r_k/(m_k·B) and grows without
    bound where a mask is near 0."""
    torch.manual_seed(0)
    model = iodine.Model(iodine.Config(**SMALL), INFO)
    batch = _batch()
    lam = model.initial.expand(4, 3, -1).clone().requires_grad_()
    decoded = model._decode(lam, batch["image"])
    grads = iodine.refinement_gradients(lam, decoded)
    log_joint = torch.log_softmax(decoded["logits"], 1) + decoded["log_p"]
    responsibilities = torch.softmax(log_joint, 1)
    torch.testing.assert_close(grads["logits"], ((decoded["masks"] - responsibilities) / 4).detach(),
                               rtol=1e-4, atol=1e-7)
    assert grads["logits"].abs().max() <= 1 / 4 + 1e-6


def test_one_refinement_more_than_the_passes_the_release_counts():
    """`iterations` T counts refinements, as the release's num_iters: T + 1 decodes, T refinement calls."""
    torch.manual_seed(0)
    model = iodine.Model(iodine.Config(**SMALL), INFO)
    calls = {"decoder": 0, "refine": 0}
    model.decoder.register_forward_hook(lambda *_: calls.__setitem__("decoder", calls["decoder"] + 1))
    model.refine.register_forward_hook(lambda *_: calls.__setitem__("refine", calls["refine"] + 1))
    outputs = model(_batch())
    assert calls == {"decoder": 4, "refine": 3} and outputs["losses"].shape == (4, 4)


def test_the_pass_weights_are_the_releases_linspace_and_the_loss_is_summed_over_pixels():
    """w_t = t/T over the T + 1 decodes (the decode of λ⁰ weighs 0), and the loss is the per-image loss summed
    over pixels, averaged over images: the scale the release clips at norm 5. Before, T decodes weighed t/T
    from 1/T and the loss was divided by the pixels (a clip a thousand times looser at 32×32)."""
    torch.testing.assert_close(iodine.pass_weights(3), torch.tensor([0, 1 / 3, 2 / 3, 1]))
    outputs = {"losses": torch.tensor([[9.0, 9.0], [4.0, 8.0], [2.0, 2.0], [1.0, 3.0]]), "nll": torch.zeros(2),
               "kl": torch.zeros(2), "reconstruction": torch.zeros(2, 3, 2, 5)}
    batch = {"image": torch.zeros(2, 3, 2, 5)}
    expected = 0 * 9.0 + (1 / 3) * 6.0 + (2 / 3) * 2.0 + 1.0 * 2.0
    assert iodine.loss(outputs, batch, iodine.Config(iterations=3))["loss"].item() == pytest.approx(expected)


def test_posterior_prior_and_start_are_the_releases():
    """σ² = softplus(s) (scale "var"), the prior N(0, softplus(0)), λ⁰ from TF's glorot_uniform for a vector."""
    raw = torch.tensor([-2.0, 0.0, 3.0])
    torch.testing.assert_close(iodine.posterior_sigma(raw) ** 2, torch.nn.functional.softplus(raw))
    mu, sigma = torch.tensor([0.5, -1.0, 0.0]), torch.tensor([0.3, 1.2, 0.8])
    prior = torch.distributions.Normal(0.0, math.sqrt(math.log(2)))
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mu, sigma), prior)
    torch.testing.assert_close(iodine.gaussian_kl(mu, sigma), expected)
    torch.manual_seed(0)
    start = iodine.initial_posterior(iodine.Config(latent=16))
    bound = math.sqrt(3 / 32)
    assert start.shape == (32,) and start.abs().max() <= bound and start.abs().max() > 0.8 * bound


def test_cosine_coordinates_are_the_releases_basis():
    grid = iodine.cosine_grid(5, 7)
    assert grid.shape == (8, 5, 7)
    u, v = torch.linspace(0, math.pi, 7), torch.linspace(0, math.pi, 5)
    torch.testing.assert_close(grid[0], torch.cos(v)[:, None].expand(5, 7))  # f_x 0, f_y 1
    torch.testing.assert_close(grid[2], torch.cos(u)[None].expand(5, 7))  # f_x 1, f_y 0
    torch.testing.assert_close(grid[7], (torch.cos(2 * u)[None] * torch.cos(2 * v)[:, None]))


def test_layer_norm_has_the_release_s_learned_scale_and_offset():
    """snt.LayerNorm: a gain (start 1) and an offset (start 0) per channel, trained; none without layer_norm."""
    model = iodine.Model(iodine.Config(**SMALL), INFO)
    assert sorted(model.norm_scale) == sorted(iodine.NORMALISED)
    assert model.norm_scale["grad_means"].shape == (3,) and model.norm_offset["grad_posterior"].shape == (8,)
    batch = _batch()
    iodine.loss(model(batch), batch, model.config)["loss"].backward()
    assert model.norm_scale["grad_mask"].grad.abs().sum() > 0
    assert len(iodine.Model(iodine.Config(**SMALL, layer_norm=False), INFO).norm_scale) == 0


@pytest.mark.parametrize("changes", [{}, {"inputs": ["posterior", "grad_posterior"]}, {"inputs": ["image", "means"]},
                                     {"update": "gated", "activation": "relu", "layer_norm": False},
                                     {"likelihood": "gaussian"}, {"refine_coordinates": "cos", "refine_mlp_layers": 2},
                                     {"kernel_size": 5, "refine_pool": "flatten", "refine_lstm": False},
                                     {"initial": "per_slot"}, {"weight_init": "torch"}])
def test_every_input_set_and_ablation_trains_and_refines(changes):
    config = iodine.Config(**SMALL, **changes)
    torch.manual_seed(0)
    model = iodine.Model(config, INFO)
    batch = _batch()
    outputs = model(batch)
    assert outputs["losses"].shape == (4, 4) and outputs["masks_per_iteration"].shape == (4, 4, 3, 16, 16)
    iodine.loss(outputs, batch, config)["loss"].backward()
    grads = [p.grad for p in model.refine.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)  # refinement is trained
    model.eval()
    with torch.no_grad():
        first, second = iodine.evaluate(model, batch, config), iodine.evaluate(model, batch, config)
    for key in first:
        torch.testing.assert_close(first[key], second[key], equal_nan=True)  # posterior means: deterministic
    assert {"ari_fg", "ari", "mse", "ari_fg_t0", "ari_fg_t1", "mse_t3", "baseline_ari_fg"} <= set(first)
    assert "ari_fg_t4" not in first


def test_colour_kmeans_baseline_separates_uniform_colour_regions():
    image = torch.zeros(1, 3, 8, 8)
    image[0, 0, :4] = 1.0  # a red band
    image[0, 2, :, 6:] = 0.5  # a blue band crossing it
    truth = torch.zeros(1, 8, 8, dtype=torch.long)
    truth[0, :4], truth[0, :, 6:] = 1, 2
    truth[0, :4, 6:] = 3  # red and blue together is a colour of its own
    labels = iodine.color_kmeans(image, 4)
    assert metrics.adjusted_rand_index(truth, labels).item() == pytest.approx(1.0)




@pytest.mark.parametrize("kernel, coordinate_scale", [(3, 1.0), (5, 1.0), (3, 8.0)])
def test_broadcast_decoder_equals_the_conv_over_the_tiled_latent(kernel, coordinate_scale):
    """The decoder's first layer is computed without tiling (a speed-up); it must be that conv over [z, 5, x, y]
    (the release appends a constant 5 to z), value and gradient, borders included (non-square, so rows and
    columns cannot be swapped unnoticed), over x, y in [−s, s] for coordinate_scale s."""
    config = iodine.Config(**SMALL, kernel_size=kernel, coordinate_scale=coordinate_scale)
    decoder = iodine.BroadcastDecoder(config, 3, 6, 9).double()
    z = torch.randn(5, SMALL["latent"], dtype=torch.double, requires_grad=True)
    coordinates = coordinate_scale * iodine.coordinate_grid(6, 9).double()
    constant = torch.full((5, 1, 6, 9), 5.0, dtype=torch.double)
    tiled = torch.cat([z[:, :, None, None].expand(-1, -1, 6, 9), constant, coordinates.expand(5, -1, -1, -1)], 1)
    expected = decoder.net[0](tiled)
    result = decoder.first_layer(z)
    torch.testing.assert_close(result, expected)
    grad_fast, = torch.autograd.grad(result.square().sum(), z)
    grad_tiled, = torch.autograd.grad(expected.square().sum(), z)
    torch.testing.assert_close(grad_fast, grad_tiled)


def test_one_slot_without_others_is_refused_with_the_leave_one_out_input():
    with pytest.raises(ValueError, match="leave_one_out input needs 2 or more slots"):
        iodine.Config(slots=1)
    iodine.Config(slots=1, inputs=("image", "means", "mask", "grad_means", "posterior", "grad_posterior"))


def test_the_release_start_draws_weights_from_the_truncated_normal_with_zero_biases():
    torch.manual_seed(0)
    model = iodine.Model(iodine.Config(**SMALL, weight_init="release"), INFO)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 2 + 1 + 2 + 1 + 1  # decoder convs and output, refinement convs, MLP and head
    for layer in layers:
        std = layer.weight[0].numel() ** -0.5
        assert layer.weight.abs().max() <= 2 * std and not layer.bias.any()
        # N(0, std²) truncated at ±2σ has a standard deviation of 0.88·std; PyTorch's start has 0.58·std
        assert 0.7 * std < layer.weight.std() < 1.05 * std
    lstm, hidden = model.refine.core, SMALL["refine_hidden"]
    std = (lstm.input_size + hidden) ** -0.5  # snt.LSTM: one matrix over [input, hidden], biases drawn alike
    assert lstm.weight_ih.abs().max() <= 2 * std and lstm.weight_hh.abs().max() <= 2 * std
    assert 0.7 * std < torch.cat([lstm.weight_ih, lstm.weight_hh], 1).std() < 1.05 * std
    torch.testing.assert_close(lstm.bias_hh[hidden:2 * hidden], torch.ones(hidden))  # forget_bias=1.0
    assert lstm.bias_ih.abs().max() <= 2 * std and lstm.bias_ih.abs().max() > 0
    with pytest.raises(ValueError, match="weight_init must be one of torch, release"):
        iodine.Config(weight_init="sonnet")
