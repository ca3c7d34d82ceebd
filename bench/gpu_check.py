"""Paper scale on one GPU, in at most 8 minutes: does every paper-scale experiment train there, what would the
whole run cost, and are the `resources:` of config/paper.yaml right? One markdown table per check, printed
and written to --out after each section (a run cut short keeps what it measured). docs/cluster.md holds the
table of the last GPU run.

    make gpu-check                                        # on a GPU machine: bench/gpu_check.py --out ...
    python bench/gpu_check.py --device cpu --tiny --out F # the CPU tier the tests run (seconds)

Checks, in order:
  machine      torch, CUDA, GPU, bf16 support
  ddp          one training step under `torchrun --nproc_per_node 1` (NCCL on a GPU, gloo on a CPU)
  resume       a run stopped mid-way and resumed ends with the weights of the run never stopped (CUDA random
               state included: IODINE samples its posteriors), and two uninterrupted runs agree (control)
  experiments  per paper-scale experiment (those of equal model, shapes and batch measured once): one
               training step at its paper batch with its AMP setting through structae.train.fit, the loss
               finite, peak GPU memory, steps/s over --rate-seconds; the projected hours of its configured
               steps beside the runtime and memory its `resources:` ask (asks too small or over 3× marked).
               Rates at torch's defaults, as `kernels: native` trains; the variants give portable's cost
  variants     two experiments again, with deterministic kernels (cuDNN's, TF32 off) and with bf16 autocast
  iodine       IODINE at the release's Multi-dSprites settings on generated 64×64 scenes for --iodine-minutes:
               loss and val ARI-FG against steps
  evaluation   one checkpoint (and the IODINE run's) scored on the GPU and on the CPU: ARI equal within 1e-6
  budget       GPU-hours per paper of a full `snakemake --profile slurm all`
`--checks` runs some of them; `--judge REPORT` judges config/paper.yaml's asks against an earlier report's rates.

Needs torch, numpy, h5py and tqdm only (a GPU machine's Python may have no more). The experiments come from
config.yaml and config/paper.yaml through the project's config loader, which also needs jsonschema and
pyyaml; where those are missing, write the plan on a machine that has them (`--write-plan plan.json`) and
pass it here (`--plan plan.json`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# cuBLAS reads this when it creates its handle: deterministic matrix products need it (determinism check).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
REPO = Path(__file__).resolve().parents[1]
if str(REPO / "workflow_src") not in sys.path:  # a GPU machine without the package installed
    sys.path.insert(0, str(REPO / "workflow_src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from structae import distributed, train  # noqa: E402
from structae.data import shapes, sprites  # noqa: E402
from structae.data.info import DataInfo  # noqa: E402
from structae.data.loader import ImageSet  # noqa: E402
from structae.errors import Preempted  # noqa: E402
from structae.evaluate import evaluate_checkpoint, exact_kernels  # noqa: E402

# Records in the published sources, for the host-memory estimate of a split whose size is 0 ("all the rest"):
# DeepMind's multi_object_datasets (Multi-dSprites and Tetrominoes 1M, CLEVR-with-masks 100k; CLEVR6 keeps the
# scenes of at most 6 objects, counted here as all 100k), dSprites' 737,280 and MNIST's 60,000 training digits.
SOURCE_RECORDS = {"multi_dsprites_colored_on_grayscale": 1_000_000, "tetrominoes": 1_000_000,
                  "clevr_with_masks": 100_000, "dsprites_npz": 737_280, "mnist_idx": 60_000}
TOO_LARGE = 3.0  # an ask over 3× the need is marked
MARGIN = 1.1  # an ask under 1.1× the need is marked too small
STARTUP_H = 10 / 60  # a job's time besides its steps: reading its splits, CUDA's start, val scoring, checkpoints
PROCESS_GIB = 3.0  # a training process's own memory: PyTorch with the CUDA libraries mapped
VARIANT_CASES = ("cae_three_shapes", "iodine_multi_dsprites")
IODINE_CASE = "iodine_multi_dsprites"
EVAL_CASE = "cae_two_shapes"
CHECKS = ("machine", "ddp", "resume", "experiments", "variants", "iodine", "evaluation", "budget")


# ---- the plan: paper-scale experiments, resolved where the config loader can run -------------------------------

def write_plan(path: Path) -> dict:
    """Every paper-scale experiment, validated (defaults filled) with its DataInfo and host-memory inputs."""
    from structae import scales
    from structae.config import load_config
    from structae.data.datasets import describe

    config = load_config([REPO / name for name in scales.files("paper")])
    experiments = []
    for name, entry in config["experiments"].items():
        spec = config["datasets"][entry["dataset"]]
        info = describe(spec, entry["dataset"])
        experiments.append({"name": name, "entry": entry, "info": info.to_dict(),
                            "train_rows": _train_rows(spec), "val_rows": spec["sizes"].get("val", 0)})
    plan = {"scale": "paper", "experiments": experiments}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1))
    return plan


def _train_rows(spec: dict) -> int:
    sizes = spec["sizes"]
    asked = sizes.get("train", sizes.get("all", 0))
    if asked:
        return asked
    source = spec.get("options", {}).get("variant", spec["kind"])
    return SOURCE_RECORDS.get(source, 0) - sum(v for k, v in sizes.items() if k not in ("train", "all"))


def read_plan(path: Path | None) -> dict:
    if path is not None:
        return json.loads(path.read_text())
    try:
        import jsonschema  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as missing:
        sys.exit(f"gpu_check: {missing.name} is not installed, so config/paper.yaml cannot be read here; run "
                 "`python bench/gpu_check.py --write-plan plan.json` where the project is installed and pass "
                 "--plan plan.json")
    with tempfile.TemporaryDirectory() as tmp:
        return write_plan(Path(tmp) / "plan.json")


# ---- report ----------------------------------------------------------------------------------------------------

class Report:
    """Markdown sections, printed as they come and rewritten to `out` after each."""

    def __init__(self, out: Path | None):
        self.out, self.parts = out, []

    def table(self, title: str, header: list[str], rows: list[list], note: str = "") -> None:
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
        if note:
            lines += ["", note]
        self.parts.append("\n".join(lines) + "\n")
        print(self.parts[-1], flush=True)
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text("\n".join(self.parts))


def _log(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _error(err: BaseException) -> str:
    return f"error: {type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"


# ---- training through the pipeline's own loop -----------------------------------------------------------------

class StopWhen(train.StopRequest):
    """A stop request that `condition()` raises, read by fit between steps as it reads SIGTERM's: a run stopped
    at a chosen step or time through the loop's own preemption path (state saved, Preempted raised)."""

    def __init__(self, condition):
        self._condition = condition
        super().__init__()

    @property
    def signum(self):
        return self._signum if self._signum is not None or not self._condition() else 15  # SIGTERM

    @signum.setter
    def signum(self, value):
        self._signum = value


