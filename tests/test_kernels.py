"""Portable kernels (structae.kernels): a tiny training run ends in weights whose sha256 is committed here, the
same on AVX-512 and AVX2 CPUs; the CLI pins before torch starts; a bad mode is one line.

Run as a script (`python tests/test_kernels.py [tiny] [cae]`), this file prints the runs' digests under the mode
$STRUCTAE_KERNELS says (docs/benchmarks.md lists them under each setting: `native` on an AVX-512 CPU gives others).
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2
import pytest

from structae import kernels
from structae.config import validate_config
from structae.errors import UserError

REPO = Path(__file__).resolve().parents[1]
STRUCTAE = [sys.executable, "-m", "structae.cli"]
# Weights after training under `portable`, on an AMD EPYC with AVX-512, for two small runs: the tiny model (its
# four convolutions run on oneDNN, Adam on ATen's loops), 20 steps, and a CAE (its transposed convolutions fall
# back to MKL's matrix products), 3 steps; batch 16 of 32×32 images, one thread.
PORTABLE_DIGEST = "569af16cca7ff3e6e0b840a5248d979179cd29b73b6058dfe68ba4210877d0bd"
CAE_PORTABLE_DIGEST = "bda3d6a1db74e4a5c5652441a3a8fb9304814294565f24eebe3551e47bf5a55b"
RUNS = {
    "tiny": {"paper": "engine", "model": "tiny", "dataset": "noise",
             "train": {"steps": 20, "batch_size": 16, "lr": 0.003, "log_every": 20}},
    "cae": {"paper": "engine", "model": "cae", "dataset": "noise", "model_config": {"hidden": 16},
            "train": {"steps": 3, "batch_size": 16, "lr": 0.003, "log_every": 3}},
}


def run_digest(run_name: str = "tiny") -> str:
    """sha256 over a run's parameter and buffer names and bytes after training RUNS[run_name] on fixed random
    images."""
    import torch

    from structae.config import validate_entry
    from structae.data.info import DataInfo
    from structae.data.loader import ImageSet
    from structae.train import Run, fit

    torch.set_num_threads(1)  # the workflow fixes threads per job; so does this run
    entry = validate_entry("experiments", "kernels_probe", json.loads(json.dumps(RUNS[run_name])))
    info = DataInfo(channels=1, height=32, width=32, n_images=64, max_objects=2, factors=())
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp, "model.pt"), Path(tmp, "log.csv"), Path(tmp, "resume"))
        fit("kernels_probe", entry, 0, ImageSet.synthetic(info, 64), run)
        weights = torch.load(run.model_file, weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def unpinned_env(**extra: str) -> dict[str, str]:
    """This process's environment without the pins conftest set: what a fresh shell has, plus `extra`."""
    pins = {kernels.ENV_VAR, *kernels.PORTABLE_ENV, *kernels.PORTABLE_DEFAULTS}
    return {**{k: v for k, v in os.environ.items() if k not in pins}, **extra}


def has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def test_portable_training_ends_in_the_committed_weights():
    # conftest pinned `portable`; on an AVX-512 CPU `native` ends elsewhere (docs/benchmarks.md), so this fails
    # there if the pin stops taking effect, and on any CPU if a kernel's rounding changes.
    assert run_digest("tiny") == PORTABLE_DIGEST


def test_portable_cae_steps_end_in_the_committed_weights():
    # The same for MKL: its default branch, or MKL_CBWR=AVX2 on an AMD CPU, ends elsewhere (docs/benchmarks.md).
    assert run_digest("cae") == CAE_PORTABLE_DIGEST


