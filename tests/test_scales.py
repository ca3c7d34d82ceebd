"""The scale switch: `snakemake --config scale=NAME` reads that scale's files alone, an unknown scale is one
line, and a scale never overwrites the outputs another scale left in the same directory."""

import pytest

from conftest import jobs, snakemake
from structae import scales
from structae.errors import UserError


def test_each_scale_names_files_that_exist():
    from conftest import REPO

    for scale, files in scales.SCALES.items():
        assert files and all((REPO / path).is_file() for path in files), scale
    with pytest.raises(UserError, match="unknown scale 'huge': choose one of embedded, paper, tiny"):
        scales.files("huge")


@pytest.mark.slow
def test_the_tiny_scale_plans_only_the_tiny_config(workflow_dir):
    tiny, embedded = jobs(snakemake(workflow_dir, "-n", "all")), jobs(snakemake(workflow_dir, "-n", "all", scale=None))
    assert tiny["train"] < 20 < embedded["train"]  # not the tiny config merged into config.yaml


def test_an_unknown_scale_is_one_line(workflow_dir):
    run = snakemake(workflow_dir, "-n", "all", scale="huge")
    lines = [line for line in run.stderr.splitlines() if "structae" in line]
    assert run.returncode != 0 and lines == ["structae: error: unknown scale 'huge': choose one of embedded, paper, "
                                             "tiny (snakemake --config scale=NAME)"]


def test_a_scale_refuses_to_overwrite_another_scales_outputs(workflow_dir):
    scales.record(workflow_dir, "embedded")  # what a run at the embedded scale leaves
    run = snakemake(workflow_dir, "-n", "all")
    assert run.returncode != 0 and "hold the embedded scale's outputs and scale tiny would overwrite them" in run.stderr
    assert snakemake(workflow_dir, "-n", "all", scale="embedded").returncode == 0


@pytest.mark.slow
def test_a_run_records_its_scale(tiny_run):
    assert (tiny_run / scales.SCALE_RECORD).read_text() == "tiny\n"
