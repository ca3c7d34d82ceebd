"""Evaluation metrics as pure functions on tensors: no model imports, batched, one value per image.

Shapes: B images, N pixels per image (any spatial layout flattened), C channels, K classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from structae.data.h5 import IGNORE_LABEL

BACKGROUND = 0


def adjusted_rand_index(true_labels: torch.Tensor, pred_labels: torch.Tensor,
                        valid: torch.Tensor | None = None) -> torch.Tensor:
    """ARI per image, equal to scikit-learn's `adjusted_rand_score` on each image's valid pixels.

    true_labels, pred_labels: (B, ...) integer labels >= 0 (any values; only equality matters).
    valid: (B, ...) bool, pixels to score; default all.
    Returns (B,) float64. An image whose pairs all agree (including one with fewer than two valid
    pixels) scores 1, as in scikit-learn.
    """
    batch = true_labels.shape[0]
    true_labels = true_labels.reshape(batch, -1).long()
    pred_labels = pred_labels.reshape(batch, -1).long()
    weights = torch.ones_like(true_labels) if valid is None else valid.reshape(batch, -1).long()
    # Contingency tables of all images at once: one bincount over (image, true, pred) cells.
    n_true = int(true_labels.max()) + 1 if true_labels.numel() else 1
    n_pred = int(pred_labels.max()) + 1 if pred_labels.numel() else 1
    image = torch.arange(batch, device=true_labels.device).unsqueeze(1)
    cell = (image * n_true + true_labels) * n_pred + pred_labels  # (B, N)
    contingency = torch.bincount(cell.flatten(), weights=weights.flatten().double(),
                                 minlength=batch * n_true * n_pred).double().reshape(batch, n_true, n_pred)
    # Pair counts as in sklearn.metrics.cluster.pair_confusion_matrix (doubled, like sklearn).
    n = contingency.sum((1, 2))
    sum_squares = (contingency ** 2).sum((1, 2))
    true_sizes = contingency.sum(2)  # (B, n_true)
    pred_sizes = contingency.sum(1)  # (B, n_pred)
    both = sum_squares - n  # pairs together in both labelings
    only_pred = (pred_sizes ** 2).sum(1) - sum_squares
    only_true = (true_sizes ** 2).sum(1) - sum_squares
    neither = n ** 2 - only_pred - only_true - sum_squares
    numerator = 2.0 * (both * neither - only_true * only_pred)
    denominator = (both + only_true) * (only_true + neither) + (both + only_pred) * (only_pred + neither)
    perfect = (only_true == 0) & (only_pred == 0)
    return torch.where(perfect, torch.ones_like(n), numerator / torch.where(perfect, 1.0, denominator))


def segmentation_ari(true_mask: torch.Tensor, pred_mask: torch.Tensor,
                     ignore_label: int = IGNORE_LABEL) -> dict[str, torch.Tensor]:
    """ARI with and without background for predicted segmentations.

    true_mask: (B, H, W) ground-truth labels, BACKGROUND = 0, `ignore_label` for unscored pixels.
    pred_mask: (B, H, W) predicted labels.
    Returns {"ari": (B,), "ari_fg": (B,)}: all scored pixels, and foreground pixels only (the
    metric IODINE and CAE report as ARI-FG / "ARI without background").
    """
    scored = true_mask != ignore_label
    return {
        "ari": adjusted_rand_index(true_mask, pred_mask, scored),
        "ari_fg": adjusted_rand_index(true_mask, pred_mask, scored & (true_mask != BACKGROUND)),
    }


def bce_per_image(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over each image's pixels and channels (nats).

    probabilities, target: (B, C, H, W) in [0, 1]. Returns (B,).
    Probabilities are clamped away from 0 and 1 the way torch's BCE clamps log to >= -100.
    """
    return F.binary_cross_entropy(probabilities, target, reduction="none").flatten(1).sum(1)


def bce_with_logits_per_image(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """As `bce_per_image`, from logits (numerically stable). logits, target: (B, C, H, W). Returns (B,)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


def squared_error_per_image(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors over each image. reconstruction, target: (B, C, H, W). Returns (B,)."""
    return (reconstruction - target).pow(2).flatten(1).sum(1)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """1.0 where the arg-max class is the label. logits (B, K), labels (B,). Returns (B,)."""
    return (logits.argmax(1) == labels).double()
