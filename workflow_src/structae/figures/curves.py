"""Training curves: each loss term against the step, one line per experiment (mean over seeds, band = min–max)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from structae.errors import UserError
from structae.figures import EVERY_PAPER, Figure
from structae.figures.common import plt, save

NOT_TERMS = {"step", "lr", "images_per_s"}


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
             and (c == "loss" or not frame[c].equals(frame["loss"]))]  # a lone term repeats the loss
    fig, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 3.4), squeeze=False)
    for ax, term in zip(axes[0], terms, strict=True):
        for experiment, runs in frame.groupby("experiment", sort=False):
            by_step = runs.groupby("step")[term]
            steps = by_step.mean().index
            line, = ax.plot(steps, by_step.mean(), label=experiment, lw=1.2)
            ax.fill_between(steps, by_step.min(), by_step.max(), color=line.get_color(), alpha=0.2, lw=0)
        ax.set(title=term, xlabel="step")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, y=1.04)  # above the panels' own titles
    save(fig, out)


FIGURES = {
    "training_curves": Figure(training_curves, paper=EVERY_PAPER, caption=(
        "Training curves of the {{ snakemake.wildcards.paper }} experiments: each logged loss term against the "
        "training step, the line the mean over seeds and the band their range.")),
}
