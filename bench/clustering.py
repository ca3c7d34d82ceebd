"""Per-image k-means: structae.clustering against scikit-learn's KMeans called image by image (what the
official CAE evaluation does), on the same points, with the same restarts and iteration cap. Points are
blobs, one per cluster, as the phases of a trained CAE or the colours of a scene are. Prints images/s and
how far the two agree (mean ARI between their labelings); medians of 5 interleaved runs; asserts nothing.
    python bench/clustering.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from structae import clustering
from structae.tables import print_table

CASES = [  # (what, images, pixels per side, k, dimensions)
    ("CAE 2Shapes: phases, 32×32, k 3", 64, 32, 3, 2),
    ("CAE 3Shapes / RGB: phases, 64×64, k 4", 64, 64, 4, 2),
    ("IODINE colour baseline: 64×64 RGB, k 6", 32, 64, 6, 3),
]
RESTARTS, ITERATIONS = 3, 30  # the CAE's EvalConfig defaults
REPEATS = 5


def blobs(images: int, side: int, k: int, dims: int, seed: int = 0) -> torch.Tensor:
    """(images, side², dims): each point near one of k random centres, spread 0.05."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, (images, k, dims))
    which = rng.integers(0, k, (images, side * side))
    points = np.take_along_axis(centres, which[..., None], 1) + rng.normal(0, 0.05, (images, side * side, dims))
    return torch.from_numpy(points.astype(np.float32))


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def compare(what: str, points: torch.Tensor, k: int) -> list[tuple[str, ...]]:
    images, n = points.shape[:2]
    ks, valid = torch.full((images,), k), torch.ones(images, n, dtype=torch.bool)

    def reference():
        return [KMeans(k, n_init=RESTARTS, max_iter=ITERATIONS, random_state=0).fit_predict(p.numpy()) for p in points]

    rows = []
    for method in ("torch", "auto"):
        def ours(method=method):
            return clustering.batched_kmeans(points, ks, valid, ITERATIONS, RESTARTS, torch.Generator().manual_seed(0),
                                             method=method)

        ours_s, sklearn_s = [], []
        for _ in range(REPEATS):  # interleaved, so that a change in the machine's load hits both
            ours_s.append(timed(ours)[0])
            seconds, expected = timed(reference)
            sklearn_s.append(seconds)
        labels = ours().numpy()
        agreement = np.mean([adjusted_rand_score(e, o) for e, o in zip(expected, labels, strict=True)])
        ours_median, sklearn_median = statistics.median(ours_s), statistics.median(sklearn_s)
        chosen = method if method != "auto" or n < clustering.SKLEARN_FROM_POINTS else "auto (sklearn)"
        rows.append((what, chosen, f"{images / ours_median:,.0f}", f"{images / sklearn_median:,.0f}",
                     f"{sklearn_median / ours_median:.2f}×", f"{agreement:.4f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (scikit-learn is given the same)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(args.threads):
        for what, images, side, k, dims in CASES:
            rows += compare(what, blobs(images, side, k, dims), k)
    print_table(("points", "method", "ours images/s", "scikit-learn images/s", "ratio", "ARI(ours, sklearn)"), rows)
    print(f"threads: {args.threads}; {RESTARTS} restarts, at most {ITERATIONS} iterations on both sides")


if __name__ == "__main__":
    main()
