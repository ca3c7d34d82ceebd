"""A grid of dataset samples: images on the top row, their label maps (ignored pixels white) below."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structae.data import h5
from structae.figures.common import plt, save


def label_colors(mask: np.ndarray) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) colours: background black, objects tab10, ignored pixels white."""
    palette = np.concatenate([[[0, 0, 0]], plt.get_cmap("tab10").colors[:9]] * 26)[:256]
    palette[h5.IGNORE_LABEL] = 1.0
    return palette[mask]


def sample_grid(data: str | Path, out: str | Path, n: int = 8) -> None:
    with h5.open_split(data) as file:
        count = min(n, len(file["image"]))
        images, masks = file["image"][:count], file["mask"][:count]
        title = f"{file.attrs.get('dataset', '')} / {file.attrs.get('split', '')}: {len(file['image'])} images"
    fig, axes = plt.subplots(2, count, figsize=(1.4 * count, 3), squeeze=False)
    for i in range(count):
        image = images[i, ..., 0] if images.shape[-1] == 1 else images[i]
        axes[0, i].imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[1, i].imshow(label_colors(masks[i]), interpolation="nearest")
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    save(fig, out)
