"""Shared storage faults: every writer on a full disk, and the temporaries of killed writers.

The full disk is a small tmpfs mounted for the test where that is allowed (root, as in CI); where mounting
is refused, Python's writes under the test's directory fail with ENOSPC past the same free space instead
(STRUCTAE_TEST_NO_MOUNT=1 forces that). Every writer the package has writes through Python's files, so both
reach the same code.
"""

import builtins
import csv
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from conftest import snakemake
from structae import checkpoint, cli, files, tables
from structae import train as engine
from structae.config import load_config
from structae.data import h5, loader
from structae.data.datasets import make_split
from structae.data.download import download
from structae.errors import UserError
from structae.figures.common import save
from structae.train import CsvLog, Run

DISK_BYTES = 1 << 20
ONE_LINE = re.compile(r"(no space left|disk quota exceeded) on \S+ writing (?P<path>\S+) \((needed about [\d.]+ \S+"
                      r"|needed more than the [\d.]+ \S+ written|could not write a byte); [\d.]+ \S+ free\): "
                      r"free space .*on \S+ or run the workflow from a file system with more room")


class _Quota:
    """Bytes the injected disk still takes."""

    def __init__(self):
        self.left: int | None = None


class _FillingFile:
    """A file under the injected disk: writes past the quota write what fits, then fail with ENOSPC."""

    def __init__(self, file, quota: _Quota):
        self._file, self._quota = file, quota

    def write(self, data):
        size = len(data.encode()) if isinstance(data, str) else memoryview(data).nbytes
        if self._quota.left is not None and size > self._quota.left:
            fits = self._quota.left
            self._file.write(data[:fits] if isinstance(data, str) else memoryview(data).cast("B")[:fits])
            self._quota.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(self._file, "name", None))
        if self._quota.left is not None:
            self._quota.left -= size
        return self._file.write(data)

    def fileno(self):  # Pillow would write to the descriptor, past the quota
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __iter__(self):
        return iter(self._file)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


class SmallDisk:
    """A directory whose file system has little room; `fill` leaves it `leave` bytes."""

    def __init__(self, root: Path, mounted: bool, monkeypatch):
        self.root, self.mounted, self.quota = root, mounted, _Quota()
        if not mounted:
            self._inject(monkeypatch)

    def fill(self, leave: int) -> None:
        if self.mounted:
            free = shutil.disk_usage(self.root).free
            (self.root / "filler").write_bytes(bytes(max(0, free - leave)))
        else:
            self.quota.left = leave

    def _inject(self, monkeypatch) -> None:
        real_open = io.open
        root = str(self.root.resolve())

        def opening(file, mode="r", *args, **kwargs):
            opened = real_open(file, mode, *args, **kwargs)
            writing = any(flag in mode for flag in "wax+")
            if writing and isinstance(file, str | os.PathLike) and os.path.abspath(file).startswith(root):
                return _FillingFile(opened, self.quota)
            return opened

        monkeypatch.setattr(builtins, "open", opening)
        monkeypatch.setattr(io, "open", opening)


def _mount(directory: Path) -> bool:
    if os.environ.get("STRUCTAE_TEST_NO_MOUNT") or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(directory)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def disk(tmp_path, monkeypatch):
    root = tmp_path / "disk"
    root.mkdir()
    mounted = _mount(root)
    yield SmallDisk(root, mounted, monkeypatch)
    if mounted:
        subprocess.run(["umount", "-l", str(root)], check=True)


def _one_line(err: UserError, path: Path) -> None:
    message = str(err)
    assert "\n" not in message
    match = ONE_LINE.fullmatch(message)
    assert match, message
    assert match["path"] == str(path)


def _left(directory: Path) -> list[str]:
    """What a failed write left: every file under `directory` but the filler."""
    return sorted(p.name for p in directory.rglob("*") if p.is_file() and p.name != "filler")


def _noise_batches(sizes: list[int]):
    rng = np.random.default_rng(0)
    for size in sizes:  # random pixels: nothing compresses them, so the rows outgrow the disk
        yield {"image": rng.integers(0, 256, (size, 16, 16, 3), dtype=np.uint8),
               "mask": rng.integers(0, 256, (size, 16, 16), dtype=np.uint8),
               "factors": {"position": rng.random((size, 2))}}


