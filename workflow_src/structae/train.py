"""The one training loop for every registered model.

Determinism: the batch at step s is a function of (seed, s) alone (loader.step_rows), and the
random state of torch is saved with every resume checkpoint, so a run that is killed and rerun
replays exactly the steps after its last checkpoint and ends with bit-identical weights on CPU.

Preemption: SIGTERM and SIGUSR1 (what SLURM sends before a preemption or the time limit) finish the
current step, write the resume state and exit with 128 + the signal number; rerunning the same
command resumes. The resume state lives outside the workflow's outputs (paths.resume_dir), carries a
fingerprint of the experiment's settings, and is ignored, with a warning, if the settings changed.
It also carries the partial sums of the log interval in progress, so the resumed log is the
uninterrupted one.

Divergence: a periodic resume state is written only once the step after it has given a finite loss
(weights that look finite can already be diverged), so the state kept after a non-finite loss is one
that trains on. A finished run removes only the files it wrote in its resume directory.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from structae import checkpoint, distributed, files, kernels, models, paths
from structae.data import loader
from structae.errors import Preempted, UserError
from structae.evaluate import exact_kernels, nan_means
from structae.experiment_keys import NOT_TRAINING
from structae.options import from_mapping
from structae.paths import ExperimentData

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
VALIDATION_BATCH = 100  # val images per forward pass (evaluation settings are not training settings)
RELEASE_DECAY_STEPS = 1_000_000  # schedule exponential's tenfold-decay period when decay_steps is unset


@dataclass
class Run:
    """Where one (experiment, seed) training run writes."""

    model_file: Path
    log_file: Path
    resume_dir: Path

    @property
    def state_file(self) -> Path:
        return self.resume_dir / "state.pt"

    @property
    def partial_log(self) -> Path:
        return self.resume_dir / "train_log.csv"

    def check(self) -> None:
        """The resume files must not be the outputs: a finished run deletes them."""
        outputs = {self.model_file.resolve(), self.log_file.resolve()}
        for own in (self.state_file, self.partial_log):
            if own.resolve() in outputs:
                raise UserError(f"the resume directory {self.resume_dir} would hold the run's output {own}; "
                                "give --resume-dir a directory of its own")

    def clean_up(self) -> None:
        """Remove the resume files this run wrote, and directories left empty under the project's resume root;
        nothing else (--resume-dir may name a directory that holds other files)."""
        for own in (self.state_file, self.partial_log):
            own.unlink(missing_ok=True)
            files.remove_temps(own)
        root = Path(paths.RESUME_ROOT).resolve()
        for directory in (self.resume_dir.resolve(), self.resume_dir.resolve().parent):
            if root in directory.parents and directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()


def lr_factor(step: int, settings: dict) -> float:
    """Multiplier of the base learning rate at `step`: linear warm-up, then the schedule.

    cosine decays to 0 at the last step; step divides by 10 at 50% and again at 75% of the steps; exponential
    divides by 10 every `decay_steps` steps, continuously (IODINE's release: tf.train.exponential_decay with
    decay_steps 1e6, decay_rate 0.1, not staircase).
    """
    warmup, total = settings["warmup_steps"], settings["steps"]
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if settings["schedule"] == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if settings["schedule"] == "step":
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    if settings["schedule"] == "exponential":  # unset decay_steps: no schema default, so no other run changed
        return 0.1 ** ((step - warmup) / settings.get("decay_steps", RELEASE_DECAY_STEPS))
    return 1.0


def fingerprint(entry: dict, seed: int) -> str:
    """What a resume state must match: every setting that shapes the run (not the seed list, evaluation or
    cluster resources: a retry on another GPU count still resumes)."""
    shaping = {k: v for k, v in entry.items() if k not in NOT_TRAINING}
    return hashlib.sha256(json.dumps([shaping, seed], sort_keys=True).encode()).hexdigest()


class StopRequest:
    """Records the first stop signal; the loop checks it between steps."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, frame) -> None:
        self.signum = signum

    @contextmanager
    def installed(self):
        previous = {s: signal.signal(s, self) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _rng_state(ctx: distributed.Context) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(ctx.device)
    return state


def _set_rng_state(state: dict, ctx: distributed.Context) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and ctx.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], ctx.device)


