"""CAE parts against references: the complex layer against complex arithmetic, batched k-means against
scikit-learn, the phase statistics on known phases, and every pooling's gradient."""

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from structae import clustering
from structae.data.h5 import IGNORE_LABEL
from structae.data.info import DataInfo
from structae.models import cae


def test_complex_layer_is_the_papers_formula():
    torch.manual_seed(0)
    layer = cae.conv(3, 4, 1)
    layer.phase_bias.data.uniform_(-1, 1)
    layer.norm = torch.nn.Identity()
    magnitude, phase = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5) * 6 - 3
    z = torch.polar(magnitude, phase)
    psi = layer.map(z.real) + 1j * layer.map(z.imag)
    chi = layer.map(z.abs())
    expected_magnitude = torch.relu(0.5 * (psi.abs() + layer.magnitude_bias) + 0.5 * (chi + layer.magnitude_bias))
    expected_phase = psi.angle() + layer.phase_bias
    out = layer(cae.Activation(magnitude, torch.cos(phase), torch.sin(phase)))
    torch.testing.assert_close(out.magnitude, expected_magnitude, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.cos, torch.cos(expected_phase), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.sin, torch.sin(expected_phase), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["torch", "sklearn"])
def test_batched_kmeans_finds_what_sklearn_finds(method):
    rng = np.random.default_rng(0)
    k = torch.tensor([2, 3, 4, 1])
    points, truth = [], []
    for n_clusters in k.tolist():
        centres = rng.uniform(-5, 5, (n_clusters, 2))
        labels = rng.integers(0, n_clusters, 300)
        points.append(centres[labels] + rng.normal(0, 0.05, (300, 2)))
        truth.append(labels)
    points = torch.tensor(np.stack(points))
    valid = torch.ones(4, 300, dtype=torch.bool)
    valid[:, :20] = False  # excluded points neither move centres nor count
    ours = clustering.batched_kmeans(points, k, valid, 30, 3, torch.Generator().manual_seed(0), method=method)
    for b, n_clusters in enumerate(k.tolist()):
        reference = KMeans(n_clusters=n_clusters, n_init=3, random_state=0).fit_predict(points[b, 20:].numpy())
        assert adjusted_rand_score(reference, ours[b, 20:].numpy()) == pytest.approx(1.0)
        assert ours[b].max() < n_clusters
        # an excluded point takes the label of its nearest centre, i.e. of the cluster it sits in
        assert adjusted_rand_score(truth[b], ours[b].numpy()) == pytest.approx(1.0)


def test_kmeans_iterations_are_lloyds_from_the_seeded_centres():
    """Converged images leave the batch and distances are summed coordinate by coordinate (speed-ups): the labels
    must still be plain Lloyd iterations, image by image, from the k-means++ centres, up to the cap."""
    points = torch.rand(6, 150, 3, generator=torch.Generator().manual_seed(1))
    k, valid = torch.tensor([1, 2, 3, 4, 5, 6]), torch.ones(6, 150, dtype=torch.bool)
    ours = clustering.batched_kmeans(points, k, valid, 8, 1, torch.Generator().manual_seed(3), method="torch")
    seeds = clustering._kmeans_plus_plus(points, valid, 6, torch.Generator().manual_seed(3))
    for image, clusters in enumerate(k.tolist()):
        cloud, centres = points[image].double(), seeds[image, :clusters].double()
        labels = None
        for _ in range(8):
            new = torch.cdist(cloud, centres).argmin(1)
            if labels is not None and torch.equal(new, labels):
                break
            labels = new
            centres = torch.stack([cloud[labels == j].mean(0) if (labels == j).any() else centres[j]
                                   for j in range(clusters)])
        assert torch.equal(ours[image], labels)


def test_phase_separation_on_known_phases():
    phase = torch.zeros(2, 4, 4)
    phase[:, :, 2:] = math.pi / 2  # object 2 a quarter turn from object 1
    mask = torch.ones(2, 4, 4, dtype=torch.long)
    mask[:, :, 2:] = 2
    mask[1, 0] = 0  # background does not count
    mask[1, 1, 1] = IGNORE_LABEL
    phase[1, 0] = 3.0
    result = cae.phase_separation(phase, torch.ones(2, 4, 4), mask, threshold=0.1)
    torch.testing.assert_close(result["phase_gap"], torch.full((2,), math.pi / 2))
    torch.testing.assert_close(result["phase_spread"], torch.zeros(2), atol=1e-6, rtol=0)
    one_object = cae.phase_separation(phase, torch.ones(2, 4, 4), torch.ones(2, 4, 4, dtype=torch.long), 0.1)
    assert torch.isnan(one_object["phase_gap"]).all()


