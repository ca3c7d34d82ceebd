"""probes/iodine_control.py, the IODINE control against zhixuan-lin/IODINE: on a tiny synthetic npz it must train
ours from the data file alone (no h5py, yaml or matplotlib importable), write a CSV row per evaluation with
finite scores, repeat its numbers on a second run, and say in one line what is missing. The anchor's part runs
only where the anchor has been exported to /tmp/anchors/iodine (see docs/iodine.md)."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "probes" / "iodine_control.py"
ANCHOR = Path("/tmp/anchors/iodine")
TINY = ["--steps", "2", "--eval-every", "1", "--batch", "4", "--slots", "2", "--iterations", "2", "--latent", "4",
        "--decoder-width", "4", "--decoder-layers", "2", "--refine-width", "4", "--refine-layers", "2",
        "--refine-hidden", "8", "--threads", "1"]
# What a bare torch + numpy machine lacks: importing any of these fails in the harness's process.
ABSENT = ("h5py", "yaml", "jsonschema", "matplotlib", "pandas", "scipy", "snakemake")


@pytest.fixture
def data(tmp_path):
    """8 train and 4 val images of 16×16 RGB: a grey background with one or two coloured squares."""
    rng = np.random.default_rng(0)
    images = np.full((12, 16, 16, 3), 60, np.uint8)
    masks = np.zeros((12, 16, 16), np.uint8)
    for i in range(12):
        for label in range(1, 2 + i % 2):
            y, x = rng.integers(0, 10, 2)
            masks[i, y:y + 6, x:x + 6] = label
            images[i][masks[i] == label] = rng.integers(0, 256, 3)
    path = tmp_path / "tiny.npz"
    np.savez(path, train_images=images[:8], val_images=images[8:], val_masks=masks[8:])
    return path


def _run(tmp_path, *args):
    blocked = tmp_path / "blocked"
    blocked.mkdir(exist_ok=True)
    for name in ABSENT:
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is absent in this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT / "workflow_src")])}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=tmp_path)


def _rows(out: Path) -> list[dict]:
    with (out / "curves.csv").open() as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == ["model", "step", "minutes", "val_ari_fg", "val_ari", "val_mse", "train_loss"]
        return list(reader)


def _check_curve(rows: list[dict], model: str) -> None:
    mine = [row for row in rows if row["model"] == model]
    assert [int(row["step"]) for row in mine] == [0, 1, 2]
    minutes = [float(row["minutes"]) for row in mine]
    assert minutes[0] == 0 and minutes[0] < minutes[1] <= minutes[2]
    for row in mine:
        assert -1 <= float(row["val_ari_fg"]) <= 1 and -1 <= float(row["val_ari"]) <= 1
        assert 0 < float(row["val_mse"]) < 1
    assert math.isnan(float(mine[0]["train_loss"]))  # no training before the first row
    assert all(math.isfinite(float(row["train_loss"])) for row in mine[1:])


def test_ours_trains_from_the_npz_alone_and_repeats_its_numbers(tmp_path, data):
    runs = []
    for name in ("first", "second"):
        result = _run(tmp_path, "--train", "ours", "--data", str(data), "--out", str(tmp_path / name), *TINY,
                      "--ours-config", '{"refine_pool": "average", "refine_hidden": 6}')
        assert result.returncode == 0, result.stderr
        rows = _rows(tmp_path / name)
        assert {row["model"] for row in rows} == {"ours"}
        _check_curve(rows, "ours")
        runs.append(rows)
    assert "ours   step      2" in result.stdout
    # Same batches, same start, a seeded evaluation: everything but the minutes repeats.
    strip = [[{k: v for k, v in row.items() if k != "minutes"} for row in rows] for rows in runs]
    assert strip[0] == strip[1]
    # The size flags reach our Config; --ours-config wins over them.
    config = json.loads((tmp_path / "first" / "config.json").read_text())["ours_config"]
    assert (config["slots"], config["iterations"], config["latent"]) == (2, 2, 4)
    assert (config["refine_pool"], config["refine_hidden"]) == ("average", 6)


def test_missing_data_or_anchor_is_one_line(tmp_path, data):
    missing = tmp_path / "missing.npz"
    result = _run(tmp_path, "--train", "ours", "--data", str(missing), "--out", str(tmp_path / "out"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"iodine_control: no data file {missing}; make it with --export {missing} (see docs/iodine.md)"]
    result = _run(tmp_path, "--train", "anchor", "--data", str(data), "--out", str(tmp_path / "out"),
                  "--anchor", str(tmp_path))
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"iodine_control: no anchor at {tmp_path}")


def test_the_stand_in_ignore_label_is_structae_s():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import iodine_control
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from structae.data.h5 import IGNORE_LABEL

    assert iodine_control.IGNORE_LABEL == IGNORE_LABEL
    order = iodine_control.batch_order(10, 4, 5, seed=0)  # 20 rows: two epochs, each image once per epoch
    assert order.shape == (5, 4) and sorted(order.ravel()[:10]) == list(range(10))


@pytest.mark.skipif(not (ANCHOR / "lib" / "modeling" / "iodine.py").is_file(),
                    reason="the anchor is not exported to /tmp/anchors/iodine")
def test_both_models_write_their_curves(tmp_path, data):
    result = _run(tmp_path, "--train", "both", "--data", str(data), "--out", str(tmp_path / "both"),
                  "--anchor", str(ANCHOR), *TINY)
    assert result.returncode == 0, result.stderr
    rows = _rows(tmp_path / "both")
    _check_curve(rows, "ours")
    _check_curve(rows, "anchor")
    arch = json.loads((tmp_path / "both" / "config.json").read_text())["anchor_arch"]
    assert (arch["SLOTS"], arch["ITERS"], arch["DIM_LATENT"]) == (2, 2, 4)  # ITERS counts refinements, as ours