# Whole chunks are deflated beside HDF5 and stored directly; rows that do not start a chunk go through HDF5's
# chunk cache and reach the disk as the file closes: there a failed write made HDF5 2.0 crash (segfault).
@pytest.mark.parametrize("sizes", [[64] * 20, [64] + [30] * 40], ids=["whole-chunks", "chunk-cache"])
def test_split_writer_on_a_full_disk_is_one_line_and_leaves_nothing(disk, sizes):
    disk.fill(leave=64 << 10)
    out = disk.root / "processed" / "train.h5"
    with pytest.raises(UserError) as err:
        h5.write_split(out, _noise_batches(sizes), {"dataset": "noise"})
    _one_line(err.value, out)
    assert "needed more than the" in str(err.value)
    assert _left(disk.root) == []


def test_data_make_on_a_full_disk_prints_one_line_and_exits_2(disk, capsys):
    disk.fill(leave=32 << 10)
    out = disk.root / "data" / "train.h5"
    spec = json.dumps({"kind": "shapes", "sizes": {"train": 2000}})
    code = cli.main(["data", "make", "--dataset", "blobs", "--split", "train", "--out", str(out), "--spec", spec])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("structae: error: no space left on ") and "Traceback" not in err
    assert f"writing {out} (" in err
    assert _left(disk.root) == []


def test_checkpoint_on_a_full_disk_says_what_it_needed(disk):
    disk.fill(leave=16 << 10)
    out = disk.root / "checkpoints" / "model.pt"
    with pytest.raises(UserError) as err:
        checkpoint.atomic_save({"weights": torch.zeros(500_000)}, out)  # 2 MB of float32
    _one_line(err.value, out)
    assert "needed about 2.0 MB" in str(err.value)
    assert _left(disk.root) == []


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> loader.ImageSet:
    root = tmp_path_factory.mktemp("blobs")
    config = {"scale": "tiny", "datasets": {"blobs": {"kind": "shapes", "sizes": {"train": 64, "test": 16}}},
              "experiments": {"short": {"paper": "engine", "model": "tiny", "dataset": "blobs",
                                        "train": {"steps": 12, "batch_size": 16, "lr": 0.003,
                                                  "checkpoint_every": 4, "log_every": 12}}}}
    (root / "config.yaml").write_text(json.dumps(config))
    loaded = load_config([root / "config.yaml"])
    make_split(loaded, "blobs", "train", root / "train.h5")
    return loaded["experiments"]["short"], loader.load(root / "train.h5", None, "train")


def test_resume_state_on_a_full_disk_is_one_line_and_leaves_no_temporary(disk, blobs, tmp_path):
    entry, images = blobs
    run = Run(tmp_path / "model.pt", tmp_path / "train_log.csv", disk.root / "resume")
    disk.fill(leave=4 << 10)  # the tiny model's state is larger
    with pytest.raises(UserError) as err:
        engine.fit("short", entry, 0, images, run)
    _one_line(err.value, run.state_file)
    assert "needed about" in str(err.value)
    assert not run.state_file.exists() and not files.temps_of(run.state_file) and not run.model_file.exists()


def test_training_log_on_a_full_disk_keeps_its_whole_rows(disk):
    path = disk.root / "resume" / "train_log.csv"
    log = CsvLog(path, [], enabled=True)
    log.append({"step": 0, "loss": 1.0})
    disk.fill(leave=0)  # the rows already there fill part of a block: a few more fit, then one tears
    appended = 1
    with pytest.raises(UserError) as err:
        for step in range(1, 1000):
            log.append({"step": step, "loss": 1.0 / 3.0 + step})
            appended += 1
    _one_line(err.value, path)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == appended and rows[-1]["step"] == str(appended - 1)
    assert path.read_text().endswith("\n")


def test_figure_on_a_full_disk_is_one_line_and_leaves_nothing(disk):
    disk.fill(leave=0)
    out = disk.root / "figures" / "noise.png"
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(np.random.default_rng(0).random((200, 200)))
    with pytest.raises(UserError) as err:
        save(fig, out)
    _one_line(err.value, out)
    assert _left(disk.root) == [] and not plt.get_fignums()


