"""Figures: one module per paper, each exporting FIGURES (name -> Figure); `registry()` joins them.

A figure is drawn by `structae figure NAME --out FILE ...`, whose options are the draw function's keyword
arguments (checkpoint, data, split_index, checkpoints, labels, metrics, embeddings, logs, title). Scopes:
- per model (`models` set): drawn for every experiment of those models from its first seed's checkpoint
  and its test images, as results/figures/{paper}/{name}_{experiment}.{ext} (rule figure_model);
- per paper (`paper` set): drawn once from several of the paper's experiments, as
  results/figures/{paper}/{name}.png, each by a rule of its own (their inputs differ);
- every paper (`paper` EVERY_PAPER): the training curves, and the validation curves of papers whose
  experiments score their val split while training (`validated`).
The workflow takes its figure targets, wildcard constraints and report captions from this registry, so
adding a figure is one entry in a module's FIGURES (and, for a per-paper figure, the rule with its inputs).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

MODULES = ("cae", "iodine", "maganet", "swwae", "curves")
EVERY_PAPER = "*"


@dataclass(frozen=True)
class Figure:
    draw: Callable[..., None]
    caption: str  # for the report (reStructuredText); {{ snakemake.wildcards.NAME }} is filled in
    models: tuple[str, ...] = ()  # a figure of one trained model of each of these models
    paper: str | None = None  # a figure of this paper's experiments together
    validated: bool = False  # drawn only for papers with an experiment that scores its val split in training
    ext: str = "png"

    def options(self) -> set[str]:
        """The keyword arguments its draw function takes (the `structae figure` options it needs or allows)."""
        return set(inspect.signature(self.draw).parameters)

    def required(self) -> set[str]:
        """The keyword arguments without a default: what `structae figure NAME` must be given."""
        return {name for name, parameter in inspect.signature(self.draw).parameters.items()
                if parameter.default is inspect.Parameter.empty}

    def file(self, name: str) -> str:
        """The file name, without the directory; {experiment} left to fill for a per-model figure."""
        return f"{name}_{{experiment}}.{self.ext}" if self.models else f"{name}.{self.ext}"


@cache
def registry() -> dict[str, Figure]:
    """Every figure by name, from the FIGURES of each module in MODULES."""
    figures: dict[str, Figure] = {}
    for module in MODULES:
        for name, figure in importlib.import_module(f"{__name__}.{module}").FIGURES.items():
            if name in figures:
                raise ValueError(f"figure '{name}' is defined twice (structae.figures.{module})")
            figures[name] = figure
    return figures


def of_model(model: str) -> list[str]:
    """Names of the per-model figures drawn for every experiment of `model`."""
    return [name for name, figure in registry().items() if model in figure.models]


def of_paper(paper: str, validated: bool = False) -> list[str]:
    """Names of the figures drawn once for `paper` (the training curves included; the validation curves when
    `validated`, i.e. one of its experiments scores its val split while training)."""
    return [name for name, figure in registry().items()
            if figure.paper in (paper, EVERY_PAPER) and (validated or not figure.validated)]


def model_figure_names() -> list[str]:
    return sorted(name for name, figure in registry().items() if figure.models)
