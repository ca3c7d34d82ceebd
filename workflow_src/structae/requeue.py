"""At the time limit, put the SLURM job back in the queue instead of failing it.

SLURM sends USR1 before a training job's time limit (the slurm profile's `--signal=USR1@300`); the trainer
saves its resume state and stops. Failing the job there would spend one of Snakemake's retries, which are
meant for real failures, and a run longer than the partition's time limit would need one retry per chunk.
So the trainer asks SLURM to requeue its own job (`scontrol requeue`, allowed for jobs submitted with
`--requeue`, which the profile sets): the same job starts again later, its shell reruns the train command,
and training resumes. Preemption needs nothing from us: SLURM requeues a `--requeue` job itself and the
plugin waits for it. Where requeueing is refused, the job fails as before and a retry resumes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess


def at_time_limit(signum: int, environ=os.environ) -> str | None:
    """Requeue this SLURM job if `signum` is the time-limit warning; a line saying what happened, or None when
    there is nothing to do (not USR1, not a SLURM job, or not the first of several processes)."""
    job = environ.get("SLURM_JOB_ID")
    if signum != signal.SIGUSR1 or not job or environ.get("RANK", "0") != "0":
        return None
    scontrol = shutil.which("scontrol", path=environ.get("PATH"))
    if not scontrol:
        return f"SLURM job {job} not requeued: scontrol is not on PATH; a retry resumes it"
    result = subprocess.run([scontrol, "requeue", job], capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines() or ["no reason given"]
        return f"SLURM job {job} not requeued ({reason[-1]}); a retry resumes it"
    return f"SLURM job {job} requeued at its time limit; it resumes from the saved state when it starts again"
