"""Metrics against scikit-learn and hand-computed values."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, adjusted_rand_score

from structae import metrics
from structae.data.h5 import IGNORE_LABEL


@pytest.mark.parametrize("n_true,n_pred", [(2, 2), (4, 7), (7, 3), (12, 12)])
def test_ari_matches_sklearn_on_random_labelings(n_true, n_pred):
    generator = torch.Generator().manual_seed(n_true * 100 + n_pred)
    true = torch.randint(0, n_true, (40, 16, 16), generator=generator)
    pred = torch.randint(0, n_pred, (40, 16, 16), generator=generator)
    pred[:10] = true[:10] * 3 + 1  # some near-perfect images, relabelled
    pred[5:10, :4] = 0
    valid = torch.rand(40, 16, 16, generator=generator) > 0.2
    ours = metrics.adjusted_rand_index(true, pred, valid).numpy()
    reference = [adjusted_rand_score(t[v].numpy(), p[v].numpy()) for t, p, v in zip(true, pred, valid, strict=True)]
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize("true,pred", [
    ([0, 0, 0, 0], [0, 0, 0, 0]),  # one cluster each: perfect
    ([0, 1, 2, 3], [5, 6, 7, 8]),  # all singletons: perfect
    ([0, 0, 0, 0], [0, 1, 2, 3]),  # one against singletons: 0
    ([0, 0, 1, 1], [0, 1, 0, 1]),  # anti-correlated: negative
    ([3], [1]),  # a single pixel
])
def test_ari_special_cases_match_sklearn(true, pred):
    ours = metrics.adjusted_rand_index(torch.tensor([true]), torch.tensor([pred]))
    assert ours.item() == pytest.approx(adjusted_rand_score(true, pred), abs=1e-12)


def test_segmentation_ari_ignores_marked_pixels_and_background_for_fg():
    true = torch.tensor([[[0, 0, 1, 1], [0, 2, 2, IGNORE_LABEL]]])
    pred = torch.tensor([[[4, 5, 1, 1], [4, 2, 2, 9]]])
    scores = metrics.segmentation_ari(true, pred)
    keep = (true != IGNORE_LABEL).flatten()
    fg = keep & (true != 0).flatten()
    assert scores["ari"].item() == pytest.approx(adjusted_rand_score(true.flatten()[keep], pred.flatten()[keep]))
    assert scores["ari_fg"].item() == pytest.approx(1.0)  # foreground objects are split exactly right
    assert adjusted_rand_score(true.flatten()[fg], pred.flatten()[fg]) == pytest.approx(1.0)
    assert scores["ari"].item() < 1.0  # the background was split in two


def test_bce_per_image_sums_over_pixels():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 5, 5, generator=generator)
    target = torch.rand(3, 2, 5, 5, generator=generator)
    expected = torch.stack([F.binary_cross_entropy_with_logits(lg, t, reduction="sum")
                            for lg, t in zip(logits, target, strict=True)])
    torch.testing.assert_close(metrics.bce_with_logits_per_image(logits, target), expected)
    torch.testing.assert_close(metrics.bce_per_image(torch.sigmoid(logits), target), expected, rtol=1e-4, atol=1e-4)


def test_accuracy_matches_sklearn():
    generator = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(50, 10, generator=generator), torch.randint(0, 10, (50,), generator=generator)
    ours = metrics.accuracy(logits, labels).mean().item()
    assert ours == pytest.approx(accuracy_score(labels.numpy(), logits.argmax(1).numpy()))


@pytest.mark.parametrize("chunk_pixels", [1, 100, 1 << 20])
def test_ari_is_the_same_in_any_number_of_chunks(chunk_pixels, monkeypatch):
    monkeypatch.setattr(metrics, "CHUNK_PIXELS", chunk_pixels)
    generator = torch.Generator().manual_seed(7)
    true = torch.randint(0, 5, (9, 12, 12), generator=generator)
    true[:, :2] = IGNORE_LABEL
    pred = torch.randint(0, 4, (9, 12, 12), generator=generator)
    scores = metrics.segmentation_ari(true, pred)
    for i in range(9):
        keep = true[i] != IGNORE_LABEL
        fg = keep & (true[i] != 0)
        assert scores["ari"][i].item() == pytest.approx(adjusted_rand_score(true[i][keep], pred[i][keep]), abs=1e-9)
        assert scores["ari_fg"][i].item() == pytest.approx(adjusted_rand_score(true[i][fg], pred[i][fg]), abs=1e-9)


def test_objects_apart_asks_whether_each_object_has_a_segment_of_its_own():
    truth = torch.zeros(4, 2, 4, dtype=torch.long)
    truth[:, 0, :2], truth[:, 0, 2:] = 1, 2  # two objects side by side in the top row
    truth[3, 0, 2:] = 0  # the last scene has one object only
    pred = torch.zeros(4, 2, 4, dtype=torch.long)
    pred[0, 0, :2], pred[0, 0, 2:] = 1, 2  # apart
    pred[1, 0, :] = 1  # both in segment 1
    pred[2, 0, :3], pred[2, 0, 3] = 1, 2  # object 2's pixels: one in 1, one in 2: a tie goes to segment 1
    result = metrics.objects_apart(truth, pred)
    assert result[:3].tolist() == [1.0, 0.0, 0.0] and torch.isnan(result[3])
