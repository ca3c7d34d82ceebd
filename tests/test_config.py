"""Bad config input ends in one clear line naming the key and what is allowed, and writes nothing."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, TINY, scale_option
from structae.cli import main
from structae.config import load_config
from structae.errors import UserError


def _write(tmp_path, mutate):
    # Through JSON: config.yaml's anchors make entries share objects, and a mistake goes into one entry only.
    config = json.loads(json.dumps(yaml.safe_load((REPO / "config.yaml").read_text())))
    mutate(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_embedded_and_paper_configs_are_valid():
    config = load_config([REPO / "config.yaml"])
    assert config["sources"]["mirror"] is None and config["datasets"]["two_shapes"]["seed"] == 0
    paper = load_config([REPO / "config.yaml", REPO / "config/paper.yaml"])
    assert paper["scale"] == "paper" and paper.keys() == config.keys()
    longer = load_config([REPO / "config.yaml", REPO / "config/cae_long.yaml"])  # only the named runs change
    changed = {name for name, entry in longer["experiments"].items() if entry != config["experiments"][name]}
    assert changed == {"cae_mnist_shape", "cae_rgb_max", "cae_rgb_weighted", "cae_rgb_softmax", "cae_rgb_hardmax"}
    assert all(longer["experiments"][name]["train"]["steps"] >= 5000 for name in changed)
    rgb = [longer["experiments"][name] for name in changed if name.startswith("cae_rgb_")]
    assert len(rgb) == 4 and all(len(entry["seeds"]) == 4 for entry in rgb)  # the pooling comparison's seeds
    longer = load_config([REPO / "config.yaml", REPO / "config/iodine_long.yaml"])
    changed = {name for name, entry in longer["experiments"].items() if entry != config["experiments"][name]}
    assert changed == {"iodine_multi_dsprites"}
    assert longer["experiments"]["iodine_multi_dsprites"]["train"]["steps"] > 10000
    bigger = load_config([REPO / "config.yaml", REPO / "config/iodine_big_sprites.yaml"])  # the first split's data
    changed = {name for name, entry in bigger["experiments"].items() if entry != config["experiments"][name]}
    assert changed == {"iodine_multi_dsprites"}
    assert bigger["experiments"]["iodine_multi_dsprites"]["dataset"] == "multi_dsprites_big"
    assert bigger["datasets"]["multi_dsprites_big"]["options"]["sprite_scale"] == 2


def test_the_package_schema_is_the_documented_one():
    """The package reads its own copy of the schema (it must work without the workflow's files); the copy the
    docs point at, under rules/, must say the same."""
    assert (REPO / "rules/schemas/config.schema.yaml").read_text() == \
        (REPO / "workflow_src/structae/schemas/config.schema.yaml").read_text()


def test_fresh_test_splits_only_where_a_generator_can_redraw_them():
    """Embedded: the grayscale CAE sets and IODINE's main run are checked on scenes of generator seed 1; paper
    scale keeps that for the generated CAE sets and drops it for the downloaded Multi-dSprites."""
    fresh = {name for name, entry in load_config([REPO / "config.yaml"])["experiments"].items()
             if entry["evaluate"]["fresh_test_seed"] is not None}
    assert fresh == {"cae_two_shapes", "cae_three_shapes", "cae_mnist_shape", "iodine_multi_dsprites"}
    paper = load_config([REPO / "config.yaml", REPO / "config/paper.yaml"])["experiments"]
    assert {name for name in fresh if paper[name]["evaluate"]["fresh_test_seed"] is not None} == fresh - {
        "iodine_multi_dsprites"}


def test_paper_scale_cae_keeps_the_official_output_initialisation():
    """The embedded 2Shapes starts its output bias at -4; paper-scale files are merged over config.yaml key by
    key, so without its own value a paper-scale CAE would inherit that and not be the official model."""
    embedded = load_config([REPO / "config.yaml"])["experiments"]
    assert embedded["cae_two_shapes"]["model_config"]["output_bias"] == -4
    paper = load_config([REPO / "config.yaml", REPO / "config/paper.yaml"])["experiments"]
    cae = {name: entry for name, entry in paper.items() if entry["model"] == "cae"}
    assert cae and all(entry["model_config"].get("output_bias", 0) == 0 for entry in cae.values())


def test_paper_scale_iodine_is_the_release_per_dataset():
    """deepmind-research/iodine configurations.py: T 5 refinements, Sonnet's start (PyTorch's is √3 times
    smaller), the logistic likelihood, the averaged refinement map, cosine coordinates into the refinement and
    one MLP layer on Multi-dSprites and Tetrominoes, linear coordinates and two MLP layers on CLEVR6, and the
    learning rate decayed tenfold per million steps."""
    paper = load_config([REPO / "config.yaml", REPO / "config/paper.yaml"])["experiments"]
    iodine = {name: entry for name, entry in paper.items() if entry["model"] == "iodine"}
    assert len(iodine) == 7
    for name, entry in iodine.items():
        model = entry["model_config"]
        assert (model["weight_init"], model["iterations"], model["likelihood"], model["refine_pool"]) == (
            "release", 5, "logistic", "average"), name
        assert (entry["train"]["schedule"], entry["train"]["decay_steps"], entry["train"]["beta1"]) == (
            "exponential", 1_000_000, 0.95), name
        clevr = name == "iodine_clevr6"
        assert (model["refine_coordinates"], model["refine_mlp_layers"]) == (
            ("linear", 2) if clevr else ("cos", 1)), name


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
    (lambda c: c["experiments"]["maganet_to_element"]["train"].update(validate_every=20),
     "experiments.maganet_to_element.train.validate_every needs a val split of dataset 'dsprites'"),
    (lambda c: c["experiments"]["swwae_semi_hard_n100"]["train"].update(validate_every=20),
     "validate_every needs a val split of dataset 'mnist'"),
    (lambda c: c["experiments"]["cae_two_shapes"]["train"].update(validate_every=75),
     "experiments.cae_two_shapes.train.validate_every 75 is not a multiple of log_every 50"),
    (lambda c: c["experiments"]["swwae_semi_hard_n100"]["evaluate"].update(fresh_test_seed=1),
     "experiments.swwae_semi_hard_n100.evaluate.fresh_test_seed: dataset 'mnist' (mnist_subset) is not a scene "
     "generator"),
    (lambda c: c["experiments"]["cae_two_shapes"]["evaluate"].update(fresh_test_seed=0),
     "fresh_test_seed: 0 is the seed of dataset 'two_shapes' itself, so its test split would be the same scenes"),
    (lambda c: c["experiments"]["cae_two_shapes"]["evaluate"].update(fresh_test_seed=-1),
     "fresh_test_seed: -1 is out of range; it must be >= 0"),
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
    config = yaml.safe_load((workflow_dir / TINY).read_text())
    config["datasets"]["two_shapes"]["sizes"]["train"] = -1
    (workflow_dir / TINY).write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "all", *scale_option("tiny")], cwd=workflow_dir,
                            capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if "structae" in line]
    assert result.returncode != 0
    assert lines == ["structae: error: config/tiny.yaml: datasets.two_shapes.sizes.train: -1 is out of range; "
                     "it must be >= 0"]
    assert not (workflow_dir / "data" / "processed").exists()


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["experiments"]["cae_two_shapes"]["train"].update(lr=float("nan")),
     "experiments.cae_two_shapes.train.lr: nan is not a finite number; write a finite value"),
    (lambda c: c["experiments"]["cae_two_shapes"]["train"].update(lr=float("inf")),
     "train.lr: inf is not a finite number"),
    (lambda c: c["experiments"]["iodine_multi_dsprites"]["model_config"].update(sigma=float("-inf")),
     "model_config.sigma: -inf is not a finite number"),
    (lambda c: c["experiments"]["cae_two_shapes"]["train"].update(steps=20.0),
     "experiments.cae_two_shapes.train.steps: 20.0 must be an integer; write 20"),
    (lambda c: c["datasets"]["two_shapes"]["sizes"].update(train=64.0), "sizes.train: 64.0 must be an integer"),
    (lambda c: c["experiments"]["cae_two_shapes"].update(seeds=[0.0]), "seeds.0: 0.0 must be an integer; write 0"),
    (lambda c: c["experiments"].update({"Bad-Name": c["experiments"]["cae_two_shapes"]}),
     "experiments entry name 'Bad-Name' is not allowed; use lower_snake_case"),
    (lambda c: c["datasets"]["two_shapes"]["sizes"].update({"../up": 5}), "name '../up' is not allowed"),
    (lambda c: c["experiments"]["cae_two_shapes"]["model_config"].update(blob=["x" * 1000] * 100),
     "experiments.cae_two_shapes: 10"),  # 100 × 1,000 characters and the entry
])
def test_bad_values_are_one_line_naming_the_key(tmp_path, mutate, expected):
    test_mistakes_are_one_line_naming_the_key(tmp_path, mutate, expected)


def _write_text(tmp_path, text: str | bytes):
    path = tmp_path / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("text, expected", [
    ("scale: tiny\ntrain: 1\ndatasets: {}\ntrain: 2\n",
     "line 4: key 'train' appears twice in one mapping and YAML would keep only the last; remove one"),
    ((REPO / "config.yaml").read_bytes().replace(b"cae_two_shapes:", b"cae_\xff:"),
     "is not UTF-8 text (byte 0xff); save the file as UTF-8"),
    ("__use_yte__: true\n" + (REPO / "config.yaml").read_text(),
     "__use_yte__ makes Snakemake run Python templates from the config"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)) + "scale: tiny\n",
     "expands to more than 100,000 values (nested YAML anchors?)"),
])
def test_unsafe_config_files_are_refused_in_one_line(tmp_path, text, expected):
    with pytest.raises(UserError) as err:
        load_config([_write_text(tmp_path, text)])
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_merge_keys_may_override_without_counting_as_duplicates(tmp_path):
    text = (REPO / "config.yaml").read_text()
    assert "<<: *" in text  # config.yaml derives experiments from others
    load_config([_write_text(tmp_path, text)])


@pytest.mark.parametrize("text, expected", [
    ("__use_yte__: true\nscale: ?f\"{__import__('pathlib').Path('{owned}').touch()}tiny\"\n",
     "__use_yte__ makes Snakemake run Python templates"),
    ("scale: tiny\nscale: paper\n", "line 2: key 'scale' appears twice"),
    (b"scale: tiny\ndatasets: {\xff: {}}\n", "line 2 is not UTF-8 text (byte 0xff)"),
])
def test_workflow_refuses_unsafe_config_yaml_before_snakemake_reads_it(workflow_dir, tmp_path, text, expected):
    owned = tmp_path / "owned"
    text = text.replace("{owned}", str(owned)) if isinstance(text, str) else text
    (workflow_dir / TINY).write_bytes(text.encode() if isinstance(text, str) else text)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "all", *scale_option("tiny")], cwd=workflow_dir,
                            capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if "structae" in line]
    assert result.returncode != 0 and len(lines) == 1 and expected in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not owned.exists()


def test_cli_draws_a_fresh_test_split_only_from_a_scene_generator(tmp_path, capsys):
    path = _write(tmp_path, lambda c: c["datasets"]["two_shapes"]["sizes"].update(test=8))
    made = {}
    for seed in (None, 1):
        made[seed] = tmp_path / f"test_{seed}.h5"
        seed_option = [] if seed is None else ["--seed", str(seed)]
        assert main(["--config", str(path), "data", "make", "--dataset", "two_shapes", "--split", "test",
                     *seed_option, "--out", str(made[seed])]) == 0
    with h5py.File(made[None]) as own, h5py.File(made[1]) as fresh:
        assert own["image"].shape == fresh["image"].shape and not np.array_equal(own["image"][:], fresh["image"][:])
    capsys.readouterr()
    out = tmp_path / "mnist.h5"
    code = main(["--config", str(path), "data", "make", "--dataset", "mnist", "--split", "test", "--seed", "1",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "dataset 'mnist' (mnist_subset) is not a scene generator" in err
    assert not out.exists()
