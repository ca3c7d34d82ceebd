"""k-means on many small point sets at once (one per image): the CAE clusters output phases, IODINE's
baseline clusters pixel colours.

One algorithm (k-means++ seeding, Lloyd iterations, the lowest inertia of `restarts` runs), two
implementations: "torch", batched over the images on the points' device, what a GPU wants and on a CPU the
fastest for small images; and "sklearn", scikit-learn's KMeans image by image, faster on a CPU from about
64×64 pixels on (bench/clustering.py). "auto" picks by device and size. Tests check that both find the
clusters scikit-learn finds."""

from __future__ import annotations

import warnings

import numpy as np
import torch

METHODS = ("auto", "torch", "sklearn")
SKLEARN_FROM_POINTS = 2048  # on a CPU, per-image scikit-learn wins from about this many points (bench/clustering.py)


def batched_kmeans(points: torch.Tensor, k: torch.Tensor, valid: torch.Tensor, iterations: int, restarts: int,
                   generator: torch.Generator, method: str = "auto") -> torch.Tensor:
    """k-means on every image, each with its own number of clusters.

    points (B, N, D); k (B,) clusters per image (>= 1); valid (B, N) bool, points that take part.
    Returns labels (B, N) in [0, k_b); invalid points get the label of their nearest centre.
    Deterministic given `generator`'s state; the two methods draw their seeds differently. `generator` is a CPU
    generator whatever the points' device: CUDA's generator draws other numbers from the same seed, so
    evaluation on a GPU would seed other clusterings than on a CPU (bench/gpu_check.py compares the two).
    """
    if method not in METHODS:
        raise ValueError(f"k-means method must be one of {', '.join(METHODS)}")
    if method == "auto":
        large = points.shape[1] >= SKLEARN_FROM_POINTS
        method = "sklearn" if points.device.type == "cpu" and large else "torch"
    if method == "sklearn":
        return _sklearn_kmeans(points, k, valid, iterations, restarts, generator)
    return _torch_kmeans(points, k, valid, iterations, restarts, generator)


def _sklearn_kmeans(points, k, valid, iterations, restarts, generator) -> torch.Tensor:
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    data, chosen = points.detach().cpu().numpy(), valid.cpu().numpy()
    labels = np.zeros(chosen.shape, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a flat image has fewer distinct points than clusters
        for image, (cloud, keep, clusters) in enumerate(zip(data, chosen, k.tolist(), strict=True)):
            subset = cloud[keep] if keep.any() else cloud
            fitted = KMeans(min(clusters, len(subset)), n_init=restarts, max_iter=iterations,
                            random_state=seed).fit(subset)
            labels[image] = fitted.labels_ if keep.all() else fitted.predict(cloud)
    return torch.from_numpy(labels).to(points.device)


def _torch_kmeans(points, k, valid, iterations, restarts, generator) -> torch.Tensor:
    """Lloyd's iterations run on the images not yet converged only; distances are computed one centre at a
    time, coordinate by coordinate, with a running minimum: for the few clusters and dimensions of a phase or a
    colour this is several times faster than a (B, N, K) distance tensor and its argmin over K."""
    batch, _, dims = points.shape
    k_max = int(k.max())
    usable = torch.arange(k_max, device=points.device)[None] < k[:, None]  # (B, K)
    weight = valid.to(points.dtype)
    coords = [points[..., d].contiguous() for d in range(dims)]  # D × (B, N)
    best_labels, best_inertia = None, None
    for _ in range(restarts):
        centres = _kmeans_plus_plus(points, valid, k_max, generator)  # (B, K, D)
        labels, distance = _nearest(coords, centres, usable)
        active = torch.arange(batch, device=points.device)  # images whose labels still change
        for _ in range(iterations - 1):
            moving, labels_before = [c[active] for c in coords], labels[active]
            centres_now = _centres(moving, labels_before, weight[active], centres[active])
            labels_now, distance_now = _nearest(moving, centres_now, usable[active])
            moved = (labels_now != labels_before).any(1)
            centres[active], labels[active], distance[active] = centres_now, labels_now, distance_now
            active = active[moved]
            if not len(active):
                break
        inertia = (distance * weight).sum(1)  # (B,)
        if best_inertia is None:
            best_labels, best_inertia = labels, inertia
        else:
            better = inertia < best_inertia
            best_labels = torch.where(better[:, None], labels, best_labels)
            best_inertia = torch.minimum(inertia, best_inertia)
    return best_labels


def _nearest(coords, centres, usable) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of and squared distance to each point's nearest usable centre (the first of equals, as argmin).
    coords D × (B, N); centres (B, K, D); usable (B, K). Returns (B, N) long and (B, N)."""
    best = torch.full_like(coords[0], float("inf"))
    labels = torch.zeros(coords[0].shape, dtype=torch.long, device=coords[0].device)
    for j in range(centres.shape[1]):
        distance = sum((c - centres[:, j, d, None]).square_() for d, c in enumerate(coords))
        if not usable[:, j].all():  # an image with fewer clusters than the largest k
            distance.masked_fill_(~usable[:, j, None], float("inf"))
        closer = distance < best
        best = torch.where(closer, distance, best)
        labels.masked_fill_(closer, j)
    return labels, best


def _centres(coords, labels, weight, previous) -> torch.Tensor:
    """The weighted mean of each cluster's points; a cluster left empty keeps its centre. (B, K, D)."""
    batch, k_max = previous.shape[:2]
    counts = torch.zeros(batch, k_max, dtype=weight.dtype, device=weight.device).scatter_add_(1, labels, weight)
    sums = torch.stack([torch.zeros_like(counts).scatter_add_(1, labels, c * weight) for c in coords], -1)
    return torch.where(counts[..., None] > 0, sums / counts.clamp(min=1)[..., None], previous)


def _kmeans_plus_plus(points, valid, k_max, generator) -> torch.Tensor:
    """k-means++ seeding per image: each next centre drawn with probability ∝ squared distance. (B, K, D)."""
    batch = points.shape[0]
    rows = torch.arange(batch, device=points.device)
    weights = valid.to(points.dtype) + 1e-12  # images without valid points still draw something
    first = _draw(weights, generator)
    centres = [points[rows, first]]
    nearest = (points - centres[0][:, None]).pow(2).sum(-1)  # (B, N)
    for _ in range(1, k_max):
        chosen = _draw(nearest * valid + 1e-12, generator)
        centres.append(points[rows, chosen])
        nearest = torch.minimum(nearest, (points - centres[-1][:, None]).pow(2).sum(-1))
    return torch.stack(centres, 1)


def _draw(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row of `weights` (B, N), drawn ∝ weight from the CPU `generator`: on a GPU the weights
    travel to the CPU for the draw (a few kB per image), so both devices draw the same indices."""
    return torch.multinomial(weights.cpu(), 1, generator=generator)[:, 0].to(weights.device)
