"""Figures: one module per paper, plus `data` for dataset sample grids. Each writes one PNG.

MODEL_FIGURES lists the figures made from one trained model: for every experiment of that model the
workflow makes results/figures/{paper}/{figure}_{experiment}.png with `structae figure model --figure NAME`.
It is read by the workflow when it loads, so this module imports neither torch nor matplotlib.
"""

from __future__ import annotations

import importlib

# figure name -> (the model it shows, "module:function" in this package); each function takes
# (model_file, data, split_index, out, title).
MODEL_FIGURES = {
    "phase": ("cae", "cae:phase_figure"),
    "slots": ("iodine", "iodine:slots_figure"),
    "traversal": ("iodine", "iodine:traversal_figure"),
}


def figures_of_model(model: str) -> list[str]:
    return [name for name, (shown, _) in MODEL_FIGURES.items() if shown == model]


def model_figure(name: str):
    """The function that draws figure `name`."""
    module, function = MODEL_FIGURES[name][1].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)
