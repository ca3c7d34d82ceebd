"""MAGANet and VAE figures: latent traversals (PNG and GIF), the identity check, the recombination grid
(pivot, target and every model's reconstruction), and UMAP embeddings of the latents coloured by factor."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from structae.checkpoint import load_model
from structae.data import loader
from structae.data.sprites import LATENT_NAMES
from structae.figures import Figure
from structae.figures.common import plt, save
from structae.files import atomic_path

OFFSETS = np.linspace(-2.0, 2.0, 9)  # traversal values around the encoded one
FACTORS = ("shape", "posX", "posY", "scale", "orientation")  # dSprites factors the UMAP figures colour by
UMAP_POINTS = 3000  # training images embedded per model
UMAP_NEIGHBOURS = 50  # as a published MAGANet reproduction


def _load(checkpoint, data, split_index):
    module, model, _ = load_model(checkpoint, None)  # MAGANet or the VAE
    return module, model, loader.load(data, split_index, "test")


def _traversal(checkpoint, data, split_index):
    """(latents, offsets, images (L, V, H, W)) for the first test image, and the image."""
    module, model, images = _load(checkpoint, data, split_index)
    batch = images.batch(torch.arange(1))
    with torch.no_grad():
        z = module.latents(model, batch)  # (1, L)
        rows = []
        for unit in range(z.shape[1]):
            moved = z.repeat(len(OFFSETS), 1)
            moved[:, unit] += torch.tensor(OFFSETS, dtype=z.dtype)
            rows.append(module.decode_latents(model, moved, batch)[:, 0])
    return torch.stack(rows).numpy(), batch["image"][0, 0].numpy()


def traversal_figure(checkpoint, data, split_index, out, title="") -> None:
    grid, image = _traversal(checkpoint, data, split_index)
    units, values = grid.shape[:2]
    fig, axes = plt.subplots(units, values + 1, figsize=(0.9 * (values + 1), 0.9 * units), squeeze=False)
    for unit in range(units):
        axes[unit, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[unit, 0].set_ylabel(f"z{unit}", fontsize=7)
        for column in range(values):
            axes[unit, column + 1].imshow(grid[unit, column], cmap="gray", vmin=0, vmax=1)
            if unit == 0:
                axes[0, column + 1].set_title(f"{OFFSETS[column]:+.1f}", fontsize=7)
    axes[0, 0].set_title("input", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}: latent traversals", y=1.0)
    save(fig, out)


def traversal_animation(checkpoint, data, split_index, out, title="") -> None:
    """A GIF: each frame one offset, every latent unit's decoded image side by side (back and forth)."""
    from matplotlib.animation import PillowWriter

    grid, _ = _traversal(checkpoint, data, split_index)
    units, values = grid.shape[:2]
    fig, axes = plt.subplots(1, units, figsize=(0.9 * units, 1.2), squeeze=False)
    shown = [ax.imshow(grid[unit, 0], cmap="gray", vmin=0, vmax=1) for unit, ax in enumerate(axes[0])]
    for unit, ax in enumerate(axes[0]):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"z{unit}", fontsize=7)
    label = fig.suptitle("")
    writer = PillowWriter(fps=4)
    with atomic_path(out, suffix=".gif") as tmp, writer.saving(fig, str(tmp), dpi=80):
        for frame in [*range(values), *range(values - 2, 0, -1)]:
            for unit, image in enumerate(shown):
                image.set_data(grid[unit, frame])
            label.set_text(f"{title}: offset {OFFSETS[frame]:+.1f}")
            writer.grab_frame()
    plt.close(fig)