@pytest.mark.parametrize("pooling", cae.POOLINGS)
def test_pooling_shapes_the_gradient(pooling):
    """The reconstruction depends on the pooled phase; max pooling's gradient reaches one channel only,
    hardmax's reaches every channel through the softmax (the straight-through estimator)."""
    torch.manual_seed(0)
    phase = (torch.rand(1, 3, 2, 2) * 6 - 3).requires_grad_()
    magnitude = torch.tensor([3.0, 1.0, 2.0]).view(1, 3, 1, 1).repeat(1, 1, 2, 2).requires_grad_()
    readout = torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1)  # channels read differently, as the 1×1 conv does

    def gradients(detach_pool: bool) -> torch.Tensor:
        output = cae.Activation(magnitude, torch.cos(phase), torch.sin(phase))
        cos, sin = cae.pool_phase(output, pooling, temperature=1.0)
        if detach_pool:
            cos, sin = cos.detach(), sin.detach()
        phase.grad = magnitude.grad = None
        (readout * magnitude * (output.cos * cos + output.sin * sin)).sum().backward()
        return (phase.grad.abs() + magnitude.grad.abs()).sum((0, 2, 3))

    through_pool = (gradients(False) - gradients(True)).abs() > 1e-6  # per channel
    assert through_pool.tolist() == ([True, False, False] if pooling == "max" else [True, True, True])
    if pooling in ("max", "hardmax"):  # forward: exactly the strongest channel's phase
        cos, sin = cae.pool_phase(cae.Activation(magnitude, torch.cos(phase), torch.sin(phase)), pooling, 1.0)
        torch.testing.assert_close(torch.atan2(sin, cos)[:, 0], phase[:, 0].detach())


def test_forward_shapes_and_grayscale_reads_magnitude_only():
    info = DataInfo(channels=1, height=32, width=32, n_images=4, max_objects=2, factors=())
    model = cae.Model(cae.Config(hidden=4, linear=8), info)
    outputs = model({"image": torch.rand(4, 1, 32, 32)})
    assert outputs["reconstruction"].shape == (4, 1, 32, 32)
    assert outputs["phase"].shape == outputs["magnitude"].shape == (4, 32, 32)
    with pytest.raises(ValueError, match="divisible by 8"):
        cae.Model(cae.Config(), DataInfo(1, 28, 28, 4, 1, ()))


@pytest.mark.parametrize("channels", [1, 3])
def test_output_bias_starts_every_pixel_at_its_sigmoid_where_magnitudes_vanish(channels):
    """output_bias is the 1×1 output conv's initial bias: a pixel whose output magnitude is 0 reconstructs
    as sigmoid(output_bias); the default 0 is the official code's 0.5."""
    info = DataInfo(channels=channels, height=8, width=8, n_images=2, max_objects=1, factors=())
    for bias in (0.0, -4.0):
        model = cae.Model(cae.Config(hidden=2, linear=4, output_bias=bias), info)
        aligned = torch.zeros(2, channels, 8, 8)
        expected = torch.full_like(aligned, torch.sigmoid(torch.tensor(bias)).item())
        torch.testing.assert_close(torch.sigmoid(model.output(aligned)), expected)


def test_magnitude_output_head_reconstructs_with_the_output_magnitudes_themselves():
    """output_head "magnitude" (CAE++) has no 1×1 conv and no sigmoid: with one channel, φ* = φ and each pixel
    reconstructs as its output magnitude."""
    info = DataInfo(channels=1, height=8, width=8, n_images=2, max_objects=1, factors=())
    model = cae.Model(cae.Config(hidden=2, linear=4, output_head="magnitude"), info)
    assert not hasattr(model, "output")
    outputs = model({"image": torch.rand(2, 1, 8, 8)})
    torch.testing.assert_close(outputs["reconstruction"][:, 0], outputs["magnitude"])
    with pytest.raises(ValueError, match="output_head must be one of"):
        cae.Config(output_head="tanh")
