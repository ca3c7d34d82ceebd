"""SWWAE figures: reconstructions of hard- and soft-pooling models beside the input, the "what" and "where"
of every layer, and test error against the number of labels for each mode and pooling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from structae.checkpoint import load_model
from structae.data import loader
from structae.figures import Figure
from structae.figures.common import plt, save
from structae.models import swwae
from structae.options import from_mapping

DIGITS = 8


def reconstruction_figure(checkpoints: list[str | Path], labels: list[str], data: str | Path, out: str | Path) -> None:
    """Rows: the input, then each model's reconstruction (labelled by its experiment)."""
    images = loader.load(data, None, "test")
    batch = images.batch(torch.arange(min(DIGITS, len(images))))
    rows = [("input", batch["image"])]
    for path, label in zip(checkpoints, labels, strict=True):
        _, model, _ = load_model(path, "swwae")
        with torch.no_grad():
            rows.append((label, model(batch)["reconstruction"]))
    fig, axes = plt.subplots(len(rows), len(batch["image"]), figsize=(1.0 * len(batch["image"]), 1.1 * len(rows)),
                             squeeze=False)
    for row, (name, shown) in enumerate(rows):
        for column in range(len(batch["image"])):
            axes[row, column].imshow(shown[column, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        axes[row, 0].set_ylabel(name.replace("swwae_", "").replace("_", "\n", 1), fontsize=6, rotation=0,
                                ha="right", va="center")
    fig.suptitle("SWWAE reconstructions: input, hard and soft what-where pooling", y=1.0)
    save(fig, out)


def what_where_figure(checkpoint, data, split_index, out, title="") -> None:
    """For one test digit, per layer: the "what" of its 4 most active channels and their "where" (hue =
    position inside the 2×2 window: dx red, dy green)."""
    _, model, _ = load_model(checkpoint, "swwae")
    images = loader.load(data, split_index, "test")
    batch = images.batch(torch.arange(1))
    with torch.no_grad():
        outputs = model(batch)
    layers = len(outputs["whats"])
    fig, axes = plt.subplots(layers, 9, figsize=(9 * 1.1, 2.4 * layers), squeeze=False)
    for layer, (what, where) in enumerate(zip(outputs["whats"], outputs["wheres"], strict=True)):
        channels = what[0].flatten(1).sum(1).argsort(descending=True)[:4].tolist()
        axes[layer, 0].imshow(batch["image"][0, 0].numpy(), cmap="gray")
        axes[layer, 0].set_ylabel(f"layer {layer + 1}", fontsize=8)
        for i, channel in enumerate(channels):
            axes[layer, 1 + i].imshow(what[0, channel].numpy(), cmap="magma")
            axes[layer, 1 + i].set_title(f"what c{channel}", fontsize=7)
            position = where[0, channel].permute(1, 2, 0).numpy()  # (h, w, 2): dx, dy
            rgb = np.concatenate([position, np.zeros_like(position[..., :1])], -1)
            rgb *= (what[0, channel].numpy() > 0)[..., None]  # where a unit is silent its position means nothing
            axes[layer, 5 + i].imshow(rgb)
            axes[layer, 5 + i].set_title(f"where c{channel}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}: what and where per layer (where: dx red, dy green)", y=1.0)
    save(fig, out)


def error_figure(metrics: list[str | Path], out: str | Path) -> None:
    """Test error against N, one line per (mode, pooling), mean ± std over seeds."""
    curves: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for path in map(Path, metrics):
        result = json.loads(path.read_text())
        config = from_mapping(swwae.Config, result["model_config"], f"{path}: model_config")  # with its defaults
        errors = [seed["error"] for seed in result["seeds"].values()]
        curves.setdefault((config.mode, config.pooling), []).append((config.labelled, float(np.mean(errors)),
                                           float(np.std(errors, ddof=1)) if len(errors) > 1 else 0.0))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    colors = {"supervised": "C0", "semi-supervised": "C1", "unsupervised": "C2"}
    for (mode, pooling), points in sorted(curves.items()):
        n, mean, std = map(np.array, zip(*sorted(points), strict=True))
        ax.errorbar(n, 100 * mean, yerr=100 * std, marker="o", capsize=3, color=colors[mode],
                    ls="-" if pooling == "hard" else "--", label=f"{mode}, {pooling} pooling")
    ax.set(xscale="log", xlabel="labelled training digits N", ylabel="test error (%)",
           title="SWWAE: error against the number of labels")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, out)


FIGURES = {
    "whatwhere": Figure(what_where_figure, models=("swwae",), caption=(
        "SWWAE experiment {{ snakemake.wildcards.experiment }}: one held-out digit; per layer, the \"what\" (pooled "
        "values) of its four most active channels and their \"where\" (the position of each pooled value inside its "
        "2×2 window; red = x, green = y; black where the unit is silent).")),
    "reconstructions": Figure(reconstruction_figure, paper="swwae", caption=(
        "SWWAE: held-out digits (top row) and their reconstructions by a model with hard what-where pooling and by "
        "one with soft pooling (row titles name the experiments: mode, pooling, number of labels).")),
    "error_vs_labels": Figure(error_figure, paper="swwae", caption=(
        "SWWAE: test error against the number N of labelled training digits, for each mode (supervised only, "
        "semi-supervised, unsupervised with a linear probe) and pooling (solid hard, dashed soft); mean ± std over "
        "seeds. All other training digits are unlabelled.")),
}
