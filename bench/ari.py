"""ARI throughput: structae.metrics (batched in torch) against scikit-learn's adjusted_rand_score called
per image (target ≥ 50×). Images of 64×64 and 128×128 pixels, 7 true and 7 predicted segments. Prints a
table; asserts nothing.
    python bench/ari.py
"""

from __future__ import annotations

import time

import torch
from sklearn.metrics import adjusted_rand_score

from structae.metrics import segmentation_ari
from structae.tables import print_table


def rate(fn, images: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return images / best


def main() -> None:
    rows = []
    for side, batch in ((64, 512), (128, 256)):
        generator = torch.Generator().manual_seed(0)
        true = torch.randint(0, 7, (batch, side, side), generator=generator)
        pred = torch.randint(0, 7, (batch, side, side), generator=generator)
        ours = rate(lambda: segmentation_ari(true, pred), batch)  # noqa: B023 (called at once)
        sample = 64  # the reference loop is slow; time it on a subset

        def reference():
            for t, p in zip(true[:sample].numpy(), pred[:sample].numpy(), strict=True):  # noqa: B023
                keep = t != 255
                adjusted_rand_score(t[keep], p[keep])
                fg = keep & (t != 0)
                adjusted_rand_score(t[fg], p[fg])

        theirs = rate(reference, sample)
        rows.append((f"{side}×{side}, ARI and ARI-FG", f"{ours:,.0f}", f"{theirs:,.0f}", f"{ours / theirs:.0f}×"))
    print_table(("images", "structae img/s", "sklearn loop img/s", "speed-up"), rows)


if __name__ == "__main__":
    main()