def identity_figure(checkpoint, data, split_index, out, title="") -> None:
    """x, D(0, x) and D(E(x) − E(x), x) for a few test images, with the largest deviation from x."""
    module, model, images = _load(checkpoint, data, split_index)
    batch = images.batch(torch.linspace(0, len(images) - 1, min(4, len(images))).long())  # spread over the set
    x = batch["image"]
    with torch.no_grad():
        zero = model.decode(torch.zeros(len(x), model.config.latent), x)
        mean = model.encoder(x)[0]
        read = model.decode(mean - mean, x)
    error = max((zero - x).abs().max().item(), (read - x).abs().max().item())
    fig, axes = plt.subplots(len(x), 3, figsize=(4.5, 1.5 * len(x)), squeeze=False)
    for row in range(len(x)):
        for column, (image, name) in enumerate([(x, "x"), (zero, "D(0, x)"), (read, "D(E(x) − E(x), x)")]):
            axes[row, column].imshow(image[row, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row == 0:
                axes[0, column].set_title(name, fontsize=8)
    fig.suptitle(f"{title}: identity, max |D(0, x) − x| = {error:.1e}", y=1.0)
    save(fig, out)


def recombination_figure(checkpoints: list[str | Path], labels: list[str], data, split_index, out,
                         title="recombination: held-out factor combinations") -> None:
    """Rows: held-out recombinations; columns: pivot, target, then each model's reconstruction."""
    images = loader.load(data, split_index, "test")
    rows = torch.linspace(0, len(images) - 1, min(6, len(images))).long()
    batch = images.batch(rows)
    columns = [("pivot", batch["pivot"].expand_as(batch["image"])), ("target", batch["image"])]
    for path, label in zip(checkpoints, labels, strict=True):
        module, model, _ = load_model(path, None)
        with torch.no_grad():
            columns.append((label, module.reconstruct(model, batch)))
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(1.3 * len(columns), 1.3 * len(rows)), squeeze=False)
    for column, (name, shown) in enumerate(columns):
        axes[0, column].set_title(name.replace("_to_", "\nto_"), fontsize=7)
        for row in range(len(rows)):
            axes[row, column].imshow(shown[row, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
    fig.suptitle(title, y=1.02)
    save(fig, out)


def umap_embedding(checkpoint, data, split_index, out) -> None:
    """3-component UMAP (50 neighbours) of the latents of UMAP_POINTS training images, with their factors."""
    import umap

    module, model, _ = load_model(checkpoint, None)
    images = loader.load(data, split_index, "train")
    rows = torch.from_numpy(np.random.default_rng(0).choice(len(images), min(UMAP_POINTS, len(images)),
                                                            replace=False))
    batch = images.batch(rows)
    with torch.no_grad():
        latents = torch.cat([module.latents(model, {k: (v[i:i + 500] if k == "image" else v)
                                                    for k, v in batch.items()})
                             for i in range(0, len(rows), 500)]).numpy()
    reducer = umap.UMAP(n_neighbors=min(UMAP_NEIGHBOURS, len(rows) - 1), n_components=3, random_state=0)
    embedding = reducer.fit_transform(latents)
    values = batch["factors"]["latents_values"].numpy()  # dSprites' (N, 6), columns as sprites.LATENT_NAMES
    factors = {name: values[:, LATENT_NAMES.index(name)] for name in FACTORS}
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, embedding=embedding, **factors)


def umap_figure(embeddings: list[str | Path], labels: list[str], factor: str, out: str | Path) -> None:
    """The embeddings side by side in 3D, coloured by `factor`."""
    fig = plt.figure(figsize=(4.6 * len(embeddings), 4.2))
    for index, (path, label) in enumerate(zip(embeddings, labels, strict=True)):
        with np.load(path) as saved:
            embedding, values = saved["embedding"], saved[factor]
        ax = fig.add_subplot(1, len(embeddings), index + 1, projection="3d")
        points = ax.scatter(*embedding.T, c=values, s=2, cmap="viridis" if factor != "shape" else "tab10",
                            alpha=0.7, linewidths=0)
        ax.set_title(label, fontsize=9)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
    fig.colorbar(points, ax=fig.axes, shrink=0.6, label=factor)
    fig.suptitle(f"UMAP of the latents ({UMAP_NEIGHBOURS} neighbours, 3 components), coloured by {factor}")
    save(fig, out)


FIGURES = {
    "traversal": Figure(traversal_figure, models=("maganet", "vae"), caption=(
        "MAGANet / VAE experiment {{ snakemake.wildcards.experiment }}: a held-out image encoded, then each latent "
        "unit (a row) moved from −2 to +2 around its encoded value with the others fixed, and decoded (MAGANet "
        "applies the moved transformation to the pivot). The animation shows the same traversal over time.")),
    "traversal_animation": Figure(traversal_animation, models=("maganet", "vae"), ext="gif", caption=(
        "MAGANet / VAE experiment {{ snakemake.wildcards.experiment }}: the latent traversal as an animation, every "
        "latent unit side by side, each frame one offset from −2 to +2.")),
    "identity": Figure(identity_figure, models=("maganet",), caption=(
        "MAGANet experiment {{ snakemake.wildcards.experiment }}, the group action's identity: held-out images x, "
        "D(0, x), and D(E(x) − E(x), x) with the transformation the encoder reads between x and itself; the title "
        "gives the largest pixel difference from x. The flow makes D(0, x) = x by construction.")),
    "recombination": Figure(recombination_figure, paper="maganet", caption=(
        "MAGANet's recombination test: held-out combinations of factors (to-element's test set), the fixed pivot, "
        "the target, and the reconstruction of each model (MAGANet and the VAE, trained on the to-element and on "
        "the to-range split). The to-range models never saw an ellipse on the right half of the image.")),
    **{f"umap_{factor}": Figure(partial(umap_figure, factor=factor), paper="maganet", caption=(
        "MAGANet beside the VAE (both trained on the to-element split): UMAP (umap-learn, 50 neighbours, "
        "3 components) of the latents of 3,000 training images (MAGANet's transformation from the pivot, the "
        f"VAE's code of the image), coloured by the dSprites factor {factor}.")) for factor in FACTORS},
}
