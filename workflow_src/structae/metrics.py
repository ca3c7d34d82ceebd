"""Evaluation metrics as pure functions on tensors: no model imports, batched, one value per image.

Shapes: B images, N pixels per image (any spatial layout flattened), C channels, K classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from structae.data.h5 import IGNORE_LABEL

BACKGROUND = 0


CHUNK_PIXELS = 1 << 20  # pixels per pass: temporaries stay a few MB, reused by malloc instead of page-faulted


def contingency_tables(true_labels: torch.Tensor, pred_labels: torch.Tensor,
                       valid: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image contingency tables: counts[b, i, j] = valid pixels of image b with true label i, predicted j.

    true_labels, pred_labels: (B, ...) integer labels >= 0; valid: (B, ...) bool or None (all valid).
    Returns (B, max true + 1, max pred + 1) float64.
    """
    batch = true_labels.shape[0]
    true_labels, pred_labels = true_labels.reshape(batch, -1), pred_labels.reshape(batch, -1)
    valid = None if valid is None else valid.reshape(batch, -1)
    n_true = int(true_labels.max()) + 1 if true_labels.numel() else 1
    n_pred = int(pred_labels.max()) + 1 if pred_labels.numel() else 1
    step = max(1, CHUNK_PIXELS // max(1, true_labels.shape[1]))
    tables = [_count_cells(true_labels[i:i + step], pred_labels[i:i + step],
                           None if valid is None else valid[i:i + step], n_true, n_pred)
              for i in range(0, batch, step)]
    return torch.cat(tables) if tables else torch.zeros(0, n_true, n_pred, dtype=torch.float64)


def _count_cells(true_labels, pred_labels, valid, n_true: int, n_pred: int) -> torch.Tensor:
    """One bincount over the (image, true, pred) cells of a chunk; invalid pixels go to a dropped spare bin."""
    batch = true_labels.shape[0]
    cells = batch * n_true * n_pred
    # int32 arithmetic is several times faster than int64 on CPU; tables that large never occur in practice.
    dtype = torch.int32 if cells < 2**31 else torch.int64
    offset = torch.arange(0, cells, n_true * n_pred, device=true_labels.device, dtype=dtype).unsqueeze(1)  # (B, 1)
    cell = true_labels.to(dtype) * n_pred  # (B, N)
    cell += pred_labels.to(dtype)
    cell += offset
    if valid is not None:
        cell.masked_fill_(~valid, cells)
    counts = torch.bincount(cell.flatten(), minlength=cells + 1)[:cells]
    return counts.reshape(batch, n_true, n_pred).double()


def ari_from_contingency(contingency: torch.Tensor) -> torch.Tensor:
    """ARI per image from (B, T, P) contingency tables, as scikit-learn computes it.

    Uses the pair counts of sklearn.metrics.cluster.pair_confusion_matrix; an image whose pairs all
    agree (including one with fewer than two pixels) scores 1. Returns (B,) float64.
    """
    n = contingency.sum((1, 2))
    sum_squares = (contingency ** 2).sum((1, 2))
    both = sum_squares - n  # ordered pairs together in both labelings
    only_pred = (contingency.sum(1) ** 2).sum(1) - sum_squares
    only_true = (contingency.sum(2) ** 2).sum(1) - sum_squares
    neither = n ** 2 - only_pred - only_true - sum_squares
    numerator = 2.0 * (both * neither - only_true * only_pred)
    denominator = (both + only_true) * (only_true + neither) + (both + only_pred) * (only_pred + neither)
    perfect = (only_true == 0) & (only_pred == 0)
    return torch.where(perfect, torch.ones_like(n), numerator / torch.where(perfect, 1.0, denominator))


def adjusted_rand_index(true_labels: torch.Tensor, pred_labels: torch.Tensor,
                        valid: torch.Tensor | None = None) -> torch.Tensor:
    """ARI per image, equal to scikit-learn's `adjusted_rand_score` on each image's valid pixels.

    true_labels, pred_labels: (B, ...) integer labels >= 0 (only equality matters).
    valid: (B, ...) bool, pixels to score; default all. Returns (B,) float64.
    """
    return ari_from_contingency(contingency_tables(true_labels, pred_labels, valid))


def segmentation_ari(true_mask: torch.Tensor, pred_mask: torch.Tensor,
                     ignore_label: int = IGNORE_LABEL) -> dict[str, torch.Tensor]:
    """ARI with and without background for predicted segmentations.

    true_mask: (B, H, W) ground-truth labels, BACKGROUND = 0, `ignore_label` for unscored pixels.
    pred_mask: (B, H, W) predicted labels.
    Returns {"ari": (B,), "ari_fg": (B,)}: all scored pixels, and foreground pixels only (the
    metric IODINE and CAE report as ARI-FG / "ARI without background").
    """
    table = contingency_tables(true_mask, pred_mask, true_mask != ignore_label)  # (B, T, P)
    # Foreground ARI is the same table without the background row: no second pass over the pixels.
    return {"ari": ari_from_contingency(table), "ari_fg": ari_from_contingency(table[:, BACKGROUND + 1:])}


def objects_apart(true_mask: torch.Tensor, pred_mask: torch.Tensor,
                  ignore_label: int = IGNORE_LABEL) -> torch.Tensor:
    """Whether the objects of a scene sit in different predicted segments: 1 where every foreground object's
    majority segment (the predicted label holding most of its pixels) differs from every other's, 0 where two
    share one, NaN for scenes with fewer than two objects (nothing to tell apart). (B,).

    ARI-FG mixes this with how well each object's outline is found; IODINE's object split (issue 36: two
    sprites in separate slots) is this alone."""
    table = contingency_tables(true_mask, pred_mask, true_mask != ignore_label)[:, BACKGROUND + 1:]  # (B, T, P)
    present = table.sum(2) > 0  # (B, T): objects with scored pixels
    majority = table.argmax(2)  # (B, T)
    apart = torch.full((table.shape[0],), float("nan"), dtype=torch.float64)
    for b in range(table.shape[0]):
        slots = majority[b][present[b]]
        if slots.numel() >= 2:
            apart[b] = float(slots.unique().numel() == slots.numel())
    return apart.to(pred_mask.device)


PROBABILITY_FLOOR = 1e-3  # one confidently wrong pixel costs at most −log(1e-3) = 6.9 nats


def as_probabilities(reconstruction: torch.Tensor, floor: float = PROBABILITY_FLOOR) -> torch.Tensor:
    """A reconstruction as Bernoulli pixel probabilities for the reported BCE: clamped to [floor, 1 − floor],
    so that a model whose output can reach exactly 0 or 1 (MAGANet's flow) and one whose output cannot (a
    sigmoid) are scored alike. Floor 0 only keeps them in [0, 1]: torch's BCE then caps a pixel at 100 nats."""
    return reconstruction.clamp(floor, 1 - floor)


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