def test_table_on_a_full_disk_is_one_line_and_leaves_nothing(disk, tmp_path):
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps({"experiment": "e", "paper": "iodine", "model": "iodine", "dataset": "d",
                                   "split": None, "fresh_test_seed": None, "n_images": 10, "reported": {},
                                   "seeds": {str(seed): {"ari": 0.5 + seed / 10} for seed in range(3)}}))
    disk.fill(leave=0)
    out = disk.root / "tables" / "iodine.csv"
    with pytest.raises(UserError) as err:
        tables.write_table([metrics], out, disk.root / "tables" / "iodine.md")
    _one_line(err.value, out)
    assert _left(disk.root) == []


def test_download_on_a_full_disk_blames_the_disk_not_the_network(disk, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "train-labels-idx1-ubyte.gz").write_bytes(bytes(300_000))
    disk.fill(leave=16 << 10)
    out = disk.root / "raw" / "labels.gz"
    with pytest.raises(UserError) as err:
        download("mnist_train_labels", out, mirror=str(mirror), expected="0" * 64)
    _one_line(err.value, out)
    assert _left(disk.root) == []


def test_errno_hidden_in_a_library_message_is_recognised():
    # HDF5's flush failure: a RuntimeError whose message alone carries the errno; torch's: a RuntimeError
    # raised while handling the OSError.
    assert files.out_of_space(RuntimeError("Unable to flush raw data (file write failed: errno = 28, "
                                           "error message = 'No space left on device')")) == errno.ENOSPC
    try:
        try:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")  # noqa: B904
    except RuntimeError as wrapped:
        assert files.out_of_space(wrapped) == errno.EDQUOT
    assert files.out_of_space(OSError(errno.EIO, "Input/output error")) is None


KILLED_WRITER = """
import sys, time
from structae.files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a result")
    print(tmp, flush=True)
    time.sleep(600)
"""


def _killed_writer(out: Path) -> Path:
    """The temporary a writer of `out` left when SIGKILL ended it mid-write."""
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    tmp = Path(writer.stdout.readline().strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert tmp.is_file() and not out.exists()
    return tmp


def test_a_later_write_of_the_target_removes_a_killed_writers_temporary(tmp_path):
    out = tmp_path / "results" / "metrics" / "e.json"
    stale = _killed_writer(out)
    other_node = out.with_name(f"{out.name}.tmp.node17.4242")  # another host's: only a writer of out may judge
    other_node.write_bytes(b"also dead")
    files.write_text(out, "{}\n")
    assert out.read_text() == "{}\n"
    assert not stale.exists() and not other_node.exists()


def test_a_workflow_start_sweeps_dead_writers_temporaries_only(tmp_path):
    dead = _killed_writer(tmp_path / "data" / "processed" / "d" / "train.h5")
    live = files.temp_path(tmp_path / "results" / "checkpoints" / "e" / "model.pt")  # this process writes it
    fresh_remote = tmp_path / "results" / "figures" / "p" / "f.png.tmp.node17.4242.png"
    old_remote = tmp_path / "results" / "tables" / "t.csv.tmp.node17.4243"
    old_unnamed = tmp_path / "results" / "metrics" / "e.json.tmp"  # as writers named them before host and pid
    kept = [tmp_path / "results" / "notes.tmp.txt.bak", tmp_path / "logs" / "x.csv.tmp.node17.1",
            tmp_path / "results" / "metrics" / "e.json"]
    for path in (live, fresh_remote, old_remote, old_unnamed, *kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    hours_ago = time.time() - 2 * files.STALE_AFTER_S
    for path in (old_remote, old_unnamed, kept[1]):
        os.utime(path, (hours_ago, hours_ago))
    removed = files.sweep_temps(tmp_path)
    assert sorted(removed) == sorted([dead, old_remote, old_unnamed])
    assert all(path.exists() for path in (live, fresh_remote, *kept))  # logs/ is not the workflow's data


@pytest.mark.slow
def test_a_workflow_run_removes_what_killed_jobs_left_and_only_that(workflow_dir):
    dead = _killed_writer(workflow_dir / "results" / "checkpoints" / "e" / "seed0" / "model.pt")
    live = files.temp_path(workflow_dir / "data" / "processed" / "d" / "train.h5")  # this process's, writing
    live.parent.mkdir(parents=True)
    live.write_bytes(b"rows so far")
    run = snakemake(workflow_dir, "data/processed/two_shapes/test.h5")
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"structae: removed {dead}, left by a killed job" in run.stderr
    assert not dead.exists() and live.exists()