class CsvLog:
    """The training curve: rows in memory (saved with resume state) and appended to a CSV as they come.
    Rows may add columns (validation scores come every few rows): the file is then rewritten with them all,
    a row's missing values left empty."""

    def __init__(self, path: Path, rows: list[dict], enabled: bool):
        self.path, self.rows, self.enabled = path, rows, enabled
        self.columns = list(dict.fromkeys(key for row in rows for key in row))
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._rewrite()  # what a resumed run already logged

    def _rewrite(self) -> None:
        with files.atomic_path(self.path) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.columns)
            if self.rows:
                writer.writeheader()
                writer.writerows(self.rows)

    def append(self, row: dict) -> None:
        self.rows.append(row)
        new = [key for key in row if key not in self.columns]
        self.columns += new
        if not self.enabled:
            return
        if new and len(self.rows) > 1:
            self._rewrite()
            return
        with files.appending(self.path) as file:  # a full disk cuts the file back to its last whole row
            writer = csv.DictWriter(file, fieldnames=self.columns)
            if len(self.rows) == 1:
                writer.writeheader()
            writer.writerow(row)


def validation_scores(module, model: torch.nn.Module, config, images: loader.ImageSet, count: int,
                      device: torch.device) -> dict[str, float]:
    """The model's mean evaluation metrics (its default evaluation settings) on the first `count` val images,
    as val_* log columns.
    Runs in eval mode without gradients and leaves the random streams as they were, so a run that validates
    trains exactly as one that does not."""
    count = min(count, len(images))
    batches = (images.batch(torch.arange(start, min(start + VALIDATION_BATCH, count)), device)
               for start in range(0, count, VALIDATION_BATCH))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad(), exact_kernels():
        model.eval()
        try:
            means = nan_means(module.evaluate(model, batch, config) for batch in batches)
        finally:
            model.train()
    return {f"val_{key}": value for key, value in means.items()}


@dataclass
class Snapshot:
    """What a resume state holds beyond the model and optimiser, taken after `step` steps: every process's
    random stream (a resumed DDP run continues each), the log rows and the sums of the interval in progress."""

    step: int
    rng: list
    log_rows: list[dict]
    sums: dict[str, float]


def _snapshot(ctx, step: int, log: CsvLog, sums: dict) -> Snapshot:
    return Snapshot(step, ctx.gather(_rng_state(ctx)), list(log.rows), dict(sums))


def _save_state(run: Run, ctx, snap: Snapshot, model, optimizer, scheduler, stamp: str) -> None:
    if ctx.main:
        checkpoint.atomic_save({"step": snap.step, "fingerprint": stamp, "world": ctx.world, "rng": snap.rng,
                                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(), "log": snap.log_rows, "sums": snap.sums},
                               run.state_file)


def _finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


