"""Where a trained CAE's ARI-FG is lost, on val images (never test): the same model on training images
(overfitting?), with faint object pixels left unscored (labels?), with more k-means restarts and iterations
(clustering?), and per image by the phase gap between its objects (the model?). Prints tables; asserts nothing.
    python probes/cae_diagnose.py results/checkpoints/cae_mnist_shape/seed0/model.pt data/processed/mnist_shape
Fed: docs/log/cae.md: where MNIST&Shape's ARI-FG is lost (the checks and the phase-gap table).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch

from structae import metrics
from structae.checkpoint import load_model
from structae.data.h5 import IGNORE_LABEL
from structae.data.loader import ImageSet
from structae.models import cae
from structae.tables import print_table

GAP_BINS = (0.0, 1.0, 2.0, 4.0)  # rad; the largest gap possible is π


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data", help="the dataset's folder, holding train.h5 and val.h5")
    parser.add_argument("--images", type=int, default=500)
    return parser.parse_args()


def scored(model, batch: dict, settings: cae.EvalConfig | None = None) -> tuple[dict, dict]:
    with torch.no_grad():
        outputs = model(batch)
    predicted = cae.segment(outputs, batch["mask"], settings or cae.EvalConfig())
    return outputs, {**metrics.segmentation_ari(batch["mask"], predicted), "predicted": predicted}


def mean(values: torch.Tensor) -> str:
    return f"{float(values.nanmean()):.3f}"


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)
    _, model, config = load_model(args.checkpoint, "cae")
    rows = torch.arange(args.images)
    batches = {split: ImageSet.read(Path(args.data) / f"{split}.h5").batch(rows) for split in ("train", "val")}

    checks = []
    for split, batch in batches.items():
        with torch.no_grad():
            result = cae.evaluate(model, batch, config)
        checks.append((f"{split} images, as the pipeline evaluates", mean(result["ari_fg"]),
                       f"MSE {float(result['mse'].mean()):.4f}"))

    batch = batches["val"]
    outputs, base = scored(model, batch)
    foreground = (batch["mask"] > 0) & (batch["mask"] != IGNORE_LABEL)
    intensity = batch["image"].amax(1)
    for threshold in (0.1, 0.25, 0.5):
        faint = foreground & (intensity < threshold)
        mask = batch["mask"].masked_fill(faint, IGNORE_LABEL)
        share = float(faint.sum() / foreground.sum())
        checks.append((f"val, object pixels below {threshold} unscored", mean(
            metrics.segmentation_ari(mask, base["predicted"])["ari_fg"]), f"{share:.1%} of object pixels"))
    for restarts, iterations in ((10, 300), (30, 100)):
        _, more = scored(model, batch, cae.EvalConfig(kmeans_restarts=restarts, kmeans_iterations=iterations))
        checks.append((f"val, k-means {restarts} restarts × {iterations} iterations", mean(more["ari_fg"]), ""))
    defaults = cae.EvalConfig()
    print_table(("check", "ARI-FG", "note"), checks)

    gap = cae.phase_separation(outputs["phase"], outputs["magnitude"], batch["mask"],
                               defaults.mask_threshold)["phase_gap"]
    bins = []
    for low, high in itertools.pairwise(GAP_BINS):
        chosen = (gap >= low) & (gap < high)
        bins.append((f"[{low}, {high})", str(int(chosen.sum())), mean(base["ari_fg"][chosen])))
    print()
    print_table(("val phase gap (rad)", "images", "ARI-FG"), bins)


if __name__ == "__main__":
    main()
