"""Trained-model files: written atomically, loadable with `torch.load(..., weights_only=True)`.

A checkpoint is a dict of plain values and tensors:
    format       "structae-model/1"
    model        registered model name
    experiment   experiment name, seed, steps
    config       the model's @dataclass config as a dict
    info         the DataInfo the model was built with
    state_dict   the weights
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType

import torch

from structae import models
from structae.data.info import DataInfo
from structae.errors import UserError
from structae.files import atomic_path
from structae.options import from_mapping

FORMAT = "structae-model/1"


def atomic_save(payload: dict, path: str | Path) -> None:
    """torch.save to a temporary name, then rename: a crash never leaves a half-written file. Saved through a
    Python file: given a path, torch writes from C++ and a full disk surfaces without its errno."""
    with atomic_path(path, size=tensor_bytes(payload)) as tmp, open(tmp, "wb") as file:
        torch.save(payload, file)


def tensor_bytes(value) -> int:
    """The bytes of the tensors in `value` (nested dicts, lists, tuples): about what torch.save writes."""
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(tensor_bytes(item) for item in value)
    return 0


def save_model(path: str | Path, model_name: str, experiment: str, seed: int, steps: int,
               config, info: DataInfo, model: torch.nn.Module) -> None:
    atomic_save({"format": FORMAT, "model": model_name, "experiment": experiment, "seed": seed,
                 "steps": steps, "config": dataclasses.asdict(config), "info": info.to_dict(),
                 "state_dict": model.state_dict()}, path)


def load_model(path: str | Path, expected_model: str | None,
               device: str | torch.device = "cpu") -> tuple[ModuleType, torch.nn.Module, object]:
    """(model module, model in eval mode, its config) from a checkpoint of model `expected_model`, or of any
    registered model when it is None (figures shared by MAGANet and the VAE)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} is missing; run `snakemake {path}` to train it")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception:  # torch raises several types for truncated or foreign files
        raise UserError(f"{path} is not a readable structae checkpoint; delete it and retrain") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a structae checkpoint ({FORMAT}); delete it and retrain")
    if expected_model is not None and payload["model"] != expected_model:
        raise UserError(f"{path} holds a '{payload['model']}' model but the experiment uses "
                        f"'{expected_model}'; delete the checkpoint and retrain")
    module = models.get(payload["model"])
    config = from_mapping(module.Config, payload["config"], f"{path}: config")
    info = DataInfo(**{**payload["info"], "factors": tuple(payload["info"]["factors"])})
    model = module.Model(config, info).to(device)
    model.load_state_dict(payload["state_dict"])
    return module, model.eval(), config
