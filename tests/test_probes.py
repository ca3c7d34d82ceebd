"""The research probes in probes/, each on a few generated scenes: they run, and print the rows their docs
tables are made of."""

import subprocess
import sys
from pathlib import Path

import pytest

PROBES = Path(__file__).resolve().parents[1] / "probes"


def _small_splits(workdir: Path, dataset: str, sizes: str,
                  out: str = "data/processed/{dataset}/{split}.h5") -> list[str]:
    """Generate the train and val splits of `dataset` at `sizes` (a YAML mapping) in `workdir`; the --config
    arguments that describe them."""
    small = workdir / "small.yaml"
    small.write_text(f"datasets:\n  {dataset}:\n    sizes: {sizes}\n")
    configs = ["--config", str(PROBES.parent / "config.yaml"), "--config", str(small)]
    for split in ("train", "val"):
        subprocess.run([sys.executable, "-m", "structae.cli", *configs, "data", "make", "--dataset", dataset,
                        "--split", split, "--out", out.format(dataset=dataset, split=split)], check=True,
                       cwd=workdir, timeout=120)
    return configs


@pytest.mark.parametrize(("decoder", "init"), [("broadcast", "torch"), ("deconv", "torch"), ("broadcast", "release")])
def test_iodine_decoder_probe_prints_val_mse_beside_the_background_floor(tmp_path, decoder, init):
    """probes/iodine_decoder.py on a few generated scenes: one row per --eval-every steps, and the floor."""
    configs = _small_splits(tmp_path, "multi_dsprites_small", "{train: 16, val: 4, test: 4}")
    result = subprocess.run([sys.executable, str(PROBES / "iodine_decoder.py"), *configs, "--experiment",
                             "iodine_multi_dsprites", "--steps", "4", "--eval-every", "2", "--decoder", decoder,
                             "--init", init],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert decoder in lines[0] and float(lines[0].rsplit(" ", 1)[1]) > 0  # the background-only MSE
    assert [line.split()[0] for line in lines[-2:]] == ["2", "4"]


def test_cae_diagnose_prints_the_checks_and_the_gap_table(tmp_path):
    """probes/cae_diagnose.py on an untrained CAE and a few generated 2Shapes scenes: every check row, and the
    val images counted once across the gap bins (images with one visible object have no gap)."""
    from structae.checkpoint import save_model
    from structae.data.loader import ImageSet
    from structae.models import cae

    _small_splits(tmp_path, "two_shapes", "{train: 8, val: 8, test: 4}", out="data/{split}.h5")
    config = cae.Config(hidden=4, linear=8)
    info = ImageSet.read(tmp_path / "data/val.h5").info()
    save_model(tmp_path / "model.pt", "cae", "cae_two_shapes", 0, 0, config, info, cae.Model(config, info))
    result = subprocess.run([sys.executable, str(PROBES / "cae_diagnose.py"), "model.pt", "data", "--images", "8"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    checks, gaps = result.stdout.split("\n\n")
    assert [line.split(",")[0].split()[0] for line in checks.splitlines()[2:]] == ["train", "val"] + ["val"] * 5
    assert sum(int(line.split()[2]) for line in gaps.splitlines()[2:]) <= 8


def test_val_probe_init_from_continues_from_the_checkpoint_weights(tmp_path):
    """probes/val_probe.py --init-from: the probe's model starts from the checkpoint's weights, not a fresh
    initialisation (an output bias of 7, which no CAE config starts from, is still there after one step)."""
    import torch

    from structae.checkpoint import save_model
    from structae.data.loader import ImageSet
    from structae.models import cae

    configs = _small_splits(tmp_path, "two_shapes", "{train: 32, val: 8, test: 4}")
    config = cae.Config(hidden=4, linear=8, output_bias=7.0)
    info = ImageSet.read(tmp_path / "data/processed/two_shapes/val.h5").info()
    save_model(tmp_path / "start.pt", "cae", "cae_two_shapes", 0, 0, config, info, cae.Model(config, info))
    result = subprocess.run([sys.executable, str(PROBES / "val_probe.py"), *configs, "--experiment", "cae_two_shapes",
                             "--set", "model_config.hidden=4", "--set", "model_config.linear=8", "--set",
                             "train.batch_size=8", "--steps", "1", "--validate-every", "1", "--validate-images", "8",
                             "--init-from", "start.pt", "--keep", "kept"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    kept = torch.load(tmp_path / "kept/model.pt", weights_only=True)["state_dict"]["output.bias"]
    assert kept.item() == pytest.approx(7.0, abs=1e-3)  # the config's own start is -4


@pytest.mark.parametrize("order", ["script", "pipeline"])
def test_cae_official_trains_our_side_and_prints_a_val_row_per_interval(tmp_path, order):
    """probes/cae_official.py, our side, on a few generated 2Shapes scenes: a val row every --validate-every
    steps, ARI-FG in [-1, 1]. The official side needs its checkout: without --anchor it is a one-line error."""
    _small_splits(tmp_path, "two_shapes", "{train: 8, val: 4, test: 4}", out="data/{split}.h5")
    command = [sys.executable, str(PROBES / "cae_official.py"), "--data", "data", "--batch-size", "4",
               "--steps", "4", "--validate-every", "2", "--warmup", "2"]
    result = subprocess.run([*command, "--side", "ours", "--order", order], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()]
    assert [int(row[0]) for row in rows] == [2, 4]
    assert all(-1 <= float(row[2]) <= 1 for row in rows)
    missing = subprocess.run([*command, "--side", "official"], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path)
    assert missing.returncode == 2 and "--anchor" in missing.stderr.splitlines()[-1]
