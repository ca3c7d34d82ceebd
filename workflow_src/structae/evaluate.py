"""Checkpoints to metrics: results/metrics/{experiment}.json, one mean per metric and seed.

    {"experiment", "paper", "model", "dataset", "split", "fresh_test_seed", "n_images", "model_config": {...},
     "reported": {"ari_fg": 0.767}, "seeds": {"0": {"ari_fg": 0.91, ...}, "1": {...}},
     "evaluate_model": {...}}   the model's evaluation settings in full (defaults included)

`fresh_test_seed` is null for the dataset's own test split, and the generator seed where the test images are
that split drawn anew (results/metrics/fresh/, evaluate.fresh_test_seed).

Each model's `evaluate` returns one value per test image; the mean over the test images is the
number reported. The order of test images is fixed, so evaluation is deterministic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from structae import checkpoint, files, kernels, metrics, models
from structae.data import loader
from structae.errors import UserError
from structae.options import from_mapping
from structae.paths import ExperimentData


def image_count(images: loader.ImageSet, settings: dict) -> int:
    """How many test images are scored: the first `max_images`, or all when it is 0."""
    return min(settings["max_images"] or len(images), len(images))


def evaluation_settings(module, values: dict, model_name: str):
    """The model's EvalConfig from `evaluate.model` (None for a model without evaluation settings)."""
    if not hasattr(module, "EvalConfig"):
        if values:
            raise UserError(f"evaluate.model: model '{model_name}' has no evaluation settings; remove them")
        return None
    return from_mapping(module.EvalConfig, values, "evaluate.model")


@contextmanager
def exact_kernels() -> Iterator[None]:
    """Full fp32 and cuDNN's deterministic algorithms while scoring (no-ops on a CPU). PyTorch's default TF32
    convolutions round to 10-bit mantissas: on an H200 they moved a CAE checkpoint's ARI by 6e-5 against the
    CPU's, and IODINE's by up to 1e-3 (k-means and argmax labels flip); without them the same checkpoints scored
    the CPU's ARI within 5e-7 (bench/gpu_check.py, docs/cluster.md). Scoring is a small share of a run's time."""
    backends = torch.backends
    saved = (backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32, backends.cudnn.deterministic,
             backends.cudnn.benchmark)
    backends.cudnn.allow_tf32 = backends.cuda.matmul.allow_tf32 = False
    backends.cudnn.deterministic, backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        (backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32, backends.cudnn.deterministic,
         backends.cudnn.benchmark) = saved


def nan_means(per_image_batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    """The mean of each metric over every image of the batches; a NaN marks a metric undefined for that image,
    which is left out of that metric's mean (NaN when no image defines it)."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for per_image in per_image_batches:
        for key, values in per_image.items():
            defined = ~torch.isnan(values)
            totals[key] = totals.get(key, 0.0) + values[defined].double().sum().item()
            counts[key] = counts.get(key, 0) + int(defined.sum())
    return {key: total / counts[key] if counts[key] else float("nan") for key, total in totals.items()}


def evaluate_checkpoint(path: str | Path, model_name: str, images: loader.ImageSet, settings: dict,
                        device: torch.device | str = "cpu", reference: str | Path | None = None) -> dict[str, float]:
    """Mean of each per-image metric over the first `max_images` (0 = all) images of `images`.

    A NaN marks a metric that is undefined for that image (a phase gap with one object); such images are
    left out of that metric's mean. With a `reference` checkpoint of the same model, bce_to_diff is the BCE
    of this model's reconstruction against the reference model's (the model module's `reconstruct`)."""
    module, model, config = checkpoint.load_model(path, model_name, device)
    model_settings = evaluation_settings(module, settings["model"], model_name)
    if reference is not None:
        if not hasattr(module, "reconstruct"):
            raise UserError(f"model '{model_name}' has no reconstruct(); evaluate.compare_with needs one")
        _, reference_model, _ = checkpoint.load_model(reference, model_name, device)
    count = image_count(images, settings)

    def scored_batches():
        for start in tqdm(range(0, count, settings["batch_size"]), desc=f"evaluate {Path(path).parent.name}",
                          mininterval=30.0, leave=False):
            batch = images.batch(torch.arange(start, min(start + settings["batch_size"], count)), device)
            per_image = module.evaluate(model, batch, config, model_settings)
            if reference is not None:
                target = module.reconstruct(reference_model, batch)
                per_image["bce_to_diff"] = metrics.bce_per_image(module.reconstruct(model, batch), target)
            yield per_image

    with torch.no_grad(), exact_kernels():
        return nan_means(scored_batches())


def evaluate(name: str, entry: dict, checkpoints: dict[int, str | Path], data: ExperimentData,
             out: str | Path, references: dict[int, str | Path] | None = None,
             fresh_test_seed: int | None = None) -> dict:
    """Evaluate each seed's checkpoint of experiment `name` on its test images (against the same seed's
    checkpoint in `references`, when given); write `out` atomically. `fresh_test_seed` records that the test
    images were generated anew with that seed."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kernels.apply(kernels.mode(), device)  # on a GPU: no TF32 convolutions, the same algorithms as in training
    images = loader.load(data.test, data.test_split, "test")
    settings = entry["evaluate"]
    references = references or {}
    seeds = {str(seed): evaluate_checkpoint(path, entry["model"], images, settings, device, references.get(seed))
             for seed, path in checkpoints.items()}
    used = evaluation_settings(models.get(entry["model"]), settings["model"], entry["model"])
    result = {"experiment": name, "paper": entry["paper"], "model": entry["model"], "dataset": entry["dataset"],
              "split": entry.get("split"), "fresh_test_seed": fresh_test_seed,
              "n_images": image_count(images, settings), "model_config": entry["model_config"],
              "reported": entry.get("reported", {}), "seeds": seeds,
              "evaluate_model": dataclasses.asdict(used) if used else {}}  # e.g. MAGANet's probability floor
    files.write_text(out, json.dumps(result, indent=2) + "\n")
    return result
