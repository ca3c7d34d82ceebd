"""Nothing from a config string or a requested path reaches a shell unquoted, and every job's process is
the `structae` command itself (exec), so the signal that stops a job stops its work."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, scale_option

SHELL_BLOCK = re.compile(r"^    shell:\n((?:        .*\n)+)", re.MULTILINE)
PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")


def _shell_lines() -> dict[str, str]:
    """rule file -> each shell command's text (its string literals joined)."""
    commands = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        for number, block in enumerate(SHELL_BLOCK.findall(path.read_text())):
            commands[f"{path.name}#{number}"] = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block))
    return commands


def test_every_shell_value_is_quoted_by_snakemake_and_execs():
    commands = _shell_lines()
    assert len(commands) >= 15
    for where, command in commands.items():
        unquoted = [p for p in PLACEHOLDER.findall(command) if not p.endswith(":q")]
        assert not unquoted, f"{where}: {unquoted} reach the shell unquoted"
        assert command.startswith("exec structae") or command.startswith("exec {params.launcher:q}"), where


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *args, *scale_option("tiny")],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_mirror_string_cannot_run_commands(workflow_dir, tmp_path):
    owned = tmp_path / "owned"
    config = yaml.safe_load((workflow_dir / TINY).read_text())
    config["sources"] = {"mirror": f"/x'; touch {owned}; echo '"}
    (workflow_dir / TINY).write_text(yaml.safe_dump(config, sort_keys=False))
    run = _snakemake(workflow_dir, "data/raw/mnist_train_labels/train-labels-idx1-ubyte.gz")
    assert run.returncode != 0  # the mirror does not exist
    assert "not found in the mirror" in (workflow_dir / "logs/download_source/mnist_train_labels/"
                                         "train-labels-idx1-ubyte.gz.log").read_text()
    assert not owned.exists()


@pytest.mark.slow
@pytest.mark.parametrize("target", ["data/raw/x$(touch {owned})/f", "data/raw/mnist_train_labels/$(touch {owned})",
                                    "results/checkpoints/x$(touch {owned})/seed0/model.pt",
                                    "results/metrics/../../x$(touch {owned}).json"])
def test_a_requested_path_cannot_run_commands(workflow_dir, tmp_path, target):
    owned = tmp_path / "owned"
    run = _snakemake(workflow_dir, target.format(owned=owned))
    assert run.returncode != 0 and "MissingRuleException" in run.stderr + run.stdout
    assert not owned.exists()


@pytest.mark.slow
def test_stopping_a_training_job_stops_the_trainer(workflow_dir):
    """SIGTERM to the job's process (what Snakemake and SLURM send) reaches the trainer: it saves its resume
    state and exits; no trainer is left running without its job."""
    config = yaml.safe_load((workflow_dir / TINY).read_text())
    config["experiments"]["tiny_two_shapes"]["train"].update(steps=100_000, checkpoint_every=10_000)
    (workflow_dir / TINY).write_text(yaml.safe_dump(config, sort_keys=False))
    target = "results/checkpoints/tiny_two_shapes/seed0/model.pt"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    snakemake = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", target, *scale_option("tiny")],
                                 cwd=workflow_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = workflow_dir / "logs/train/tiny_two_shapes/seed0.log"
    try:
        deadline = time.monotonic() + 180
        while "training tiny_two_shapes" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and snakemake.poll() is None, "the training job did not start"
            time.sleep(0.2)
        job = _children(snakemake.pid)
        assert len(job) == 1, job  # the job's shell became the trainer
        os.kill(job[0], signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _trainers(workflow_dir):
            assert time.monotonic() < deadline, "the trainer outlived its job"
            time.sleep(0.2)
        assert "stopped by SIGTERM" in log.read_text()
        assert (workflow_dir / "results/resume/tiny_two_shapes/seed0/state.pt").exists()
    finally:
        snakemake.send_signal(signal.SIGINT)
        snakemake.wait(timeout=60)
        for orphan in _trainers(workflow_dir):  # what the bug left behind, so the suite goes on
            os.kill(orphan, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _trainers(workdir: Path) -> list[int]:
    """Processes training in `workdir`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if b"train" in cmdline and Path(os.readlink(proc / "cwd")) == workdir and proc.name != str(os.getpid()):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found
