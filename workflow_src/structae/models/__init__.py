"""The model registry: every module in this package that is not a shared part is a model.

A model module defines, by these names:
    Config      a @dataclass of the model's hyperparameters (defaults with their reasons)
    Model       an nn.Module built as Model(config, info: structae.data.loader.DataInfo); its forward
                takes the batch dict (see loader.ImageSet.batch) and returns a dict of outputs
    loss        loss(outputs, batch, config) -> dict of scalar tensors; "loss" is what is minimised,
                the other entries are logged terms
    evaluate    evaluate(model, batch, config, settings) -> dict of (B,) tensors, one metric value per image;
                `settings` is the model's EvalConfig (or None): metrics are computed here, not in forward
and may define
    EvalConfig  a @dataclass of evaluation-only settings, from the experiment's `evaluate.model`
    step_rows   step_rows(n, batch_size, seed, step, config) -> rows of the training batch at `step`
                (default: loader.step_rows); must depend on (seed, step) alone, for exact resumes
    reconstruct reconstruct(model, batch) -> pixel probabilities (B, C, H, W), for evaluate.compare_with

Adding a model is adding its file here and an experiment that names it in config.yaml.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from structae.errors import UserError

PARTS = {"flow", "layers"}  # shared building blocks, not models
REQUIRED = ("Config", "Model", "loss", "evaluate")


def names() -> list[str]:
    """Registered model names, found without importing torch (the workflow checks them when it loads)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_") and m.name not in PARTS)


def get(name: str) -> ModuleType:
    if name not in names():
        raise UserError(f"model '{name}' is not registered; known: {', '.join(names())} "
                        f"(a model is a module in structae/models)")
    module = importlib.import_module(f"{__name__}.{name}")
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise UserError(f"structae/models/{name}.py does not define {', '.join(missing)}; see structae.models")
    return module
