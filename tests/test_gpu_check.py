"""bench/gpu_check.py: its CPU tier end to end (what CI can run of the GPU check), and the pieces its tables
rest on: which experiments share a measurement, and how an ask is judged."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import gpu_check  # noqa: E402

SECTIONS = ("Machine", "DDP", "Resume", "Paper-scale experiments", "Deterministic kernels", "IODINE at the release",
            "Evaluation", "What a full paper-scale run costs")


def _table(text: str, title: str) -> list[list[str]]:
    """The rows of the markdown table under the heading that starts with `title`."""
    section = text.split(f"### {title}", 1)[1].split("### ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.slow
def test_the_cpu_tier_runs_every_check(tmp_path):
    out = tmp_path / "gpu_check.md"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert all(f"### {title}" in text for title in SECTIONS)
    assert "error:" not in text
    # torchrun with one process joins a process group: the DDP path, not the single-process one
    assert _table(text, "DDP")[0][:3] == ["gloo", "1", "DistributedDataParallel"]
    assert all(row[-1] == "yes" for row in _table(text, "Resume"))
    experiments = _table(text, "Paper-scale experiments")
    assert {row[0] for row in experiments} >= {"cae_two_shapes", "iodine_multi_dsprites", "maganet_to_element",
                                               "vae_to_element"}
    assert all(row[5] == "yes" and float(row[7]) > 0 for row in experiments)
    assert all(row[3] in ("yes", "(not required)") for row in _table(text, "Evaluation"))
    iodine = _table(text, "IODINE at the release")
    assert iodine and iodine[-1][4]  # a val ARI-FG in the last row


def test_experiments_of_one_computation_share_a_measurement(tmp_path):
    gpu_check.write_plan(tmp_path / "plan.json")
    plan = json.loads((tmp_path / "plan.json").read_text())  # as --plan reads it on a GPU machine
    grouped = gpu_check.groups(plan)
    by_first = {items[0]["name"]: [item["name"] for item in items] for items in grouped.values()}
    # 2Shapes, 3Shapes and MNIST&Shape: one model at one image size and batch
    assert by_first["cae_two_shapes"] == ["cae_two_shapes", "cae_three_shapes", "cae_mnist_shape"]
    # the number of labelled digits does not change a step; the pooling does
    supervised_hard = by_first["swwae_supervised_hard_n100"]
    assert "swwae_supervised_hard_n3000" in supervised_hard and "swwae_supervised_soft_n100" not in supervised_hard
    assert sum(len(items) for items in grouped.values()) == len(plan["experiments"])


@pytest.mark.parametrize("asked,needed,verdict", [(1.0, 1.0, "**too small**"), (2.0, 1.0, "ok"), (3.5, 1.0, "over 3×")])
def test_an_ask_is_judged_against_the_projection(asked, needed, verdict):
    assert gpu_check._verdict(asked, needed) == verdict


def test_a_split_of_all_the_rest_counts_the_published_records():
    spec = {"kind": "multi_object", "options": {"variant": "tetrominoes"}, "sizes": {"test": 10000, "val": 10000,
                                                                                    "train": 0}}
    assert gpu_check._train_rows(spec) == 1_000_000 - 20_000
    assert gpu_check._train_rows({"kind": "shapes", "sizes": {"train": 50000, "val": 10}}) == 50000


def test_without_the_config_loader_it_asks_for_a_plan(tmp_path):
    blocker = tmp_path / "jsonschema.py"  # an import of jsonschema that fails, as on a bare GPU image
    blocker.write_text("raise ImportError('no jsonschema', name='jsonschema')\n")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--device", "cpu", "--tiny"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "gpu_check: jsonschema is not installed, so config/paper.yaml cannot be read here; run `python "
        "bench/gpu_check.py --write-plan plan.json` where the project is installed and pass --plan plan.json"]


def test_the_trainer_imports_without_the_config_loader(tmp_path):
    """What the GPU check needs of the package (the trainer, the models, evaluation) imports with jsonschema
    and yaml missing."""
    for name in ("jsonschema", "yaml"):
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('no {name}', name='{name}')\n")
    code = "import structae.train, structae.evaluate, structae.models.iodine, structae.models.cae"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": f"{tmp_path}:{Path(REPO / 'workflow_src')}", "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr


def test_paper_scale_asks_fit_the_rates_measured_on_a_gpu(tmp_path):
    """config/paper.yaml's runtime and memory asks, judged against the rates of the committed H200 run: none
    too small (a job killed at its limit) and none over 3× (hours in the queue for nothing)."""
    out = tmp_path / "judged.md"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--judge",
                           str(REPO / "docs" / "log" / "gpu_check_2026-12-04.md"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = _table(out.read_text(), "Paper-scale experiments")
    assert len(rows) == 46
    judged = {row[0]: (row[11], row[14]) for row in rows}
    assert {name: verdicts for name, verdicts in judged.items() if verdicts != ("ok", "ok")} == {}
