"""CAE figures: per experiment, rows of test images as the triptych the project's notes used —
sample | output phase (hue = phase, brightness = magnitude) | polar scatter of the output phases,
each pixel at (phase, magnitude) and coloured by its ground-truth object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import hsv_to_rgb

from structae.checkpoint import load_model
from structae.data import loader
from structae.data.h5 import IGNORE_LABEL
from structae.figures import Figure
from structae.figures.common import plt, save
from structae.figures.data import label_colors

ROWS = 4


def phase_image(phase: np.ndarray, magnitude: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) phase and magnitude -> (H, W, 3) RGB: hue from phase, value from the clipped magnitude."""
    hue = (phase + np.pi) / (2 * np.pi)
    value = np.clip(magnitude / threshold, 0, 1)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), value], -1))


def phase_figure(checkpoint: str | Path, data: str | Path, split_index: str | Path | None, out: str | Path,
                 title: str = "") -> None:
    module, model, _ = load_model(checkpoint, "cae")
    images = loader.load(data, split_index, "test")
    batch = images.batch(torch.arange(min(ROWS, len(images))))
    with torch.no_grad():
        outputs = model(batch)
    fig = plt.figure(figsize=(9.6, 3.0 * len(batch["image"])))
    for row in range(len(batch["image"])):
        image = batch["image"][row].permute(1, 2, 0).numpy()
        phase, magnitude = outputs["phase"][row].numpy(), outputs["magnitude"][row].numpy()
        mask = batch["mask"][row].numpy().astype(np.uint8)
        sample = fig.add_subplot(len(batch["image"]), 3, 3 * row + 1)
        sample.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        phases = fig.add_subplot(len(batch["image"]), 3, 3 * row + 2)
        phases.imshow(phase_image(phase, magnitude, module.EvalConfig().mask_threshold))
        polar = fig.add_subplot(len(batch["image"]), 3, 3 * row + 3, projection="polar")
        scored = mask != IGNORE_LABEL
        colors = label_colors(mask)[scored]
        colors[(mask[scored] == 0)] = (0.6, 0.6, 0.6)  # background grey on the white polar plot
        polar.scatter(phase[scored], magnitude[scored], c=colors, s=3, alpha=0.6, linewidths=0)
        polar.set_yticklabels([])
        for ax in (sample, phases):
            ax.set_xticks([])
            ax.set_yticks([])
        if row == 0:
            sample.set_title("sample")
            phases.set_title("output phase (hue), magnitude (value)")
            polar.set_title("phase vs magnitude, by object", pad=14)
    fig.subplots_adjust(hspace=0.35)  # room for the polar plots' angle labels
    fig.suptitle(title)
    save(fig, out)


FIGURES = {
    "phase": Figure(phase_figure, models=("cae",), caption=(
        "CAE experiment {{ snakemake.wildcards.experiment }} on held-out images (first seed): the sample, its output "
        "phases (hue = phase, brightness = output magnitude, clipped at the evaluation threshold) and a polar plot "
        "of every pixel's output phase against its magnitude, coloured by ground-truth object (background grey). "
        "Objects the model separates sit at distinct angles.")),
}