def run_fit(name: str, entry: dict, images: ImageSet, workdir: Path, device: torch.device, stop=None,
            validation: ImageSet | None = None, ctx: distributed.Context | None = None) -> dict:
    """structae.train.fit on `device`; `stop()` true ends the run as a preemption would. Returns the log rows
    and how the run ended."""
    run = train.Run(workdir / "model.pt", workdir / "train_log.csv", workdir / "resume")
    ctx = ctx or distributed.Context(device=device)
    original = train.StopRequest
    if stop is not None:
        train.StopRequest = lambda: StopWhen(stop)
    try:
        result = train.fit(name, entry, 0, images, run, ctx, validation)
        return {"finished": True, "rows": _rows(run.log_file), "result": result, "run": run}
    except Preempted:
        state = torch.load(run.state_file, map_location="cpu", weights_only=True)
        return {"finished": False, "rows": state["log"], "step": state["step"], "run": run}
    finally:
        train.StopRequest = original


def _rows(path: Path) -> list[dict]:
    import csv

    with open(path) as file:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(file)]


def _measuring(entry: dict, log_every: int) -> dict:
    """The experiment's training settings, made to run until stopped: no checkpoints or validation in the
    window (the paper runs' checkpoint every 2,000 steps and val every 1,000 cost little against them)."""
    entry = copy.deepcopy(entry)
    entry["train"].update(steps=10**9, log_every=log_every, checkpoint_every=10**9, validate_every=0)
    return entry


def _rate(rows: list[dict]) -> float:
    """Steps/s over the logged intervals after the first (the first holds the warm-up: cuDNN's algorithm
    search, allocations); train_minutes counts training time only."""
    if len(rows) >= 3:
        rows = rows[1:]
        steps = rows[-1]["step"] - rows[0]["step"]
        seconds = (rows[-1]["train_minutes"] - rows[0]["train_minutes"]) * 60
    else:
        steps, seconds = rows[-1]["step"], rows[-1]["train_minutes"] * 60
    return steps / seconds


def _synthetic(item: dict, batch: int) -> ImageSet:
    info = DataInfo(**{**item["info"], "factors": tuple(item["info"]["factors"])})
    return ImageSet.synthetic(info, max(4 * batch, 8), pivot=item["entry"]["split"] is not None)


