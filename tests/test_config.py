"""Bad config input ends in one clear line naming the key and what is allowed, and writes nothing."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from structae.cli import main
from structae.config import load_config
from structae.errors import UserError


def _write(tmp_path, mutate):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    mutate(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_embedded_and_paper_configs_are_valid():
    config = load_config([REPO / "config.yaml"])
    assert config["sources"]["mirror"] is None and config["datasets"]["two_shapes"]["seed"] == 0


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["datasets"]["two_shapes"].update(sizez={}), "datasets.two_shapes.sizez: unknown key; allowed here:"),
    (lambda c: c["datasets"]["two_shapes"]["sizes"].update(train=-5),
     "sizes.train: -5 is out of range; it must be >= 0"),
    (lambda c: c["datasets"]["two_shapes"].update(kind="squares"),
     "datasets.two_shapes.kind: 'squares' is not allowed"),
    (lambda c: c["datasets"]["mnist"]["sizes"].update(train="many"), "sizes.train: 'many' is not of type integer"),
    (lambda c: c["splits"]["to_element"].update(dataset="nope"), "splits.to_element.dataset: 'nope' is not a dataset"),
    (lambda c: c.update(scale="huge"), "scale: 'huge' is not allowed; choose one of: tiny, embedded, paper"),
    (lambda c: c["experiments"]["maganet_to_range"]["evaluate"].update(compare_with="nope"),
     "experiments.maganet_to_range.evaluate.compare_with: 'nope' is not another experiment"),
    (lambda c: c["experiments"]["maganet_to_range"]["evaluate"].update(compare_with="vae_to_element"),
     "'vae_to_element' differs in model"),
    (lambda c: c["experiments"]["maganet_to_range"]["evaluate"].update(split="to_nowhere"),
     "evaluate.split: 'to_nowhere' is not a split of 'dsprites'"),
    (lambda c: c["experiments"]["swwae_semi_hard_n100"]["evaluate"].update(split="to_element"),
     "is not a split of 'mnist'"),
    (lambda c: c["experiments"]["iodine_multi_dsprites"]["reported"].update(ari_fg="high"),
     "reported.ari_fg: 'high' is not of type number"),
])
def test_mistakes_are_one_line_naming_the_key(tmp_path, mutate, expected):
    path = _write(tmp_path, mutate)
    with pytest.raises(UserError) as err:
        load_config([path])
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_negative_training_budget_is_refused(tmp_path):
    def add_experiment(config):
        config["experiments"] = {"x": {"paper": "cae", "model": "m", "dataset": "two_shapes",
                                       "train": {"steps": -3, "batch_size": 8}}}
    with pytest.raises(UserError, match=r"experiments\.x\.train\.steps: -3 is out of range; it must be >= 1"):
        load_config([_write(tmp_path, add_experiment)])


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    path = _write(tmp_path, lambda c: c["datasets"]["two_shapes"].update(typo=1))
    out = tmp_path / "out.h5"
    code = main(["--config", str(path), "data", "make", "--dataset", "two_shapes", "--split", "train",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "two_shapes.typo: unknown key" in err
    assert not out.exists()


def test_cli_missing_config_file(tmp_path, capsys):
    code = main(["--config", str(tmp_path / "absent.yaml"), "split", "--split", "to_element", "--data", "x",
                 "--out", str(tmp_path / "s.npz")])
    assert code == 2 and "absent.yaml not found" in capsys.readouterr().err


def test_workflow_stops_on_a_bad_config_with_one_line(workflow_dir):
    config = yaml.safe_load((workflow_dir / "config.yaml").read_text())
    config["datasets"]["two_shapes"]["sizes"]["train"] = -1
    (workflow_dir / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "all"], cwd=workflow_dir,
                            capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if "structae" in line]
    assert result.returncode != 0
    assert lines == ["structae: error: config.yaml: datasets.two_shapes.sizes.train: -1 is out of range; "
                     "it must be >= 0"]
    assert not (workflow_dir / "data" / "processed").exists()
