"""k-means on many small point sets at once (one per image): the CAE clusters output phases, IODINE's
baseline clusters pixel colours. Batched on the device, so evaluating a batch is a few matmuls."""

from __future__ import annotations

import torch


def batched_kmeans(points: torch.Tensor, k: torch.Tensor, valid: torch.Tensor, iterations: int, restarts: int,
                   generator: torch.Generator) -> torch.Tensor:
    """k-means on every image at once, each with its own number of clusters.

    points (B, N, D); k (B,) clusters per image (>= 1); valid (B, N) bool, points that take part.
    Returns labels (B, N) in [0, k_b); invalid points get the label of their nearest centre.
    """
    batch, n, dims = points.shape
    k_max = int(k.max())
    usable = torch.arange(k_max, device=points.device)[None] < k[:, None]  # (B, K)
    weight = valid.to(points.dtype)
    best_labels, best_inertia = None, None
    for _ in range(restarts):
        centres = _kmeans_plus_plus(points, valid, k_max, generator)  # (B, K, D)
        labels = None
        for _ in range(iterations):
            # Squared distances via |p|² − 2 p·c + |c|²: one batched matmul, no (B, N, K, D) temporary.
            distance = (points.pow(2).sum(-1, keepdim=True) - 2 * points @ centres.transpose(1, 2)
                        + centres.pow(2).sum(-1)[:, None]).clamp_(min=0)  # (B, N, K)
            distance.masked_fill_(~usable[:, None], float("inf"))
            new_labels = distance.argmin(2)  # (B, N)
            if labels is not None and torch.equal(new_labels, labels):
                break  # converged in every image
            labels = new_labels
            counts = torch.zeros(batch, k_max, dtype=points.dtype, device=points.device).scatter_add_(1, labels, weight)
            sums = torch.zeros_like(centres).scatter_add_(1, labels[..., None].expand(-1, -1, dims),
                                                          points * weight[..., None])
            centres = torch.where(counts[..., None] > 0, sums / counts.clamp(min=1)[..., None], centres)
        inertia = (distance.gather(2, labels[..., None])[..., 0] * weight).sum(1)  # (B,)
        if best_inertia is None:
            best_labels, best_inertia = labels, inertia
        else:
            better = inertia < best_inertia
            best_labels = torch.where(better[:, None], labels, best_labels)
            best_inertia = torch.minimum(inertia, best_inertia)
    return best_labels


def _kmeans_plus_plus(points, valid, k_max, generator) -> torch.Tensor:
    """k-means++ seeding per image: each next centre drawn with probability ∝ squared distance. (B, K, D)."""
    batch = points.shape[0]
    rows = torch.arange(batch, device=points.device)
    weights = valid.to(points.dtype) + 1e-12  # images without valid points still draw something
    first = torch.multinomial(weights, 1, generator=generator)[:, 0]
    centres = [points[rows, first]]
    nearest = (points - centres[0][:, None]).pow(2).sum(-1)  # (B, N)
    for _ in range(1, k_max):
        chosen = torch.multinomial(nearest * valid + 1e-12, 1, generator=generator)[:, 0]
        centres.append(points[rows, chosen])
        nearest = torch.minimum(nearest, (points - centres[-1][:, None]).pow(2).sum(-1))
    return torch.stack(centres, 1)