def _shrunk(entry: dict, tiny: bool) -> dict:
    entry = copy.deepcopy(entry)
    if tiny:
        entry["train"]["batch_size"] = min(entry["train"]["batch_size"], 2)
        entry["train"]["warmup_steps"] = 0
    return entry


class Determinism:
    """What bit-identical GPU runs need: the scoring's exact kernels (structae.evaluate.exact_kernels: cuDNN's
    deterministic algorithms, TF32 off) and torch's deterministic kernels, restored on exit."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        self.exact = exact_kernels() if self.on else contextlib.nullcontext()
        self.exact.__enter__()
        self.saved = torch.are_deterministic_algorithms_enabled()
        if self.on:
            torch.use_deterministic_algorithms(True, warn_only=True)  # an op without one warns, the run goes on
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.saved)
        self.exact.__exit__(*exc)


# ---- checks ----------------------------------------------------------------------------------------------------

def check_machine(report: Report, device: torch.device) -> None:
    rows = [["torch", torch.__version__], ["CUDA (torch built with)", torch.version.cuda or "none"],
            ["device", device.type]]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        rows += [["GPU", f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"],
                 ["bf16 supported", str(torch.cuda.is_bf16_supported())],
                 ["cuDNN", str(torch.backends.cudnn.version())],
                 ["TF32 in convolutions (torch default)", str(torch.backends.cudnn.allow_tf32)]]
    rows += [["CPU threads", str(torch.get_num_threads())], ["host", os.uname().nodename]]
    report.table("Machine", ["what", "value"], rows)


def check_ddp(report: Report, plan_path: Path, device: torch.device, tiny: bool) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
               str(Path(__file__).resolve()), "--ddp-child", "--plan", str(plan_path), "--device", device.type]
    command += ["--tiny"] if tiny else []
    started = time.perf_counter()
    try:
        for attempt in (1, 2):  # a second try where the first found its rendezvous port taken
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if not done.returncode and lines:
                break
            tail = (done.stderr.strip().splitlines() or ["no output on stderr"])[-1]
            _log(f"DDP try {attempt}: exit status {done.returncode}, {tail}")
        else:
            raise RuntimeError(f"exit status {done.returncode}: {tail}")
        child = json.loads(lines[-1])
        row = [child["backend"], child["world"], child["wrapped"], f"{child['loss']:.4g}",
               "yes" if child["finite"] else "NO", f"{time.perf_counter() - started:.0f}"]
    except Exception as err:  # noqa: BLE001 (one failed check must not end the run)
        row = [_error(err), "", "", "", "", f"{time.perf_counter() - started:.0f}"]
    report.table("DDP: `torchrun --standalone --nproc_per_node 1`, two steps of cae_two_shapes",
                 ["backend", "processes", "model wrapped in", "loss", "finite", "seconds"], [row])


def ddp_child(plan: dict, device: torch.device, tiny: bool) -> None:
    """Under torchrun: two steps through structae.distributed's process group; one JSON line on stdout."""
    import torch.distributed as dist

    ctx = distributed.start()
    item = _item(plan, EVAL_CASE)
    entry = _shrunk(item["entry"], tiny)
    entry["train"].update(steps=2, log_every=1)
    wrapped = []
    original = train.DistributedDataParallel

    def recording(*args, **kwargs):
        wrapped.append(True)
        return original(*args, **kwargs)
    train.DistributedDataParallel = recording
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_fit(EVAL_CASE, entry, _synthetic(item, entry["train"]["batch_size"]), Path(tmp),
                             ctx.device, ctx=ctx)
        loss = result["result"]["loss"]
        print(json.dumps({"backend": dist.get_backend() if dist.is_initialized() else "none", "world": ctx.world,
                          "wrapped": "DistributedDataParallel" if wrapped else "nothing", "loss": loss,
                          "finite": bool(np.isfinite(loss))}), flush=True)
    finally:
        train.DistributedDataParallel = original
        ctx.close()


