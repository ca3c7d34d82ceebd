"""One training step and one evaluation batch for every experiment of every shipped config.

The data are random images shaped as each experiment's dataset will be (structae.data.datasets.describe),
so paper-scale configs are exercised without their downloads. A bad model_config, a model that
breaks on its dataset's shape, or a loss that is not a scalar fails here, not hours into a cluster job.
"""

import copy

import pytest
import torch

from conftest import REPO, TINY_CONFIG
from structae import checkpoint, models, scales
from structae.config import load_config
from structae.data.datasets import describe, make_split
from structae.data.loader import ImageSet
from structae.evaluate import evaluate_checkpoint
from structae.train import Run, fit

# Every scale's files, as the workflow reads them.
CONFIGS = {scale: [REPO / path for path in files] for scale, files in scales.SCALES.items()}
TINY_BATCH = 2  # a tiny batch: paper-scale IODINE on CLEVR6 (K 7, T 5, 128×128) still takes a minute on CPU


def _experiments():
    for scale, files in CONFIGS.items():
        config = load_config(files)
        for name in config["experiments"]:
            marks = [pytest.mark.slow] if scale == "paper" else []  # minutes of CPU for the paper's widths
            yield pytest.param(config, name, id=f"{scale}-{name}", marks=marks)


@pytest.mark.parametrize("config,name", list(_experiments()))
def test_one_step(config, name, tmp_path):
    entry = copy.deepcopy(config["experiments"][name])
    batch = min(entry["train"]["batch_size"], TINY_BATCH)
    entry["train"].update(steps=1, batch_size=batch, warmup_steps=0)
    info = describe(config["datasets"][entry["dataset"]], entry["dataset"])
    images = ImageSet.synthetic(info, batch, pivot=entry["split"] is not None)
    run = Run(tmp_path / "model.pt", tmp_path / "log.csv", tmp_path / "resume")
    torch.manual_seed(0)
    result = fit(name, entry, 0, images, run)
    assert result["steps"] == 1 and torch.isfinite(torch.tensor(result["loss"]))
    _, model, _ = checkpoint.load_model(run.model_file, entry["model"])
    assert sum(p.numel() for p in model.parameters()) > 0
    settings = {**entry["evaluate"], "batch_size": batch, "max_images": 0}  # the experiment's own evaluate.model
    metrics = evaluate_checkpoint(run.model_file, entry["model"], images, settings)
    values = torch.tensor(list(metrics.values()))
    assert not torch.isinf(values).any() and torch.isfinite(values).any()  # NaN: undefined for these images


def test_every_registered_model_is_used_by_a_shipped_config():
    used = {exp["model"] for files in CONFIGS.values() for exp in load_config(files)["experiments"].values()}
    assert set(models.names()) <= used


@pytest.mark.parametrize("dataset", ["two_shapes", "multi_dsprites", "dsprites", "mnist"])
def test_describe_matches_the_generated_files(dataset, tmp_path):
    config = load_config([TINY_CONFIG])
    spec = config["datasets"][dataset]
    split = next(iter(spec["sizes"]))
    make_split(config, dataset, split, tmp_path / "split.h5")
    actual, described = ImageSet.read(tmp_path / "split.h5").info(), describe(spec, dataset)
    assert (actual.channels, actual.height, actual.width) == (described.channels, described.height, described.width)
    assert 1 <= actual.max_objects <= described.max_objects
    assert set(described.factors) <= set(actual.factors)