@pytest.mark.slow
@pytest.mark.parametrize("cap", [{}, {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}])
def test_portable_digest_holds_whatever_the_environment_allows(cap):
    # A fresh process whose environment caps nothing, or caps otherwise (portable overrides it).
    run = subprocess.run([sys.executable, __file__, "tiny", "cae"],
                         env=unpinned_env(**cap, **{kernels.ENV_VAR: "portable"}), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [PORTABLE_DIGEST, CAE_PORTABLE_DIGEST]


def test_cli_pins_kernels_before_torch_starts():
    shown = subprocess.run([*STRUCTAE, "kernels"], env=unpinned_env(), capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    facts = dict(line.split(": ", 1) for line in shown.stdout.splitlines())
    assert facts["mode"] == "portable"
    assert facts["cpu_capability"] in ("AVX2", "DEFAULT")  # DEFAULT: a CPU below AVX2
    assert facts["onednn_max_cpu_isa"] == "AVX2" and facts["mkl_cbwr"] == "COMPATIBLE" and facts["threads"] == "1"


@pytest.mark.skipif(not has_avx512(), reason="native differs from portable only on a CPU with AVX-512")
def test_native_leaves_the_cpu_its_best_kernels():
    shown = subprocess.run([*STRUCTAE, "--kernels", "native", "kernels"], env=unpinned_env(),
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "cpu_capability: AVX512" in shown.stdout


def test_onednn_runs_avx2_convolutions_once_pinned():
    # oneDNN has no query for its ISA: its verbose log names the kernel each convolution ran.
    code = ("from structae import kernels; kernels.pin('portable'); import torch; "
            "torch.nn.Conv2d(1, 16, 4)(torch.ones(2, 1, 32, 32))")  # the tiny model's first layer
    run = subprocess.run([sys.executable, "-c", code], env=unpinned_env(ONEDNN_VERBOSE="1"),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    convolutions = [line for line in run.stdout.splitlines() if ",exec,cpu,convolution," in line]
    assert convolutions and all("avx512" not in line for line in convolutions)
    assert "isa:Intel AVX2" in run.stdout or not has_avx512()


@pytest.mark.skipif(not has_avx512(), reason="on a CPU without AVX-512 the first kernels chosen are portable ones")
def test_a_pin_after_torch_computed_is_one_line():
    code = ("import torch; torch.ones(3).sum(); from structae import kernels; "
            "kernels.apply('portable', torch.device('cpu'))")
    run = subprocess.run([sys.executable, "-c", code], env=unpinned_env(), capture_output=True, text=True)
    assert run.returncode != 0 and "UserError: kernels: torch already runs AVX512 kernels" in run.stderr


def test_portable_on_a_gpu_sets_torchs_deterministic_flags():
    # The flags are settable without a GPU: this runs apply's GPU branch on any machine (in its own process,
    # so the flags do not leak into other tests).
    code = ("import json, torch; from structae import kernels; kernels.pin('portable'); "
            "kernels.apply('portable', torch.device('cuda')); b = torch.backends; "
            "print(json.dumps([b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32, "
            "b.cuda.matmul.allow_tf32, torch.are_deterministic_algorithms_enabled()]))")
    run = subprocess.run([sys.executable, "-c", code], env=unpinned_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [True, False, False, False, True]


def test_pin_overrides_a_stray_cap_and_keeps_chosen_threads(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    kernels.pin("portable")
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2" and os.environ["OMP_NUM_THREADS"] == "4"


def test_describe_names_what_is_in_force():
    facts = kernels.describe()
    assert facts["mode"] == "portable" and facts["cpu_capability"] in ("AVX2", "DEFAULT")
    assert facts["blas"] == "mkl" or not has_avx512()  # the x86 CPU wheel's BLAS
    assert all(isinstance(value, str) for value in facts.values())


def test_a_bad_mode_is_one_line():
    with pytest.raises(UserError, match=r"^config: kernels: 'fast' is not allowed; choose one of: portable, native$"):
        validate_config({"scale": "tiny", "kernels": "fast", "datasets": {}, "experiments": {}})
    run = subprocess.run([*STRUCTAE, "kernels"], env=unpinned_env(**{kernels.ENV_VAR: "fast"}),
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "structae: error: $STRUCTAE_KERNELS: 'fast' is not a kernels mode; choose one of: portable, native"]


def test_config_default_is_portable():
    assert validate_config({"scale": "tiny", "datasets": {}, "experiments": {}})["kernels"] == "portable"


@pytest.mark.parametrize("mode", kernels.MODES)
def test_report_front_page_names_the_kernels(mode):
    page = jinja2.Template((REPO / "report/workflow.rst").read_text())
    text = page.render(snakemake={"config": {"kernels": mode, "scale": "embedded"}})
    assert f"Kernels: ``{mode}``" in text
    pins = [f"{name}={value}" for name, value in kernels.PORTABLE_ENV.items() if name != "DNNL_MAX_CPU_ISA"]
    assert all(pin in text for pin in pins) == (mode == "portable")


@pytest.mark.slow
def test_workflow_records_the_kernels_beside_each_model(tiny_run):
    records = sorted(tiny_run.glob("results/checkpoints/*/seed*/model.kernels.json"))
    assert records and len(records) == len(list(tiny_run.glob("results/checkpoints/*/seed*/model.pt")))
    for path in records:
        facts = json.loads(path.read_text())
        assert facts["mode"] == "portable" and facts["onednn_max_cpu_isa"] == "AVX2"


if __name__ == "__main__":
    kernels.pin(kernels.mode())
    for name in sys.argv[1:] or ["tiny"]:
        print(run_digest(name))  # the run's progress goes to stderr