def check_resume(report: Report, plan: dict, device: torch.device, scenes: ImageSet, tiny: bool) -> None:
    """IODINE (it draws posterior samples from the device's random stream) 3 ways, deterministic kernels on."""
    item = _item(plan, IODINE_CASE)
    entry = _shrunk(item["entry"], tiny)
    steps = 6 if tiny else 40
    entry["train"].update(steps=steps, log_every=1, checkpoint_every=10**9)
    started = time.perf_counter()
    try:
        with Determinism(device.type == "cuda"), tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            first = run_fit(IODINE_CASE, entry, scenes, tmp / "a", device)
            again = run_fit(IODINE_CASE, entry, scenes, tmp / "b", device)
            checks = iter(range(steps))
            stopped = run_fit(IODINE_CASE, entry, scenes, tmp / "c", device,
                              stop=lambda: next(checks) >= steps // 2 - 1)
            resumed = run_fit(IODINE_CASE, entry, scenes, tmp / "c", device)
            weights = [_weights(r["run"].model_file) for r in (first, again, resumed)]
        rows = [["uninterrupted, twice", f"{steps} and {steps}", _same(weights[0], weights[1])],
                [f"stopped at step {stopped.get('step')}, then resumed", f"{steps}", _same(weights[0], weights[2])],
                ["log rows of the resumed run equal the uninterrupted run's", "",
                 "yes" if _same_rows(first["rows"], resumed["rows"]) else "NO"]]
    except Exception as err:  # noqa: BLE001
        rows = [[_error(err), "", ""]]
    report.table(f"Resume on {device.type}: {IODINE_CASE}, batch {entry['train']['batch_size']}, "
                 f"deterministic kernels ({time.perf_counter() - started:.0f} s)",
                 ["run", "steps", "weights bit-identical to the first run"], rows)


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _same(a: dict, b: dict) -> str:
    if a.keys() != b.keys():
        return "NO (other parameters)"
    differing = [key for key in a if not torch.equal(a[key], b[key])]
    if not differing:
        return "yes"
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in differing)
    return f"NO ({len(differing)} of {len(a)} tensors differ, by up to {worst:.2g})"


def _same_rows(a: list[dict], b: list[dict]) -> bool:
    keep = ("step", "loss")
    return [{k: r[k] for k in keep} for r in a] == [{k: r[k] for k in keep} for r in b]


def groups(plan: dict) -> dict[str, list[dict]]:
    """Experiments that train the same computation (model and its settings, image shape, batch, AMP) share one
    measurement; SWWAE's number of labelled rows changes which rows a batch holds, not what a step costs."""
    grouped: dict[str, list[dict]] = {}
    for item in plan["experiments"]:
        entry, info = item["entry"], item["info"]
        model_config = {k: v for k, v in entry["model_config"].items() if k != "labelled"}
        key = json.dumps([entry["model"], model_config, info["channels"], info["height"], info["width"],
                          entry["train"]["batch_size"], entry["train"]["amp"], entry["train"]["compile"]],
                         sort_keys=True)
        grouped.setdefault(key, []).append(item)
    return grouped


