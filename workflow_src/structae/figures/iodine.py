"""IODINE figures: the decomposition of test scenes into slots, latent traversals, and ARI / MSE across
refinement iterations (from the metrics files, every experiment of the paper on one figure)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from structae.checkpoint import load_model
from structae.data import loader
from structae.figures import Figure
from structae.figures.common import plt, save
from structae.figures.data import label_colors

SCENES = 4  # test scenes shown in the slot figure
TRAVERSED = 8  # latent units shown, the highest posterior variance across test scenes first
VALUES = np.linspace(-2.0, 2.0, 7)  # offsets from the encoded value, in prior standard deviations


def _style(ax, title: str | None = None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _show(ax, image: np.ndarray, title: str | None = None) -> None:
    """image (C, H, W) in [0, 1]."""
    ax.imshow(np.clip(image.transpose(1, 2, 0).squeeze(-1) if image.shape[0] == 1 else image.transpose(1, 2, 0),
                      0, 1), cmap="gray", vmin=0, vmax=1)
    _style(ax, title)


def _show_labels(ax, labels: torch.Tensor, title: str | None = None) -> None:
    """(H, W) integer labels as colours."""
    ax.imshow(label_colors(labels.numpy().astype(np.uint8)))
    _style(ax, title)


def _first_test_batch(checkpoint, data, split_index, n):
    module, model, config = load_model(checkpoint, "iodine")
    images = loader.load(data, split_index, "test")
    return model, config, images.batch(torch.arange(min(n, len(images))))


def slots_figure(checkpoint: str | Path, data: str | Path, split_index: str | Path | None, out: str | Path,
                 title: str = "") -> None:
    """Per test scene: image, reconstruction, segmentation, then each slot's mean masked by its mask (top)
    and the mask itself (bottom)."""
    model, config, batch = _first_test_batch(checkpoint, data, split_index, SCENES)
    with torch.no_grad():
        outputs = model(batch)
    scenes, slots = len(batch["image"]), config.slots
    columns = 3 + slots
    fig, axes = plt.subplots(2 * scenes, columns, figsize=(1.3 * columns, 2.6 * scenes), squeeze=False)
    for row in range(scenes):
        top, bottom = axes[2 * row], axes[2 * row + 1]
        _show(top[0], batch["image"][row].numpy(), "image" if row == 0 else None)
        _show(top[1], outputs["reconstruction"][row].numpy(), "reconstruction" if row == 0 else None)
        # Slot k is drawn in label k + 1's colour, so slot 1 is not black like the true background.
        _show_labels(top[2], outputs["masks"][row].argmax(0) + 1, "segmentation" if row == 0 else None)
        _show_labels(bottom[0], batch["mask"][row])
        bottom[0].set_xlabel("true objects", fontsize=7)
        for ax in (bottom[1], bottom[2]):
            ax.axis("off")
        for k in range(slots):
            mask = outputs["masks"][row, k].numpy()
            # White where the slot claims nothing, so each slot shows only what it explains.
            shown = outputs["means"][row, k].numpy() * mask + (1 - mask)
            _show(top[3 + k], shown, f"slot {k + 1}" if row == 0 else None)
            _show(bottom[3 + k], mask[None], None)
    fig.suptitle(f"{title}: slot means × masks (top), masks (bottom)", y=1.0)
    save(fig, out)


def traversal_figure(checkpoint: str | Path, data: str | Path, split_index: str | Path | None, out: str | Path,
                     title: str = "") -> None:
    """One test scene; its slot with the largest mask area other than the largest (the background, usually)
    has each latent unit moved over VALUES around its inferred mean while the other slots stay fixed.
    Columns: the TRAVERSED units of highest posterior-mean variance over test scenes; rows: the values."""
    model, config, batch = _first_test_batch(checkpoint, data, split_index, 64)
    with torch.no_grad():
        outputs = model(batch)
    means = outputs["posterior"][..., :config.latent]  # (B, K, L)
    order = means.flatten(0, 1).var(0).argsort(descending=True)[:min(TRAVERSED, config.latent)]
    area = outputs["masks"][0].flatten(1).sum(1)  # (K,)
    slot = int(area.argsort(descending=True)[1 if config.slots > 1 else 0])
    base = means[:1]
    fig, axes = plt.subplots(len(VALUES), len(order), figsize=(1.2 * len(order), 1.2 * len(VALUES)), squeeze=False)
    with torch.no_grad():
        for column, unit in enumerate(order.tolist()):
            z = base.repeat(len(VALUES), 1, 1)
            z[:, slot, unit] += torch.tensor(VALUES, dtype=z.dtype)
            images = model.decode_latents(z)["reconstruction"]
            for row in range(len(VALUES)):
                _show(axes[row, column], images[row].numpy(), f"unit {unit}" if row == 0 else None)
                if column == 0:
                    axes[row, 0].set_ylabel(f"{VALUES[row]:+.1f}", fontsize=7)
    fig.suptitle(f"{title}: slot {slot + 1}, latent units by variance", y=1.0)
    save(fig, out)


def iteration_figure(metrics: list[str | Path], out: str | Path, title: str = "IODINE") -> None:
    """ARI (without background) and MSE of each decode, from λ⁰ (0 refinements) to the last refinement, one
    line per experiment (mean over seeds), the colour k-means baseline dashed."""
    fig, (ari_ax, mse_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for path in map(Path, metrics):
        result = json.loads(path.read_text())
        seeds = list(result["seeds"].values())
        steps = sorted(int(key[len("ari_fg_t"):]) for key in seeds[0] if key.startswith("ari_fg_t"))
        ari = [np.mean([s[f"ari_fg_t{t}"] for s in seeds]) for t in steps]
        mse = [np.mean([s[f"mse_t{t}"] for s in seeds]) for t in steps]
        line, = ari_ax.plot(steps, ari, marker="o", label=result["experiment"])
        ari_ax.axhline(np.mean([s["baseline_ari_fg"] for s in seeds]), color=line.get_color(), ls="--", lw=0.8)
        mse_ax.plot(steps, mse, marker="o", color=line.get_color())
    ari_ax.set(xlabel="refinements", ylabel="ARI (no background)", title="segmentation (dashed: colour k-means)")
    mse_ax.set(xlabel="refinements", ylabel="MSE per pixel", title="reconstruction")
    for ax in (ari_ax, mse_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ari_ax.legend(fontsize=7)
    fig.suptitle(title, y=1.03)
    save(fig, out)


FIGURES = {
    "slots": Figure(slots_figure, models=("iodine",), caption=(
        "IODINE experiment {{ snakemake.wildcards.experiment }} on held-out scenes (first seed), after the last "
        "refinement iteration: the image, its reconstruction and the segmentation (each pixel's most probable "
        "slot); below, the true objects. Then each slot's decoded image masked by its mask (white where the slot "
        "explains nothing) and, below it, the mask.")),
    "slot_traversal": Figure(traversal_figure, models=("iodine",), caption=(
        "IODINE experiment {{ snakemake.wildcards.experiment }}: one held-out scene with one object slot's latent "
        "units moved, one at a time, from −2 to +2 around the inferred value (rows), the other slots fixed. Columns "
        "are the units whose inferred means vary most across test scenes, so the units the model uses come first.")),
    "iterations": Figure(iteration_figure, paper="iodine", caption=(
        "IODINE: segmentation ARI without background (the paper's metric) and reconstruction MSE on held-out "
        "scenes after each refinement iteration, one line per experiment (the ablations among them), mean over "
        "seeds. The dashed lines are the baseline: per image, k-means on pixel colours with as many clusters as "
        "slots.")),
}
