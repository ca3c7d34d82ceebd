"""Training curves: each loss term against the step, and validation curves: each val_* score against the
training minutes; one line per experiment (mean over seeds, band = min–max)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from structae.errors import UserError
from structae.figures import EVERY_PAPER, Figure
from structae.figures.common import plt, save

NOT_TERMS = {"step", "lr", "images_per_s", "train_minutes"}
VALIDATION_PREFIX = "val_"


def read_logs(logs: list[str | Path]) -> pd.DataFrame:
    """Training logs at results/checkpoints/{experiment}/seed{seed}/train_log.csv, stacked with their names."""
    frames = []
    for path in map(Path, logs):
        if not path.is_file():
            raise UserError(f"training log {path} is missing; run `snakemake {path}` to train")
        frames.append(pd.read_csv(path).assign(experiment=path.parent.parent.name, seed=path.parent.name))
    return pd.concat(frames, ignore_index=True)


def training_curves(logs: list[str | Path], out: str | Path, title: str = "training curves") -> None:
    frame = read_logs(logs)
    terms = [c for c in frame.columns if c not in NOT_TERMS | {"experiment", "seed"} and frame[c].notna().any()
             and not c.startswith(VALIDATION_PREFIX)
             and (c == "loss" or not frame[c].equals(frame["loss"]))]  # a lone term repeats the loss
    _panels(frame, terms, "step", "step", title, out)


def validation_curves(logs: list[str | Path], out: str | Path, title: str = "validation curves") -> None:
    """Each score of the val split logged during training against the training minutes (validation not
    counted) of the machine that trained it: what a budget of CPU or GPU time buys."""
    frame = read_logs(logs)
    scores = [c for c in frame.columns if c.startswith(VALIDATION_PREFIX) and frame[c].notna().any()]
    if not scores:
        raise UserError("no training log has val_* columns; set train.validate_every in the experiments")
    frame = frame.dropna(subset=scores, how="all")
    _panels(frame, scores, "train_minutes", "training minutes", title, out)


MAX_COLUMNS = 5  # panels per row: IODINE's per-iteration scores would make one row unreadably wide


def _panels(frame: pd.DataFrame, columns: list[str], x: str, xlabel: str, title: str, out) -> None:
    """One panel per column against `x`: a line per experiment, the mean over its seeds, the band their range
    (seeds are matched by step; against minutes a step sits at its seeds' mean time)."""
    cols = min(len(columns), MAX_COLUMNS)
    rows = -(-len(columns) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(columns):]:
        ax.set_visible(False)
    for ax, column in zip(axes.flat[:len(columns)], columns, strict=True):
        for experiment, runs in frame.groupby("experiment", sort=False):
            by_step = runs.groupby("step")
            xs, values = by_step[x].mean(), by_step[column]
            line, = ax.plot(xs, values.mean(), label=experiment, lw=1.2)
            ax.fill_between(xs, values.min(), values.max(), color=line.get_color(), alpha=0.2, lw=0)
        ax.set(title=column.removeprefix(VALIDATION_PREFIX), xlabel=xlabel)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    save(fig, out)


FIGURES = {
    "training_curves": Figure(training_curves, paper=EVERY_PAPER, caption=(
        "Training curves of the {{ snakemake.wildcards.paper }} experiments: each logged loss term against the "
        "training step, the line the mean over seeds and the band their range.")),
    "validation_curves": Figure(validation_curves, paper=EVERY_PAPER, validated=True, caption=(
        "Validation curves of the {{ snakemake.wildcards.paper }} experiments that score their val split while "
        "training (train.validate_every): each score against the training minutes on the machine that trained "
        "them, the line the mean over seeds and the band their range. Test images are scored only after "
        "training, in the tables.")),
}