def measure(item: dict, device: torch.device, seconds: float, tiny: bool, deterministic: bool = False) -> dict:
    """One experiment's step rate and peak GPU memory through fit, until `seconds` of training and 3 log rows."""
    entry = _measuring(_shrunk(item["entry"], tiny), log_every=1 if tiny else 10)
    images = _synthetic(item, entry["train"]["batch_size"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp, Determinism(deterministic and device.type == "cuda"):
        log = Path(tmp) / "resume" / "train_log.csv"
        deadline = time.perf_counter() + seconds
        result = run_fit(item["name"], entry, images, Path(tmp), device,
                         stop=lambda: time.perf_counter() > deadline and _lines(log) >= 4)
    rows = result["rows"]
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    losses = [row["loss"] for row in rows]
    return {"rate": _rate(rows), "peak_gib": peak, "loss": losses[0], "finite": bool(np.all(np.isfinite(losses))),
            "steps": rows[-1]["step"], "batch": entry["train"]["batch_size"]}


def _lines(path: Path) -> int:
    try:
        with open(path) as file:
            return sum(1 for _ in file)
    except FileNotFoundError:
        return 0


def check_experiments(report: Report, plan: dict, device: torch.device, seconds: float, tiny: bool,
                      deadline: float) -> dict[str, dict]:
    """Every group measured once, the longest runtime asks first (what a check cut short must not miss)."""
    measured: dict[str, dict] = {}
    longest_first = sorted(groups(plan).values(), key=lambda items: -max(i["entry"]["resources"]["runtime"]
                                                                          for i in items))
    for items in longest_first:
        first = items[0]
        if time.perf_counter() > deadline:
            outcome = {"error": "skipped: the check's time was spent"}
        else:
            _log(f"measuring {first['name']} ({len(items)} experiment(s))")
            try:
                outcome = measure(first, device, seconds, tiny)
            except Exception as err:  # noqa: BLE001
                outcome = {"error": _error(err)}
        for item in items:
            measured[item["name"]] = {**outcome, "as": first["name"]}
    report_experiments(report, plan, measured, f"Paper-scale experiments on {device.type}")
    return measured


def report_experiments(report: Report, plan: dict, measured: dict, title: str) -> None:
    """One row per experiment, in the plan's order: its measured step and its projection beside its asks."""
    report.table(
        f"{title}: one row each (a 'measured as' row shares another's rate)",
        ["experiment", "measured as", "batch", "AMP", "loss (step 1)", "finite", "peak GPU GiB", "steps/s",
         "steps × seeds", "projected h per job", "runtime asked (h)", "runtime ask", "host GiB (est.)",
         "mem asked (GiB)", "mem ask", "GPU-h (all seeds)"],
        [_experiment_row(item, measured.get(item["name"], {"error": "not measured"})) for item in plan["experiments"]],
        note="Projected hours: configured steps / measured steps/s. A job also needs time to read its splits, "
             f"start CUDA, score val and save checkpoints: its runtime ask is judged against the projection plus "
             f"{STARTUP_H * 60:.0f} minutes. Host memory, estimated: the train split (and the val split where "
             "scored) in memory as uint8, twice for a recombination split (read whole, then its rows), plus "
             f"{PROCESS_GIB:.0f} GiB for the process. An ask under {MARGIN}× the need is 'too small', over "
             f"{TOO_LARGE:.0f}× 'over 3×'.")


def judge(report: Report, plan: dict, earlier: Path) -> dict[str, dict]:
    """The experiments table of an earlier run's report, its rates judged against the asks of the plan now:
    resources edited after a GPU run are checked without a GPU."""
    measured = {}
    for row in _table_rows(earlier.read_text(), "### Paper-scale experiments"):
        name, as_name, batch, _, loss, finite, peak, rate = row[:8]
        if rate:
            measured[name] = {"rate": float(rate), "peak_gib": float(peak), "loss": float(loss),
                              "finite": finite == "yes", "batch": int(batch), "as": as_name or name}
    report_experiments(report, plan, measured, f"Paper-scale experiments, rates from {earlier.name}")
    return measured


def _table_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1].split("\n### ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _experiment_row(item: dict, outcome: dict) -> list:
    entry, name = item["entry"], item["name"]
    settings, asks, seeds = entry["train"], entry["resources"], len(entry["seeds"])
    as_name = "" if outcome.get("as", name) == name else outcome["as"]
    if "error" in outcome:
        return [name, as_name, settings["batch_size"], settings["amp"], outcome["error"], *[""] * 11]
    hours = settings["steps"] / outcome["rate"] / 3600
    host = _host_gib(item)
    runtime_h, mem_gib, gpus = asks["runtime"] / 60, asks["mem_mb"] / 1024, max(1, asks["gpus"])
    return [name, as_name, outcome["batch"], settings["amp"], f"{outcome['loss']:.4g}",
            "yes" if outcome["finite"] else "NO", f"{outcome['peak_gib']:.2f}", f"{outcome['rate']:.1f}",
            f"{settings['steps']:,} × {seeds}", f"{hours:.2f}", f"{runtime_h:.1f}",
            _verdict(runtime_h, hours + STARTUP_H),
            f"{host:.1f}", f"{mem_gib:.1f}", _verdict(mem_gib, host), f"{hours * seeds * gpus:.1f}"]


def _verdict(asked: float, needed: float) -> str:
    if asked < MARGIN * needed:
        return "**too small**"
    if asked > TOO_LARGE * needed:
        return "over 3×"
    return "ok"


def _host_gib(item: dict) -> float:
    info, entry = item["info"], item["entry"]
    per_image = info["height"] * info["width"] * (info["channels"] + 1)  # image and mask, uint8
    train_bytes = item["train_rows"] * per_image * (2 if entry["split"] else 1)
    val_bytes = item["val_rows"] * per_image if entry["train"]["validate_every"] else 0
    return PROCESS_GIB + (train_bytes + val_bytes) / 2**30


def check_variants(report: Report, plan: dict, device: torch.device, seconds: float, tiny: bool,
                   measured: dict) -> None:
    """Two experiments again: with deterministic kernels (their cost) and with bf16 autocast (train.amp, a CUDA
    path no paper config takes yet)."""
    if device.type != "cuda":
        report.table("Deterministic kernels and bf16 autocast", ["note"],
                     [["n/a on a CPU: both are GPU settings (the CPU's kernels are pinned apart)"]])
        return
    rows = []
    for name in VARIANT_CASES:
        item = _item(plan, name)
        base = measured.get(name, {}).get("rate")
        for label, deterministic, amp in (("deterministic", True, False), ("bf16 autocast", False, True)):
            variant = {**item, "entry": copy.deepcopy(item["entry"])}
            variant["entry"]["train"]["amp"] = amp
            try:
                outcome = measure(variant, device, seconds, tiny, deterministic=deterministic)
                speed = f"{outcome['rate'] / base:.2f}×" if base else ""
                rows.append([name, label, f"{base:.1f}" if base else "", f"{outcome['rate']:.1f}", speed,
                             f"{outcome['peak_gib']:.2f}", "yes" if outcome["finite"] else "NO"])
            except Exception as err:  # noqa: BLE001
                rows.append([name, label, _error(err), "", "", "", ""])
    report.table("Deterministic kernels (cuDNN deterministic, torch.use_deterministic_algorithms, TF32 off) and "
                 "bf16 autocast, against the defaults",
                 ["experiment", "variant", "steps/s (defaults)", "steps/s (variant)", "variant / defaults",
                  "peak GPU GiB", "loss finite"], rows)


def check_evaluation(report: Report, plan: dict, device: torch.device, tiny: bool,
                     iodine_model: Path | None, iodine_val: ImageSet) -> None:
    """One CAE checkpoint (200 steps on generated 2Shapes) and the IODINE run's, scored on both devices (on a
    CPU, the CPU twice: the CPU tier runs the code, not the comparison)."""
    rows = []
    try:
        item = _item(plan, EVAL_CASE)
        entry = _shrunk(item["entry"], tiny)
        entry["train"].update(steps=5 if tiny else 200, log_every=5, checkpoint_every=10**9, validate_every=0)
        options = shapes.ShapesOptions(shapes=["square", "triangle_up"])
        with tempfile.TemporaryDirectory() as tmp:
            result = run_fit(EVAL_CASE, entry, _scenes_set(shapes.generate_shapes(options, 2048, 0)),
                             Path(tmp), device)
            test = _scenes_set(shapes.generate_shapes(options, 16 if tiny else 256, 1))
            rows += _compare(EVAL_CASE, result["run"].model_file, "cae", test, entry, device)
    except Exception as err:  # noqa: BLE001
        rows.append([EVAL_CASE, _error(err), "", ""])
    if iodine_model is not None:
        try:
            entry = _item(plan, IODINE_CASE)["entry"]
            rows += _compare(IODINE_CASE, iodine_model, "iodine", iodine_val, entry, device,
                             images_count=8 if tiny else 64)
        except Exception as err:  # noqa: BLE001
            rows.append([IODINE_CASE, _error(err), "", ""])
    report.table(f"Evaluation: one checkpoint scored on {device.type} and on the CPU (ARI must agree within 1e-6)",
                 ["checkpoint", "metric", f"{device.type} − CPU", "agrees"], rows,
                 note="IODINE's colour k-means baseline runs scikit-learn on a CPU and torch on a GPU at 64×64 "
                      "(structae.clustering, 'auto'): two implementations, so its ARI may differ by design.")


def _compare(name: str, model_file: Path, model: str, images: ImageSet, entry: dict, device: torch.device,
             images_count: int = 0) -> list[list]:
    settings = {**entry["evaluate"], "batch_size": 64, "max_images": images_count}
    gpu = evaluate_checkpoint(model_file, model, images, settings, device)
    cpu = evaluate_checkpoint(model_file, model, images, settings, "cpu")
    rows = []
    for metric in [k for k in gpu if k.startswith("ari") or k.startswith("baseline_ari") or k == "mse"]:
        difference = gpu[metric] - cpu[metric]
        needed = 1e-6 if metric.startswith("ari") else None
        verdict = ("yes" if abs(difference) <= needed else "**NO**") if needed else "(not required)"
        rows.append([name, metric, f"{difference:.2g}", verdict])
    return rows


def _scenes_set(batches) -> ImageSet:
    parts = list(batches)
    return ImageSet(np.concatenate([p["image"] for p in parts]), np.concatenate([p["mask"] for p in parts]),
                    source="generated")


def _scene_chunk(options: sprites.MultiDSpritesOptions, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    parts = list(sprites.generate_multi_dsprites(options, n, seed))
    return np.concatenate([p["image"] for p in parts]), np.concatenate([p["mask"] for p in parts])


def start_scenes(pool: ProcessPoolExecutor, n: int, size: int, seed: int, chunk: int = 500) -> list:
    """Multi-dSprites scenes (1–5 sprites on a grayscale background, the release's set's style) rendered in
    worker processes while the GPU measures."""
    options = sprites.MultiDSpritesOptions(image_size=size)
    futures = []
    for start in range(0, n, chunk):
        arguments = (options, min(chunk, n - start), seed * 1_000 + start // chunk)
        futures.append(pool.submit(_scene_chunk, *arguments))
        futures[-1].arguments = arguments
    return futures


def collect(futures: list) -> ImageSet:
    """The scenes the workers rendered; where a worker failed (a machine that refuses to start processes),
    its scenes are rendered here."""
    parts = []
    for future in futures:
        try:
            parts.append(future.result())
        except Exception as err:  # noqa: BLE001
            _log(f"a scene worker failed ({_error(err)}); rendering its scenes here")
            parts.append(_scene_chunk(*future.arguments))
    return ImageSet(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                    source="generated Multi-dSprites")


def check_iodine(report: Report, plan: dict, device: torch.device, scenes: ImageSet, val: ImageSet,
                 minutes: float, measured: dict, tiny: bool, workdir: Path, steps: int | None = None) -> Path | None:
    """The release's Multi-dSprites model and optimiser for about `minutes`, its val split scored as it trains."""
    item = _item(plan, IODINE_CASE)
    entry = copy.deepcopy(_shrunk(item["entry"], tiny))
    rate = measured.get(IODINE_CASE, {}).get("rate") or 1.0
    steps = steps or max(4, int(rate * minutes * 60 * 0.9))  # the measured rate sets the steps: the run ends itself
    every = max(1, steps // 12)
    entry["train"].update(steps=steps, log_every=every, validate_every=every, validate_images=len(val),
                          checkpoint_every=10**9)
    deadline = time.perf_counter() + minutes * 60 * 1.5
    started = time.perf_counter()
    try:
        result = run_fit(IODINE_CASE, entry, scenes, workdir, device, validation=val,
                         stop=lambda: time.perf_counter() > deadline)
    except Exception as err:  # noqa: BLE001
        report.table("IODINE at the release's Multi-dSprites settings", ["error"], [[_error(err)]])
        return None
    rows = [[int(r["step"]), f"{r['train_minutes']:.2f}", f"{r['loss']:.1f}", f"{r.get('mse', float('nan')):.4f}",
             f"{r['val_ari_fg']:.3f}" if "val_ari_fg" in r else "", f"{r['val_ari']:.3f}" if "val_ari" in r else "",
             f"{r['val_mse']:.4f}" if "val_mse" in r else ""] for r in result["rows"]]
    config = entry["model_config"]
    report.table(
        f"IODINE at the release's Multi-dSprites settings on {device.type} ({time.perf_counter() - started:.0f} s): "
        f"K {config['slots']}, T {config['iterations']}, latent {config['latent']}, batch "
        f"{entry['train']['batch_size']}, lr {entry['train']['lr']:g}, {len(scenes)} generated "
        f"{scenes.images.shape[1]}×{scenes.images.shape[2]} training scenes, {len(val)} val scenes",
        ["step", "train minutes", "loss", "train MSE", "val ARI-FG", "val ARI", "val MSE"], rows,
        note="" if result["finished"] else "Stopped at the time limit before its planned steps.")
    return result["run"].model_file if result["finished"] else None


def check_budget(report: Report, plan: dict, measured: dict) -> None:
    """GPU-hours per paper of the whole paper-scale run, from the measured rates."""
    papers: dict[str, list] = {}
    for item in plan["experiments"]:
        entry, outcome = item["entry"], measured.get(item["name"], {})
        hours = entry["train"]["steps"] / outcome["rate"] / 3600 if "rate" in outcome else float("nan")
        total = papers.setdefault(entry["paper"], [0, 0, 0.0, 0.0])
        total[0] += 1
        total[1] += len(entry["seeds"])
        total[2] += hours * len(entry["seeds"]) * max(1, entry["resources"]["gpus"])
        total[3] = max(total[3], hours)
    rows = [[paper, n, jobs, f"{gpu_hours:,.0f}", f"{longest:.1f}"]
            for paper, (n, jobs, gpu_hours, longest) in sorted(papers.items())]
    rows.append(["all", sum(v[0] for v in papers.values()), sum(v[1] for v in papers.values()),
                 f"{sum(v[2] for v in papers.values()):,.0f}", f"{max(v[3] for v in papers.values()):.1f}"])
    report.table("What a full paper-scale run costs (training; from the steps/s measured above)",
                 ["paper", "experiments", "training jobs (seeds)", "GPU-hours", "longest job (h)"], rows)


def _item(plan: dict, name: str) -> dict:
    return next(item for item in plan["experiments"] if item["name"] == name)


# ---- main ------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="batches of 2, a few steps: the CPU tier (seconds)")
    parser.add_argument("--out", type=Path, help="write the markdown tables here")
    parser.add_argument("--plan", type=Path, help="the experiments as --write-plan wrote them")
    parser.add_argument("--write-plan", type=Path, help="resolve the paper-scale experiments into this file; exit")
    parser.add_argument("--rate-seconds", type=float, default=5.0, help="training seconds timed per experiment")
    parser.add_argument("--iodine-minutes", type=float, default=3.0, help="the IODINE run's training minutes")
    parser.add_argument("--budget-minutes", type=float, default=8.0,
                        help="the whole check's minutes: experiments not measured in time are skipped, and the "
                             "IODINE run is shortened to fit")
    parser.add_argument("--checks", default=",".join(CHECKS),
                        help=f"the checks to run, comma-separated (default all: {','.join(CHECKS)})")
    parser.add_argument("--iodine-steps", type=int,
                        help="the IODINE run's steps (default: --iodine-minutes at the rate measured for it)")
    parser.add_argument("--judge", type=Path, metavar="REPORT",
                        help="judge the asks of config/paper.yaml now against the rates of an earlier report; "
                             "no GPU needed")
    parser.add_argument("--ddp-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.checks = set(args.checks.split(","))
    if args.checks - set(CHECKS):
        parser.error(f"--checks: unknown {', '.join(sorted(args.checks - set(CHECKS)))}; choose from "
                     f"{', '.join(CHECKS)}")
    if args.write_plan:
        plan = write_plan(args.write_plan)
        print(f"{len(plan['experiments'])} experiments written to {args.write_plan}")
        return
    plan = read_plan(args.plan)
    if args.judge:
        report = Report(args.out)
        check_budget(report, plan, judge(report, plan, args.judge))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device is visible to torch; run it on a GPU machine, or pass --device cpu")
    if args.ddp_child:
        ddp_child(plan, torch.device(args.device), args.tiny)
        return
    run_checks(args, plan)


def run_checks(args, plan: dict) -> None:
    started = time.perf_counter()
    device = torch.device(args.device)
    report = Report(args.out)
    tiny = args.tiny
    seconds = 0.2 if tiny else args.rate_seconds
    size = 32 if tiny else 64
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(
            2 if tiny else 8, mp_context=multiprocessing.get_context("spawn")) as pool:  # no fork of torch's threads
        tmp = Path(tmp)
        plan_path = tmp / "plan.json"
        plan_path.write_text(json.dumps(plan))
        if tiny:  # the CPU tier: one experiment of each model, and none at CLEVR's 128×128
            plan = _one_per_model(plan)
        train_scenes = start_scenes(pool, 64 if tiny else 5000, size, seed=0)
        val_scenes = start_scenes(pool, 8 if tiny else 500, size, seed=1)
        if device.type == "cuda":
            torch.zeros(1, device=device)  # CUDA's start-up, out of the first measurement
        wanted = args.checks
        if "machine" in wanted:
            check_machine(report, device)
        if "ddp" in wanted:
            check_ddp(report, plan_path, device, tiny)
        scenes = collect(train_scenes)
        if "resume" in wanted:
            check_resume(report, plan, device, scenes, tiny)
        end = started + args.budget_minutes * 60
        iodine_minutes = 0.05 if tiny else args.iodine_minutes
        # What follows the experiments: the variants (4 rates), the IODINE run, the evaluations (about a minute).
        after = 4 * (seconds + 3) + iodine_minutes * 60 + 60
        measured = {}
        if "experiments" in wanted:
            measured = check_experiments(report, plan, device, seconds, tiny, end - after)
        if "variants" in wanted:
            check_variants(report, plan, device, seconds, tiny, measured)
        val = collect(val_scenes)
        iodine_model = None
        if "iodine" in wanted:
            left = (end - time.perf_counter() - 60) / 60
            iodine_model = check_iodine(report, plan, device, scenes, val, max(0.05, min(iodine_minutes, left)),
                                        measured, tiny, tmp / "iodine", args.iodine_steps)
        if "evaluation" in wanted:
            check_evaluation(report, plan, device, tiny, iodine_model, val)
        if "budget" in wanted and measured:
            check_budget(report, plan, measured)
    _log(f"done in {(time.perf_counter() - started) / 60:.1f} minutes")


def _one_per_model(plan: dict) -> dict:
    kept, seen = [], set()
    for item in plan["experiments"]:
        model, large = item["entry"]["model"], item["info"]["height"] > 64
        if (model not in seen and not large) or item["name"] in (EVAL_CASE, IODINE_CASE, *VARIANT_CASES):
            kept.append(item)
            seen.add(model)
    return {**plan, "experiments": kept}


if __name__ == "__main__":
    main()
