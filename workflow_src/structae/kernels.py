"""Which kernels a job computes with: `portable` pins them so that every x86-64 CPU with AVX2 gives the same bits,
`native` lets each library pick the fastest for the machine (config.yaml's `kernels`).

Why: oneDNN (convolutions), ATen (vectorised elementwise and reduction loops), MKL (torch's matrix products) and
OpenBLAS (numpy's, under scikit-learn's k-means) each pick their kernels by the CPU's instruction set. AVX-512
kernels sum in another order than AVX2 ones, and training grows the last-bit differences into different tables
(issue 35: CAE MNIST&Shape ARI-FG 0.086 natively on an AVX-512 CPU, 0.275 with AVX2 kernels, as in the README).

The libraries read their switches from the environment once, at their first use, so `pin` must run before the
first tensor operation: the `structae` CLI calls it before any verb imports torch, and tests/conftest.py before
the tests do. `apply` then sets what torch holds as flags (the GPU's deterministic algorithms) once the device
is known. Importable without torch; torch is imported only by `apply` and `describe`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from structae.errors import UserError

MODES = ("portable", "native")
DEFAULT = "portable"
ENV_VAR = "STRUCTAE_KERNELS"  # how the mode reaches a job: the workflow sets it from config.yaml's `kernels`

# What `portable` sets, each library's documented switch: the AVX2 level, and MKL's vendor-independent branch.
PORTABLE_ENV = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's convolutions (torch's CPU conv backend)
    "DNNL_MAX_CPU_ISA": "AVX2",  # the same switch under its older name
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised loops (torch.backends.cpu.get_cpu_capability())
    # MKL's conditional numerical reproducibility: COMPATIBLE (SSE2 kernels) is its one branch documented to give
    # the same results on Intel and AMD CPUs; AVX2 holds on Intel CPUs only (elsewhere MKL runs its AUTO branch).
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's OpenBLAS (scikit-learn's k-means in evaluation): the AVX2 kernels
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # what torch.use_deterministic_algorithms needs of cuBLAS
}
# Threads change how sums split; the workflow fixes them per job (Snakemake's OMP_NUM_THREADS, train's
# --threads); a command run by hand gets one unless the caller chose.
PORTABLE_DEFAULTS = {"OMP_NUM_THREADS": "1"}

_pinned: str | None = None  # the mode this process pinned


def check(mode: object, where: str = "kernels") -> str:
    if mode not in MODES:
        raise UserError(f"{where}: {mode!r} is not a kernels mode; choose one of: {', '.join(MODES)}")
    return mode


def mode() -> str:
    """The mode in force: the one pinned in this process, else $STRUCTAE_KERNELS, else portable."""
    return _pinned or check(os.environ.get(ENV_VAR, DEFAULT), f"${ENV_VAR}")


def pin(mode_: str) -> None:
    """Set the environment that `mode_` needs, before torch (or numpy's OpenBLAS) first computes anything.

    portable overrides what the environment says (a stray ONEDNN_MAX_CPU_ISA must not unpin a job); native
    leaves the environment as it is. Child processes (torchrun's workers) inherit both the mode and the pins.
    """
    global _pinned
    check(mode_)
    os.environ[ENV_VAR] = mode_
    if mode_ == "portable":
        os.environ.update(PORTABLE_ENV)
        for name, value in PORTABLE_DEFAULTS.items():
            os.environ.setdefault(name, value)
    _pinned = mode_


def apply(mode: str, device) -> None:
    """Pin `mode` for computing on `device` (a torch.device): the environment, then torch's own flags.

    On a GPU, portable means cuDNN's deterministic algorithms without autotuning, torch's deterministic
    algorithms and no TF32: the same bits run after run on one GPU model, not across GPU models. An operation
    with no deterministic CUDA kernel warns instead of stopping a cluster job (torch's documentation lists
    AdaptiveAvgPool2d's backward, which paper-scale IODINE's `refine_pool: average` uses).
    native leaves torch's defaults (autotuned cuDNN, TF32 convolutions).
    Raises UserError if, for a CPU device, this process computed with torch before the pin (then its kernels
    are chosen).
    """
    import torch

    pin(mode)
    if mode == "native":
        return
    capability = torch.backends.cpu.get_cpu_capability()
    if device.type == "cpu" and capability.startswith("AVX512"):  # on a GPU the CPU only feeds it
        raise UserError(f"kernels: torch already runs {capability} kernels in this process, so portable ones "
                        "cannot be pinned; call structae.kernels.pin('portable') before using torch, or set "
                        f"${ENV_VAR}=native")
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def _blas() -> str:
    import torch

    for part in torch.__config__.show().replace(",", " ").split():
        if part.startswith("BLAS_INFO="):
            return part.split("=", 1)[1]
    return "unknown"


def describe() -> dict[str, str]:
    """What is in force in this process: the mode, torch, the CPU and each library's kernel setting; on a GPU
    the cuDNN and determinism flags. Calling it fixes ATen's CPU capability, so pin first."""
    import torch

    unset = "unset (the CPU's best)"
    facts = {
        "mode": mode(),
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", unset)),
        "blas": _blas(),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "unset (MKL's choice)"),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", unset),
        "threads": str(torch.get_num_threads()),
    }
    if torch.cuda.is_available():
        facts.update({
            "gpu": torch.cuda.get_device_name(),
            "cuda": str(torch.version.cuda),
            "cudnn": str(torch.backends.cudnn.version()),
            "cudnn_deterministic": str(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": str(torch.backends.cudnn.benchmark),
            "deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled())
            + (" (warn only)" if torch.is_deterministic_algorithms_warn_only_enabled() else ""),
            "matmul_tf32": str(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_tf32": str(torch.backends.cudnn.allow_tf32),
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset"),
        })
    return facts


def record_file(model_file: str | Path) -> Path:
    """Where a model's kernels record lies: beside it, model.pt -> model.kernels.json."""
    return Path(model_file).with_suffix(".kernels.json")


def record(path: str | Path) -> dict[str, str]:
    """Write describe() as JSON to `path` (the record a run keeps beside its model); return it."""
    from structae import files

    facts = describe()
    files.write_text(path, json.dumps(facts, indent=1) + "\n")
    return facts
