"""Figures: one module per paper, plus `data` for dataset sample grids. Each writes one file.

MODEL_FIGURES lists, per model, the figures made from one trained model: for every experiment of that
model the workflow makes results/figures/{paper}/{figure}_{experiment}.{png|gif} with
`structae figure model`. The workflow reads it when it loads, so this module imports neither torch nor
matplotlib.
"""

from __future__ import annotations

import importlib

# model -> figure name -> "module:function" in this package; each function takes
# (model_file, data, split_index, out, title) and writes `out` (a GIF where the name says animation).
MODEL_FIGURES = {
    "cae": {"phase": "cae:phase_figure"},
    "iodine": {"slots": "iodine:slots_figure", "traversal": "iodine:traversal_figure"},
    "maganet": {"traversal": "maganet:traversal_figure", "traversal_animation": "maganet:traversal_animation",
                "identity": "maganet:identity_figure"},
    "vae": {"traversal": "maganet:traversal_figure", "traversal_animation": "maganet:traversal_animation"},
    "swwae": {"whatwhere": "swwae:what_where_figure"},
}


def figure_names() -> set[str]:
    return {name for figures in MODEL_FIGURES.values() for name in figures}


def figure_file(name: str) -> str:
    """The file name of figure `name` of an experiment, without the directory: {name}_{experiment}.{ext}."""
    return f"{name}_{{experiment}}." + ("gif" if name.endswith("animation") else "png")


def figures_of_model(model: str) -> list[str]:
    return list(MODEL_FIGURES.get(model, {}))


def model_figure(model: str, name: str):
    """The function that draws figure `name` of a `model` checkpoint."""
    module, function = MODEL_FIGURES[model][name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)
