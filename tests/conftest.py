"""What the tests share: the repository's paths, a copy of the workflow to run in a temporary directory,
Snakemake as a subprocess, and one run of the tiny workflow that every test needing finished outputs uses.

Tiers: tests marked `slow` (whole-workflow runs, the DVC roundtrip, real SLURM, paper-scale one-steps,
trainer subprocesses) run in `make test`; `make check` runs the rest, in under 3 minutes on 2 cores.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from structae import kernels

# Before any test imports torch (its libraries read the switches once): the tests' numbers, and the hashes
# they compare with, are portable ones, the same on every x86-64 CPU with AVX2.
kernels.pin("portable")

REPO = Path(__file__).resolve().parents[1]
TINY = Path("config/tiny.yaml")  # the tiny scale's config, relative to a workflow copy
TINY_CONFIG = REPO / TINY
WORKFLOW_FILES = ["Snakefile", "rules", "report", "envs", "profiles", "config.yaml", "config"]


def copy_workflow(target: Path, config_yaml: Path | None = None, files: list[str] = WORKFLOW_FILES) -> Path:
    """The workflow's files in `target` (every scale's config), with `config_yaml` as its config.yaml if given."""
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target / name)
    if config_yaml:
        shutil.copy(config_yaml, target / "config.yaml")
    return target


def scale_option(scale: str | None) -> list[str]:
    """Snakemake's arguments that pick `scale` (as a user does); last on a command line, since --config
    takes every word after it."""
    return ["--config", f"scale={scale}"] if scale else []


def snakemake(workdir: Path, *args: str, scale: str | None = "tiny") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args, *scale_option(scale)],
                          cwd=workdir, env=env, capture_output=True, text=True)


def jobs(dry_run: subprocess.CompletedProcess) -> dict[str, int]:
    """The job-count table of a dry run: rule -> count."""
    counts, in_table = {}, False
    for line in dry_run.stdout.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
        elif in_table and line.strip() and not line.startswith("-"):
            rule, *rest = line.split()
            if rule == "total":
                break
            counts[rule] = int(rest[0])
    return counts


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A copy of the workflow in a temporary directory; tests run it at the tiny scale (config/tiny.yaml)."""
    return copy_workflow(tmp_path)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny workflow after `snakemake all`, made once per session. Tests only read it; one that changes
    anything takes `tiny_done`, its own copy."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny_run"))
    run = snakemake(workdir, "all")
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir


@pytest.fixture
def tiny_done(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished tiny workflow (file times and Snakemake's records kept)."""
    target = tmp_path / "tiny"
    shutil.copytree(tiny_run, target, symlinks=True)
    return target
