"""The training engine with the tiny model: resume after SIGKILL and SIGTERM, DDP, errors, evaluation."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from structae import checkpoint
from structae import train as engine
from structae.config import load_config
from structae.data import loader
from structae.data.datasets import make_split
from structae.models import tiny
from structae.paths import experiment_data
from structae.train import Run, lr_factor

STRUCTAE = [sys.executable, "-m", "structae.cli"]
TORCHRUN = Path(sys.executable).with_name("torchrun")
CONFIG = {
    "scale": "tiny",
    "datasets": {"blobs": {"kind": "shapes", "sizes": {"train": 96, "test": 32}}},
    "experiments": {
        "long": {"paper": "engine", "model": "tiny", "dataset": "blobs", "model_config": {"input_noise": 0.1},
                 "train": {"steps": 600, "batch_size": 16, "lr": 0.003, "checkpoint_every": 40, "log_every": 20}},
        "short": {"paper": "engine", "model": "tiny", "dataset": "blobs",
                  "train": {"steps": 20, "batch_size": 16, "lr": 0.003, "checkpoint_every": 5, "log_every": 1}},
    },
}


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory) -> Path:
    """A working directory with config.yaml and the processed `blobs` dataset."""
    root = tmp_path_factory.mktemp("engine")
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    config = load_config([root / "config.yaml"])  # with defaults filled
    for split in ("train", "test"):
        make_split(config, "blobs", split, root / f"data/processed/blobs/{split}.h5")
    return root


def _structae(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*STRUCTAE, *args], cwd=cwd, env=env, capture_output=True, text=True, **kwargs)


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def _assert_identical(a: Path, b: Path) -> None:
    first, second = _weights(a), _weights(b)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def _train_until_state(cwd: Path, experiment: str, out: str, sig: int) -> tuple[int, str]:
    """Start training; once its first resume state exists, send `sig`; return its exit code and stderr."""
    state = cwd / f"results/resume/{experiment}/{out}/state.pt"
    proc = subprocess.Popen([*STRUCTAE, "train", "--experiment", experiment, "--threads", "1",
                             "--out", f"{out}/model.pt", "--train-log", f"{out}/log.csv",
                             "--resume-dir", str(state.parent)],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not state.exists():
        assert proc.poll() is None, f"training ended before its first checkpoint: {proc.communicate()}"
        assert time.monotonic() < deadline, "no resume state after 120 s"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


def _resume(cwd: Path, experiment: str, out: str) -> subprocess.CompletedProcess:
    return _structae(cwd, "train", "--experiment", experiment, "--threads", "1", "--out", f"{out}/model.pt",
                     "--train-log", f"{out}/log.csv", "--resume-dir", f"results/resume/{experiment}/{out}")


@pytest.fixture(scope="module")
def uninterrupted(engine_dir) -> Path:  # the tests using it are slow: 600 steps in a subprocess
    result = _resume(engine_dir, "long", "reference")
    assert result.returncode == 0, result.stderr
    return engine_dir / "reference"


@pytest.mark.slow
def test_trained_model_loads_with_weights_only_and_logs_every_term(uninterrupted):
    payload = torch.load(uninterrupted / "model.pt", weights_only=True)
    assert payload["model"] == "tiny" and payload["steps"] == 600
    log = pd.read_csv(uninterrupted / "log.csv")
    assert list(log.columns) == ["step", "loss", "bce", "lr", "images_per_s", "train_minutes"]
    assert log["train_minutes"].is_monotonic_increasing and log["train_minutes"].iloc[0] > 0
    assert list(log["step"]) == list(range(20, 601, 20))
    assert log["loss"].iloc[-1] < 0.7 * log["loss"].iloc[0]  # it learns


@pytest.mark.slow
def test_sigkill_then_rerun_ends_bit_identical(engine_dir, uninterrupted):
    returncode, _ = _train_until_state(engine_dir, "long", "killed", signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    assert not (engine_dir / "killed/model.pt").exists()
    result = _resume(engine_dir, "long", "killed")
    assert result.returncode == 0, result.stderr
    assert "resuming from step" in result.stderr
    _assert_identical(uninterrupted / "model.pt", engine_dir / "killed/model.pt")
    resumed = pd.read_csv(engine_dir / "killed/log.csv")
    reference = pd.read_csv(uninterrupted / "log.csv")
    assert list(resumed["step"]) == list(reference["step"])  # no duplicated or missing rows
    pd.testing.assert_series_equal(resumed["loss"], reference["loss"])
    assert not (engine_dir / "results/resume/long/killed").exists()  # cleaned up once finished


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_stop_signal_saves_state_and_exits_for_a_retry(engine_dir, uninterrupted, sig):
    out = f"stopped_{sig.name}"
    returncode, stderr = _train_until_state(engine_dir, "long", out, sig)
    assert returncode == 128 + sig, stderr
    assert f"stopped by {sig.name}" in stderr
    assert not (engine_dir / out / "model.pt").exists()
    result = _resume(engine_dir, "long", out)
    assert result.returncode == 0, result.stderr
    _assert_identical(uninterrupted / "model.pt", engine_dir / out / "model.pt")


def test_state_from_other_settings_is_not_resumed(engine_dir, tmp_path):
    config = load_config([engine_dir / "config.yaml"])
    entry = config["experiments"]["short"]
    data = experiment_data(config, "short")
    data = type(data)(str(engine_dir / data.train), str(engine_dir / data.test))
    run = Run(tmp_path / "model.pt", tmp_path / "log.csv", tmp_path / "resume")
    engine.train("short", entry, 0, data, run)
    reference = _weights(run.model_file)
    changed = {**entry, "train": {**entry["train"], "lr": 0.5}}
    run.resume_dir.mkdir(exist_ok=True)  # kept: a directory outside results/resume is not removed
    torch.save({"step": 10, "fingerprint": engine.fingerprint(changed, 0)}, run.state_file)
    engine.train("short", entry, 0, data, run)  # must start over, not load the foreign state
    for name, tensor in _weights(run.model_file).items():
        assert torch.equal(tensor, reference[name])


def test_non_finite_loss_names_the_step_and_keeps_the_last_state(engine_dir, tmp_path, monkeypatch):
    config = load_config([engine_dir / "config.yaml"])
    entry = config["experiments"]["short"]
    data = experiment_data(config, "short")
    data = type(data)(str(engine_dir / data.train), str(engine_dir / data.test))
    calls = {"n": 0}
    real_loss = tiny.loss

    def exploding(outputs, batch, cfg):
        calls["n"] += 1
        terms = real_loss(outputs, batch, cfg)
        return {k: v * float("nan") for k, v in terms.items()} if calls["n"] == 7 else terms

    monkeypatch.setattr(tiny, "loss", exploding)
    run = Run(tmp_path / "model.pt", tmp_path / "log.csv", tmp_path / "resume")
    with pytest.raises(engine.UserError, match=r"loss is nan at step 7; the last good state \(step 5\)"):
        engine.train("short", entry, 0, data, run)
    assert torch.load(run.state_file, weights_only=True)["step"] == 5
    assert not run.model_file.exists()


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(engine_dir):
    """The same global batch split over 2 gloo processes gives the single-process loss curve."""
    if not TORCHRUN.exists():
        pytest.fail(f"{TORCHRUN} is missing; torch's launcher comes with torch")
    single = _structae(engine_dir, "train", "--experiment", "short", "--out", "single/model.pt",
                       "--train-log", "single/log.csv", "--resume-dir", "results/resume/single")
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "structae.cli",
                          "train", "--experiment", "short", "--out", "ddp/model.pt", "--train-log", "ddp/log.csv",
                          "--resume-dir", "results/resume/ddp"],
                         cwd=engine_dir, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = pd.read_csv(engine_dir / "single/log.csv"), pd.read_csv(engine_dir / "ddp/log.csv")
    assert len(one) == len(two) == 20
    pd.testing.assert_series_equal(one["loss"], two["loss"], rtol=1e-4, atol=0)
    first, second = _weights(engine_dir / "single/model.pt"), _weights(engine_dir / "ddp/model.pt")
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_evaluate_writes_metrics_for_every_seed(engine_dir, uninterrupted):
    result = _structae(engine_dir, "evaluate", "--experiment", "long", "--checkpoints",
                       str(uninterrupted / "model.pt"), "--out", "metrics/long.json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((engine_dir / "metrics/long.json").read_text())
    assert metrics["n_images"] == 32 and set(metrics["seeds"]) == {"0"}
    assert set(metrics["seeds"]["0"]) == {"bce", "mse"}
    assert 0 < metrics["seeds"]["0"]["mse"] < metrics["seeds"]["0"]["bce"]


@pytest.mark.parametrize("args,message", [
    (["train", "--experiment", "nope"], "experiment 'nope' is not in the config; known: long, short"),
    (["train", "--experiment", "short", "--data", "missing.h5"],
     "dataset file missing.h5 is missing; run `snakemake missing.h5` to make it"),
    (["train", "--experiment", "short", "--data", "config.yaml"], "config.yaml is not a readable HDF5 file"),
    (["evaluate", "--experiment", "short", "--checkpoints", "foreign.pt"], "holds a 'other' model"),
])
def test_bad_input_is_one_line_and_writes_nothing(engine_dir, args, message):
    torch.save({"format": "structae-model/1", "model": "other"}, engine_dir / "foreign.pt")
    before = sorted(p for p in engine_dir.rglob("*") if p.is_file())
    result = _structae(engine_dir, *args, "--out", "bad/out")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p for p in engine_dir.rglob("*") if p.is_file()) == before


def test_warmup_then_schedules():
    settings = {"steps": 100, "warmup_steps": 10, "schedule": "cosine"}
    assert lr_factor(0, settings) == pytest.approx(0.1)
    assert lr_factor(9, settings) == pytest.approx(1.0)
    assert lr_factor(10, settings) == pytest.approx(1.0)
    assert lr_factor(55, settings) == pytest.approx(0.5)
    assert lr_factor(100, settings) == pytest.approx(0.0)
    steps = {**settings, "schedule": "step"}
    assert [lr_factor(s, steps) for s in (20, 55, 90)] == pytest.approx([1.0, 0.1, 0.01])


def _short_run(engine_dir: Path, out: Path, **train) -> tuple[dict, object, Run]:
    """The `short` experiment with `train` settings changed, its data files and a Run writing under `out`."""
    config = load_config([engine_dir / "config.yaml"])
    entry = config["experiments"]["short"]
    entry = {**entry, "train": {**entry["train"], **train}}
    data = experiment_data(config, "short")
    data = type(data)(str(engine_dir / data.train), str(engine_dir / data.test))
    return entry, data, Run(out / "model.pt", out / "log.csv", out / "resume")


def test_log_after_a_stop_between_log_rows_is_the_uninterrupted_log(engine_dir, tmp_path, monkeypatch):
    settings = {"steps": 60, "log_every": 20, "checkpoint_every": 40}
    entry, data, reference = _short_run(engine_dir, tmp_path / "reference", **settings)
    engine.train("short", entry, 0, data, reference)
    calls = {"n": 0}
    real_loss = tiny.loss

    def stopped_at_33(outputs, batch, cfg):  # SLURM's signal arrives during step 33, between log rows
        calls["n"] += 1
        if calls["n"] == 33:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(outputs, batch, cfg)

    _, _, run = _short_run(engine_dir, tmp_path / "stopped", **settings)
    monkeypatch.setattr(tiny, "loss", stopped_at_33)
    with pytest.raises(engine.Preempted):
        engine.train("short", entry, 0, data, run)
    monkeypatch.setattr(tiny, "loss", real_loss)
    engine.train("short", entry, 0, data, run)
    resumed, uninterrupted = pd.read_csv(run.log_file), pd.read_csv(reference.log_file)
    timings = ["images_per_s", "train_minutes"]
    pd.testing.assert_frame_equal(resumed.drop(columns=timings), uninterrupted.drop(columns=timings))
    assert resumed["train_minutes"].is_monotonic_increasing  # the resumed run adds to the minutes before the stop


def test_a_stop_signal_right_after_the_announcement_saves_state(engine_dir, tmp_path, monkeypatch, capsys):
    """A scheduler or user who sees "training ..." in the log and stops the job gets a resume state, however
    long the loop takes to start (the CI caught the signal landing before the handler was installed)."""
    def default_action(signum, frame):
        raise RuntimeError("the signal reached the handler in place before training")

    entry, data, run = _short_run(engine_dir, tmp_path / "stopped")
    real_tqdm = engine.tqdm

    def signal_on_start(*args, **kwargs):  # built after the announcement, before the first step
        assert "training short seed 0" in capsys.readouterr().err
        os.kill(os.getpid(), signal.SIGTERM)
        return real_tqdm(*args, **kwargs)

    monkeypatch.setattr(engine, "tqdm", signal_on_start)
    previous = signal.signal(signal.SIGTERM, default_action)
    try:
        with pytest.raises(engine.Preempted, match="after step 1;"):
            engine.train("short", entry, 0, data, run)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert torch.load(run.state_file, weights_only=False)["step"] == 1


def test_validation_scores_are_logged_and_leave_training_unchanged(engine_dir, tmp_path, monkeypatch):
    settings = {"steps": 20, "log_every": 5}
    entry, data, plain = _short_run(engine_dir, tmp_path / "plain", **settings)
    entry = {**entry, "model_config": {"input_noise": 0.1}}  # training draws noise; evaluation must not shift it
    engine.train("short", entry, 0, data, plain)
    real_evaluate = tiny.evaluate

    def evaluate_drawing_noise(model, batch, config, settings=None):
        assert not model.training
        torch.rand(1000)  # an evaluation that samples (IODINE's does) must not move the training stream
        return {**real_evaluate(model, batch, config), "undefined": torch.full((len(batch["image"]),), float("nan"))}

    monkeypatch.setattr(tiny, "evaluate", evaluate_drawing_noise)
    validating = {**entry, "train": {**entry["train"], "validate_every": 10, "validate_images": 20}}
    _, _, run = _short_run(engine_dir, tmp_path / "validated", **settings)
    engine.train("short", validating, 0, replace(data, val=data.test), run)
    _assert_identical(plain.model_file, run.model_file)
    log = pd.read_csv(run.log_file)
    assert list(log.columns) == ["step", "loss", "bce", "lr", "images_per_s", "train_minutes", "val_bce", "val_mse",
                                 "val_undefined"]
    assert log["val_bce"].notna().tolist() == [False, True, False, True]  # steps 10 and 20 (the file was rewritten)
    assert log["val_undefined"].isna().all() and log["train_minutes"].is_monotonic_increasing
    _, model, config = checkpoint.load_model(run.model_file, "tiny")  # the last score is the finished model's
    with torch.no_grad():
        scores = real_evaluate(model.eval(), loader.ImageSet.read(data.test).batch(torch.arange(20)), config)
    assert log["val_bce"].iloc[-1] == pytest.approx(scores["bce"].mean().item(), rel=1e-5)


def test_diverged_weights_are_never_kept_as_the_good_state(engine_dir, tmp_path):
    # lr 1e30: the first step's loss is finite but leaves weights that give a non-finite loss next step.
    entry, data, run = _short_run(engine_dir, tmp_path, lr=1e30, checkpoint_every=1)
    with pytest.raises(engine.UserError, match=r"at step 2; no state kept; lower train.lr \(now 1e\+30\)"):
        engine.train("short", entry, 0, data, run)
    assert not run.state_file.exists() and not run.model_file.exists()


def test_a_finished_run_removes_only_its_own_resume_files(engine_dir, tmp_path):
    entry, data, run = _short_run(engine_dir, tmp_path)
    run.resume_dir.mkdir(parents=True)
    (run.resume_dir / "notes.txt").write_text("not the trainer's")
    engine.train("short", entry, 0, data, run)
    assert run.model_file.exists() and (run.resume_dir / "notes.txt").read_text() == "not the trainer's"
    assert sorted(p.name for p in run.resume_dir.iterdir()) == ["notes.txt"]


def test_resume_files_that_are_the_outputs_are_refused(engine_dir, tmp_path):
    entry, data, _ = _short_run(engine_dir, tmp_path)
    run = Run(tmp_path / "out/model.pt", tmp_path / "out/train_log.csv", tmp_path / "out")
    with pytest.raises(engine.UserError, match="would hold the run's output"):
        engine.train("short", entry, 0, data, run)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["../../x", "a/b", "X", "\udcff", ""])
def test_unsafe_experiment_names_are_refused_with_and_without_spec(engine_dir, name):
    spec = json.dumps(CONFIG["experiments"]["short"])
    before = sorted(p for p in engine_dir.rglob("*") if p.is_file())
    for extra in ([], ["--spec", spec, "--data", "data/processed/blobs/train.h5"]):
        result = subprocess.run([*STRUCTAE, "train", "--experiment", name, *extra], cwd=engine_dir,
                                capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert "is not allowed; use lower_snake_case" in stderr
    assert sorted(p for p in engine_dir.rglob("*") if p.is_file()) == before


def test_compile_without_a_compiler_is_one_line(engine_dir, tmp_path, monkeypatch):
    entry, data, run = _short_run(engine_dir, tmp_path, compile=True)
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++, c++ or clang++ here
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(engine.UserError, match=r"short.train.compile needs a C\+\+ compiler .* train.compile: false"):
        engine.train("short", entry, 0, data, run)
    assert not run.model_file.exists()


@pytest.mark.slow
def test_compiled_training_follows_the_eager_loss_curve(engine_dir, tmp_path):
    """train.compile is a speed-up only: the same seeded run gives the same log within float tolerance."""
    logs = []
    for compiled in (False, True):
        entry, data, run = _short_run(engine_dir, tmp_path / str(compiled), steps=8, log_every=1, compile=compiled)
        engine.train("short", entry, 0, data, run)
        logs.append(pd.read_csv(run.log_file).drop(columns=["images_per_s", "train_minutes"]))
    pd.testing.assert_frame_equal(logs[0], logs[1], rtol=1e-4, atol=1e-6)


def test_a_resume_state_loads_to_the_cpu_whatever_the_device(tmp_path):
    """A GPU run's resume state: loaded onto the GPU, its random states were GPU tensors, which
    torch.cuda.set_rng_state refuses (bench/gpu_check.py's first run on an H200). Loaded to the CPU, they are
    set as saved. Here the training device is named CUDA on a machine without one: loading to it fails."""
    run = Run(tmp_path / "model.pt", tmp_path / "log.csv", tmp_path / "resume")
    run.resume_dir.mkdir()
    torch.save({"step": 3, "fingerprint": "same", "rng": [{"cpu": torch.get_rng_state()}]}, run.state_file)
    state = engine._load_state(run, "same", engine.distributed.Context(device=torch.device("cuda", 0)))
    assert state is not None and state["rng"][0]["cpu"].device.type == "cpu"


def test_evaluation_scores_with_exact_fp32_kernels_and_restores_them(tmp_path, monkeypatch):
    """TF32 convolutions moved a GPU's ARI off the CPU's (docs/cluster.md): scoring turns them off."""
    from structae.data.info import DataInfo
    from structae.evaluate import evaluate_checkpoint

    info = DataInfo(1, 8, 8, 4, 1, ())
    config = tiny.Config()
    checkpoint.save_model(tmp_path / "model.pt", "tiny", "t", 0, 1, config, info, tiny.Model(config, info))
    seen = []
    real = tiny.evaluate

    def recording(*args, **kwargs):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
                     torch.backends.cudnn.deterministic))
        return real(*args, **kwargs)
    monkeypatch.setattr(tiny, "evaluate", recording)
    before = torch.backends.cudnn.allow_tf32
    evaluate_checkpoint(tmp_path / "model.pt", "tiny", loader.ImageSet.synthetic(info, 4),
                        {"batch_size": 4, "max_images": 0, "model": {}})
    assert seen == [(False, False, True)]
    assert torch.backends.cudnn.allow_tf32 == before
