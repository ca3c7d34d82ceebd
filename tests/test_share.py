"""DVC roundtrip with a local remote: push after training, pull into a fresh clone, and Snakemake sees
exactly the pushing machine's state — nothing retrains, and a changed parameter retrains exactly its jobs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, jobs, snakemake
from structae import share

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
REPO_FILES = ["Snakefile", "rules", "report", "envs", "profiles", ".dvcignore", ".gitignore"]
MADE_LOCALLY = {"figure_data", "figure_curves", "table_metrics", "claims_table", "all"}  # cheap, not shared
# Snakemake forgives a newer input whose checksum it recorded, but only for files under 1 MB; real datasets
# and checkpoints are far larger, so the dry runs here never take that shortcut.
NO_CHECKSUMS = ("--max-checksum-file-size", "0")


def planned(cwd: Path) -> dict[str, int]:
    return jobs(snakemake(cwd, "-n", "all", *NO_CHECKSUMS))


def run(cwd: Path, *command: str) -> str:
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout


def clone_with_remote(source: Path, target: Path, remote: Path) -> Path:
    run(target.parent, "git", "clone", "-q", str(source), target.name)
    run(target, "dvc", "remote", "modify", "--local", "shared", "url", str(remote))
    return target


def shared_origin(origin: Path, remote: Path) -> Path:
    """The trained tiny workflow as a git repository whose results a `structae share push` shared."""
    for name in REPO_FILES:
        if not (origin / name).exists():
            shutil.copy(REPO / name, origin / name)
    (origin / ".dvc").mkdir()
    shutil.copy(REPO / ".dvc" / "config", origin / ".dvc" / "config")
    run(origin, "git", "init", "-q")
    run(origin, "git", "add", "-A")
    run(origin, "git", "commit", "-qm", "workflow")
    run(origin, "dvc", "remote", "modify", "--local", "shared", "url", str(remote))
    assert set(planned(origin)) == set()  # trained: nothing to do

    pushed = run(origin, "structae", "share", "push")
    assert "git add data/processed.dvc" in pushed
    run(origin, "git", "add", *pushed.split("git add ", 1)[1].split(" && ")[0].split())  # what push says to commit
    run(origin, "git", "commit", "-qm", "share")
    return origin


@pytest.mark.slow
def test_pull_into_a_fresh_clone_retrains_nothing_and_params_still_count(tiny_done, tmp_path):
    remote = tmp_path / "remote"
    origin = shared_origin(tiny_done, remote)  # the tiny workflow, trained and shared
    fresh = clone_with_remote(origin, tmp_path / "fresh", remote)
    run(fresh, "structae", "share", "pull")
    assert (fresh / "results/checkpoints/tiny_two_shapes/seed1/model.pt").is_file()
    assert set(planned(fresh)) <= MADE_LOCALLY

    # Whatever order DVC writes files in, the restored times win: scramble them so every input is newer
    # than its outputs (the worst case), check that Snakemake would retrain, then pull again.
    files = sorted(share._shared_files(fresh), reverse=True)  # outputs (results/) before inputs (data/)
    for offset, path in enumerate(files):
        os.utime(fresh / path, (1e9 + offset, 1e9 + offset))
    assert "train" in planned(fresh)
    run(fresh, "structae", "share", "pull")
    assert set(planned(fresh)) <= MADE_LOCALLY

    config = yaml.safe_load((fresh / TINY).read_text())
    config["experiments"]["tiny_to_element"]["train"]["lr"] = 0.01
    (fresh / TINY).write_text(yaml.safe_dump(config, sort_keys=False))
    rerun = planned(fresh)
    assert rerun["train"] == 1 and rerun["evaluate"] == 1  # exactly tiny_to_element's one seed
    assert not {"generate_dataset", "split_dataset"} & set(rerun)


def test_metadata_record_names_decode_to_output_paths(tmp_path):
    long_path = "results/checkpoints/" + "x" * 300 + "/model.pt"
    encoded = share.base64.urlsafe_b64encode(long_path.encode()).decode()
    parts = [encoded[i:i + 254] for i in range(0, len(encoded), 254)]
    record = Path(*["@" + p for p in parts[:-1]], parts[-1])  # as Snakemake splits long names
    assert share.output_of(record) == long_path


@pytest.mark.slow
def test_plain_dvc_commands_see_and_move_the_shared_data(tiny_done, tmp_path):
    """As a DVC user works: plain status, pull, diff, add and push, then `snakemake all` plans no training."""
    remote = tmp_path / "remote"
    origin = shared_origin(tiny_done, remote)
    assert "up to date" in run(origin, "dvc", "status")  # not "no data or pipelines tracked"
    assert "deleted" not in run(origin, "dvc", "data", "status")

    fresh = clone_with_remote(origin, tmp_path / "fresh", remote)
    run(fresh, "dvc", "pull")
    assert (fresh / "results/checkpoints/tiny_two_shapes/seed1/model.pt").is_file()
    dry_run = snakemake(fresh, "-n", "all", *NO_CHECKSUMS)
    assert "structae: restored the provenance of" in dry_run.stderr  # once, after the pull
    assert set(jobs(dry_run)) <= MADE_LOCALLY
    assert "restored" not in snakemake(fresh, "-n", "all").stderr

    metrics = fresh / "results/metrics/tiny_two_shapes.json"
    metrics.write_text(metrics.read_text() + "\n")
    assert "results/metrics/tiny_two_shapes.json" in run(fresh, "dvc", "diff")
    run(fresh, "dvc", "add", "results/metrics")
    assert "2 files pushed" in run(fresh, "dvc", "push")  # the changed file and the folder's new listing


@pytest.mark.slow
def test_a_missing_remote_is_one_line_naming_it_and_how_to_set_it(tiny_done, tmp_path):
    remote = tmp_path / "remote"
    origin = shared_origin(tiny_done, remote)
    run(tmp_path, "git", "clone", "-q", str(origin), "fresh")
    fresh = tmp_path / "fresh"  # the tracked placeholder remote, which does not exist here
    pull = subprocess.run(["structae", "share", "pull"], cwd=fresh, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    assert pull.returncode != 0 and pull.stderr.count("\n") == 1, pull.stderr
    assert "/srv/structae/dvc-remote, which does not exist" in pull.stderr
    assert "dvc remote modify --local shared url PATH_OR_URL" in pull.stderr
    warning = snakemake(fresh, "-n", "all").stderr
    assert "not pulled (remote 'shared' is /srv/structae/dvc-remote)" in warning

    run(fresh, "env", f"STRUCTAE_DVC_REMOTE={remote}", "structae", "share", "pull")  # the variable sets it
    assert (fresh / "results/checkpoints/tiny_two_shapes/seed1/model.pt").is_file()
    assert str(remote) in run(fresh, "dvc", "remote", "list")


def test_restore_skips_a_file_whose_size_is_not_the_pushed_ones(tmp_path):
    """A pull that did not overwrite local work leaves a file of another size: it keeps its own time."""
    for name in ("a", "b"):
        path = tmp_path / "results/metrics" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        os.utime(path, ns=(10**18, 10**18))
    share.snapshot(tmp_path)
    changed = tmp_path / "results/metrics/b.json"
    changed.write_text('{"local": "work"}')
    for name in ("a", "b"):
        os.utime(tmp_path / "results/metrics" / f"{name}.json", ns=(2 * 10**18, 2 * 10**18))
    assert share.restore(tmp_path) == 1
    assert (tmp_path / "results/metrics/a.json").stat().st_mtime_ns == 10**18
    assert changed.stat().st_mtime_ns == 2 * 10**18
    assert share.restore_if_pulled(tmp_path) is None  # this snapshot is already restored
