"""The whole workflow on the tiny config, in a temporary directory: run, rerun nothing, rerun exactly
what a config change affects, report."""

import copy
import functools
import re

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, TINY, jobs, snakemake

pytestmark = pytest.mark.slow


def test_tiny_workflow_makes_every_output(tiny_run):
    workflow_dir = tiny_run
    config = yaml.safe_load((workflow_dir / TINY).read_text())
    for name, spec in config["datasets"].items():
        for split in spec["sizes"]:
            with h5py.File(workflow_dir / f"data/processed/{name}/{split}.h5") as file:
                assert file["image"].shape[0] > 0
        assert (workflow_dir / f"results/figures/data/{name}.png").stat().st_size > 1000
    assert (workflow_dir / "data/splits/dsprites/to_element.npz").exists()
    assert "train" in (workflow_dir / "logs/split_dataset/dsprites/to_element.log").read_text()

    table = pd.read_csv(workflow_dir / "results/tables/engine.csv")
    seeds = {name: len(exp["seeds"]) if "seeds" in exp else 1 for name, exp in config["experiments"].items()}
    assert table.groupby("experiment")["seed"].nunique().to_dict() == seeds
    assert set(table["metric"]) == {"bce", "mse"} and np.isfinite(table["value"]).all()
    assert "| tiny_two_shapes | 2 |" in (workflow_dir / "results/tables/engine.md").read_text()
    # evaluate.fresh_test_seed: the test split drawn again with generator seed 1, new scenes, its own table row
    with h5py.File(workflow_dir / "data/processed/two_shapes/test.h5") as own, \
            h5py.File(workflow_dir / "data/fresh/two_shapes/test_seed1.h5") as fresh:
        assert own["image"].shape == fresh["image"].shape and not np.array_equal(own["image"][:], fresh["image"][:])
    fresh_rows = table[table["fresh_test_seed"] == 1]
    assert set(fresh_rows["experiment"]) == {"tiny_two_shapes"} and set(fresh_rows["seed"]) == {0, 1}
    assert "| tiny_two_shapes, fresh test scenes (generator seed 1) | 2 |" in \
        (workflow_dir / "results/tables/engine.md").read_text()
    assert (workflow_dir / "results/figures/engine/training_curves.png").stat().st_size > 1000
    assert (workflow_dir / "results/figures/engine/validation_curves.png").stat().st_size > 1000  # tiny_two_shapes
    log = pd.read_csv(workflow_dir / "results/checkpoints/tiny_two_shapes/seed1/train_log.csv")
    assert log.dropna(subset=["val_bce"])["step"].tolist() == [20, 40]

    assert jobs(snakemake(workflow_dir, "-n", "all")) == {}  # everything is up to date


def test_a_config_change_reruns_exactly_its_jobs(tiny_done):
    workflow_dir = tiny_done
    config = yaml.safe_load((workflow_dir / TINY).read_text())
    results = {"evaluate": 1, "table_metrics": 1, "figure_curves": 2, "all": 1}  # training and validation curves
    fresh = {"evaluate_fresh": 1}  # tiny_two_shapes is also scored on its fresh test split
    changes = [  # one entry changed: exactly its jobs rerun
        (("datasets", "two_shapes", "sizes", "test"), 40,
         {"generate_dataset": 3, "generate_fresh_test": 1, "figure_data": 1, "train": 2, **results, **fresh}),
        (("experiments", "tiny_to_element", "train", "lr"), 0.01, {"train": 1, **results}),
        (("experiments", "tiny_two_shapes", "seeds"), [0, 1, 2], {"train": 1, **results, **fresh}),  # the new seed
        (("experiments", "tiny_two_shapes", "evaluate"), {"max_images": 8, "fresh_test_seed": 1},
         {**results, **fresh, "figure_curves": 0}),
        (("experiments", "tiny_two_shapes", "evaluate"), {"fresh_test_seed": 2},  # another draw, no retraining
         {"generate_fresh_test": 1, **results, **fresh, "figure_curves": 0}),
    ]
    for keys, value, expected in changes:
        changed = copy.deepcopy(config)
        functools.reduce(dict.__getitem__, keys[:-1], changed)[keys[-1]] = value
        (workflow_dir / TINY).write_text(yaml.safe_dump(changed, sort_keys=False))
        assert jobs(snakemake(workflow_dir, "-n", "all")) == {k: v for k, v in expected.items() if v}, keys


def test_one_experiments_curves_are_a_target_of_their_own(tiny_done):
    """What config/cae_long.yaml asks for: one experiment's validation curves, without the paper's others."""
    workflow_dir = tiny_done
    figure = "results/figures/engine/validation_curves_tiny_two_shapes.png"
    assert jobs(snakemake(workflow_dir, "-n", figure)) == {"figure_curves_of_experiment": 1}
    made = snakemake(workflow_dir, figure)
    assert made.returncode == 0, made.stderr[-3000:]
    assert (workflow_dir / figure).stat().st_size > 1000


def test_report_shows_every_figure_and_table(tiny_done):
    workflow_dir = tiny_done
    report = snakemake(workflow_dir, "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workflow_dir / "results/report.html").read_text(errors="replace")
    assert "multi_dsprites.png" in html and "engine.html" in html and "training_curves.png" in html


@pytest.mark.slow
def test_download_rules_convert_crafted_files_from_a_local_mirror(workflow_dir, tmp_path):
    from test_tfrecord import scene

    from example_proto import write_tfrecord
    from structae.data.multi_object import FORMATS

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    rng = np.random.default_rng(5)
    scenes = [scene(rng, FORMATS["tetrominoes"]) for _ in range(5)]
    write_tfrecord(mirror / "tetrominoes_train.tfrecords", [s[0] for s in scenes])
    config = {"scale": "tiny", "sources": {"mirror": f"file://{mirror}"},
              "datasets": {"tetrominoes": {"kind": "multi_object", "options": {"variant": "tetrominoes"},
                                           "papers": ["iodine"], "sizes": {"train": 3, "test": 0}}},
              "experiments": {}}
    (workflow_dir / TINY).write_text(yaml.safe_dump(config, sort_keys=False))
    run = snakemake(workflow_dir, "iodine")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (workflow_dir / "data/raw/tetrominoes/tetrominoes_train.tfrecords").exists()
    for split, rows in (("train", range(0, 3)), ("test", range(3, 5))):
        with h5py.File(workflow_dir / f"data/processed/tetrominoes/{split}.h5") as file:
            np.testing.assert_array_equal(file["image"][:], np.stack([scenes[i][1] for i in rows]))
            np.testing.assert_array_equal(file["mask"][:], np.stack([scenes[i][2] for i in rows]))
    log = (workflow_dir / "logs/download_source/tetrominoes/tetrominoes_train.tfrecords.log").read_text()
    assert "no sha256 recorded" in log  # the DeepMind checksums are not recorded yet: said, not hidden


def test_rules_name_their_input_and_params_functions():
    """Input and params functions live in rules/common.smk under names that say what they give, not as lambdas
    inside a rule (they kept coming back: issue 40)."""
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    found = [f"{path.name}:{number}" for path in files
             for number, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\blambda\b", line)]
    assert found == []
