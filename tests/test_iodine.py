"""IODINE's parts against their definitions: likelihoods, the leave-one-out mixture, the iteration-weighted
loss, switchable refinement inputs, deterministic evaluation and the colour k-means baseline."""

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
    gaussian = iodine.pixel_log_likelihood(image, means, iodine.Config(sigma=0.2))
    expected = torch.distributions.Normal(means, 0.2).log_prob(image).sum(2)
    torch.testing.assert_close(gaussian, expected)
    logistic = iodine.pixel_log_likelihood(image, means, iodine.Config(likelihood="logistic", logistic_scale=0.05))
    reference = stats.logistic.logpdf(image.double().numpy(), loc=means.double().numpy(), scale=0.05).sum(2)
    torch.testing.assert_close(logistic.double(), torch.from_numpy(reference), rtol=1e-5, atol=1e-4)


def test_leave_one_out_is_the_mixture_of_the_other_slots():
    masks = torch.softmax(torch.randn(2, 3, 4, 4), 1)
    log_p = torch.randn(2, 3, 4, 4)
    log_joint = torch.log(masks) + log_p
    result = iodine._leave_one_out(log_joint, masks)
    for k in range(3):
        others = [j for j in range(3) if j != k]
        direct = (masks[:, others] * log_p[:, others].exp()).sum(1) / masks[:, others].sum(1)
        torch.testing.assert_close(result[:, k], torch.log(direct), rtol=1e-5, atol=1e-5)


def test_loss_weights_later_iterations_more():
    outputs = {"losses": torch.tensor([[4.0, 8.0], [2.0, 2.0], [1.0, 3.0]]), "nll": torch.zeros(2),
               "kl": torch.zeros(2), "reconstruction": torch.zeros(2, 3, 2, 5)}
    batch = {"image": torch.zeros(2, 3, 2, 5)}
    expected = ((1 / 3) * 6.0 + (2 / 3) * 2.0 + 1.0 * 2.0) / 10
    assert iodine.loss(outputs, batch, iodine.Config(iterations=3))["loss"].item() == pytest.approx(expected)


@pytest.mark.parametrize("changes", [{}, {"inputs": ["posterior", "grad_posterior"]}, {"inputs": ["image", "means"]},
                                     {"update": "gated", "activation": "relu", "layer_norm": False},
                                     {"likelihood": "logistic"},
                                     {"kernel_size": 5, "refine_pool": "average", "refine_lstm": False},
                                     {"initial": "per_slot"}, {"weight_init": "release"}])
def test_every_input_set_and_ablation_trains_and_refines(changes):
    config = iodine.Config(**SMALL, **changes)
    torch.manual_seed(0)
    model = iodine.Model(config, INFO)
    batch = _batch()
    outputs = model(batch)
    assert outputs["losses"].shape == (3, 4) and outputs["masks_per_iteration"].shape == (3, 4, 3, 16, 16)
    iodine.loss(outputs, batch, config)["loss"].backward()
    grads = [p.grad for p in model.refine.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)  # refinement is trained
    model.eval()
    with torch.no_grad():
        first, second = iodine.evaluate(model, batch, config), iodine.evaluate(model, batch, config)
    for key in first:
        torch.testing.assert_close(first[key], second[key], equal_nan=True)  # posterior means: deterministic
    assert {"ari_fg", "ari", "mse", "ari_fg_t1", "mse_t3", "baseline_ari_fg"} <= set(first)


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
    """The decoder's first layer is computed without tiling (a speed-up); it must be that conv, value and
    gradient, borders included (non-square, so rows and columns cannot be swapped unnoticed), over x, y in
    [−s, s] for coordinate_scale s."""
    config = iodine.Config(**SMALL, kernel_size=kernel, coordinate_scale=coordinate_scale)
    decoder = iodine.BroadcastDecoder(config, 3, 6, 9).double()
    z = torch.randn(5, SMALL["latent"], dtype=torch.double, requires_grad=True)
    coordinates = coordinate_scale * iodine.coordinate_grid(6, 9).double()
    tiled = torch.cat([z[:, :, None, None].expand(-1, -1, 6, 9), coordinates.expand(5, -1, -1, -1)], 1)
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
    assert len(layers) == 2 + 1 + 2 + 1 + 1  # decoder convs and 1×1 output, refinement convs, MLP and head
    for layer in layers:
        std = layer.weight[0].numel() ** -0.5
        assert layer.weight.abs().max() <= 2 * std and not layer.bias.any()
        # N(0, std²) truncated at ±2σ has a standard deviation of 0.88·std; PyTorch's start has 0.58·std
        assert 0.7 * std < layer.weight.std() < 1.05 * std
    with pytest.raises(ValueError, match="weight_init must be one of torch, release"):
        iodine.Config(weight_init="sonnet")