def _load_state(run: Run, stamp: str, ctx) -> dict | None:
    if not run.state_file.is_file():
        return None
    try:
        # To the CPU whatever the device: the random states must be CPU byte tensors (torch.cuda.set_rng_state
        # refuses one on the GPU), and load_state_dict copies weights and moments onto their parameters' device.
        state = torch.load(run.state_file, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file: training from scratch is always correct
        print(f"warning: {run.state_file} is unreadable; training from scratch", file=sys.stderr)
        return None
    if state.get("fingerprint") != stamp:
        print(f"warning: {run.state_file} was written for other settings; training from scratch", file=sys.stderr)
        return None
    return state


def train(name: str, entry: dict, seed: int, data: ExperimentData, run: Run, threads: int | None = None) -> dict:
    """Train experiment `name` (its validated config entry) with `seed`; write run.model_file and run.log_file.

    Returns {"steps", "loss"} of the finished run. Raises Preempted after a stop signal, UserError on
    bad input or a non-finite loss.
    """
    run.check()
    ctx = distributed.start()
    try:
        kernels.apply(kernels.mode(), ctx.device)
        if threads:
            torch.set_num_threads(max(1, threads // ctx.world))
        validation = loader.ImageSet.read(data.val) if data.val and entry["train"]["validate_every"] else None
        result = fit(name, entry, seed, loader.load(data.train, data.split, "train"), run, ctx, validation)
        if ctx.main:  # beside the model: what computed it (the job's log has it too)
            print(f"kernels: {json.dumps(kernels.record(kernels.record_file(run.model_file)))}", file=sys.stderr)
        return result
    finally:
        ctx.close()


def _require_compiler(name: str, ctx: distributed.Context) -> None:
    """torch.compile builds C++ kernels for the CPU: without a compiler it would fail deep inside its first step."""
    compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    if ctx.device.type == "cpu" and not any(c and shutil.which(c) for c in compilers):
        raise UserError(f"experiments.{name}.train.compile needs a C++ compiler on a CPU and none is on PATH "
                        "(g++, c++, clang++ or $CXX); install one or set train.compile: false")


def fit(name: str, entry: dict, seed: int, images: loader.ImageSet, run: Run,
        ctx: distributed.Context | None = None, validation: loader.ImageSet | None = None) -> dict:
    """The training loop proper, on images already in memory (`train` reads them from the experiment's files).
    With `validation` images and train.validate_every, every such step's log row also holds the val_* scores."""
    # Listen before announcing the run: a stop signal sent once "training ..." is in the log (what a user or
    # scheduler watches for) must end in a saved state, not in the default handler's silent exit.
    with StopRequest().installed() as stop:
        return _fit(name, entry, seed, images, run, ctx or distributed.Context(), validation, stop)


def _fit(name: str, entry: dict, seed: int, images: loader.ImageSet, run: Run, ctx: distributed.Context,
         validation: loader.ImageSet | None, stop: StopRequest) -> dict:
    settings = entry["train"]
    if settings["batch_size"] % ctx.world:
        raise UserError(f"experiments.{name}.train.batch_size {settings['batch_size']} is not divisible by "
                        f"the {ctx.world} processes; choose a multiple")
    module = models.get(entry["model"])
    config = from_mapping(module.Config, entry["model_config"], f"experiments.{name}.model_config")
    info = images.info()

    torch.manual_seed(seed)  # the same initial weights on every process (DDP also broadcasts them)
    model = module.Model(config, info).to(ctx.device)
    if ctx.rank:
        torch.manual_seed(seed + 7919 * ctx.rank)  # distinct noise per process; rank 0 keeps the serial stream
    # beta1 unset means 0.9: the schema fills no default, so adding the option changed no experiment's parameters.
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"],
                                  betas=(settings.get("beta1", 0.9), 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, settings))

    stamp = fingerprint(entry, seed)
    state = _load_state(run, stamp, ctx)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        if ctx.main:
            print(f"resuming from step {start} ({run.state_file})", file=sys.stderr)
        if state["world"] == ctx.world:
            _set_rng_state(state["rng"][ctx.rank], ctx)
        elif ctx.main:
            print(f"warning: resuming {state['world']}-process state with {ctx.world} processes; "
                  "random streams restart", file=sys.stderr)
    log = CsvLog(run.partial_log, state["log"] if state else [], ctx.main)
    sums: dict[str, float] = dict(state.get("sums", {})) if state else {}  # the log interval in progress
    if ctx.main:
        print(f"training {name} seed {seed}: {info.n_images} images, {ctx.world} process(es) on "
              f"{ctx.device.type}, global batch {settings['batch_size']}", file=sys.stderr)

    wrapped = DistributedDataParallel(model) if ctx.enabled else model
    if settings["compile"]:  # the checkpoint saves `model`, whose parameter names compiling leaves alone
        _require_compiler(name, ctx)
        wrapped = torch.compile(wrapped)
    # A model may choose its batches (SWWAE oversamples its labelled rows), as a function of (seed, step).
    sampler = (lambda n, size, seed_, step_: module.step_rows(n, size, seed_, step_, config)) \
        if hasattr(module, "step_rows") else loader.step_rows
    use_amp = settings["amp"] and ctx.device.type == "cuda"
    steps, batch_size, per_process = settings["steps"], settings["batch_size"], settings["batch_size"] // ctx.world
    progress = tqdm(total=steps, initial=start, desc=f"{name} seed {seed}", disable=not ctx.main,
                    mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
    validate_every = settings["validate_every"] if validation is not None else 0
    tick, last = time.perf_counter(), {}
    minutes = log.rows[-1].get("train_minutes", 0.0) if log.rows else 0.0  # training time, validation not counted
    resumed_at = saved = start  # saved: the step of the state on disk
    pending = None  # a snapshot waiting for the next step's loss to prove it finite
    model.train()
    for step in range(start, steps):
        rows = sampler(len(images), batch_size, seed, step)
        batch = images.batch(rows[ctx.rank * per_process:(ctx.rank + 1) * per_process], ctx.device)
        with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext():
            terms = module.loss(wrapped(batch), batch, config)
        loss = terms["loss"]
        logged = ctx.mean(torch.stack([t.detach().float() for t in terms.values()]))
        if not torch.isfinite(logged[0]):
            kept = f"the last good state (step {saved}) is kept in {run.state_file}" if saved else "no state kept"
            raise UserError(f"experiments.{name}: loss is {logged[0].item()} at step {step + 1}; {kept}; "
                            f"lower train.lr (now {settings['lr']:g}) or set train.grad_clip")
        if pending is not None:  # the weights it holds gave a finite loss: a state to resume from
            _save_state(run, ctx, pending, model, optimizer, scheduler, stamp)
            saved, pending = pending.step, None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings["grad_clip"])
        optimizer.step()
        lr = scheduler.get_last_lr()[0]  # the rate this step used
        scheduler.step()
        for key, value in zip(terms, logged.tolist(), strict=True):
            sums[key] = sums.get(key, 0.0) + value
        done = step + 1
        if done % settings["log_every"] == 0 or done == steps:
            now = time.perf_counter()
            previous = log.rows[-1]["step"] if log.rows else 0
            last = {key: total / (done - previous) for key, total in sums.items()}
            timed = done - max(previous, resumed_at)  # steps this process ran since `tick`
            minutes += (now - tick) / 60
            row = {"step": done, **last, "lr": lr, "images_per_s": timed * batch_size / (now - tick),
                   "train_minutes": minutes}
            if validate_every and (done % validate_every == 0 or done == steps) and ctx.main:
                row.update(validation_scores(module, model, config, validation, settings["validate_images"],
                                              ctx.device))
            log.append(row)
            progress.set_postfix(loss=f"{last['loss']:.4g}", img_s=f"{row['images_per_s']:.0f}")
            sums, tick = {}, time.perf_counter()  # validating is not training time
        progress.update(1)
        stopping = ctx.any(stop.signum is not None)
        if stopping and _finite(model):  # no next step to vouch for it: finite weights must do
            _save_state(run, ctx, _snapshot(ctx, done, log, sums), model, optimizer, scheduler, stamp)
        elif done % settings["checkpoint_every"] == 0 and done < steps:
            pending = _snapshot(ctx, done, log, sums)
        if stopping and done < steps:
            progress.close()
            signum = stop.signum or signal.SIGTERM  # another process got the signal
            raise Preempted(signal.Signals(signum).name, signum, done, run.state_file)
    progress.close()
    if not _finite(model):
        raise UserError(f"experiments.{name}: the weights are not finite after the last step; "
                        f"lower train.lr (now {settings['lr']:g}) or set train.grad_clip")
    if ctx.main:
        checkpoint.save_model(run.model_file, entry["model"], name, seed, steps, config, info, model)
        files.write_text(run.log_file, run.partial_log.read_text())
        run.clean_up()  # finished: a rerun (after a settings change) starts fresh
    return {"steps": steps, **last}
