"""At a SLURM time limit the trainer requeues its own job (scontrol requeue) instead of failing it; a fake
scontrol on PATH records what it was asked."""

import os
import signal
import stat

from structae import requeue


def fake_scontrol(tmp_path, exit_code=0, message=""):
    script = tmp_path / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\necho "{message}" >&2\nexit {exit_code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}


def test_usr1_in_a_slurm_job_requeues_that_job(tmp_path):
    said = requeue.at_time_limit(signal.SIGUSR1, fake_scontrol(tmp_path))
    assert (tmp_path / "calls").read_text() == "requeue 4242\n"
    assert "SLURM job 4242 requeued" in said


def test_nothing_is_requeued_on_preemption_outside_slurm_or_from_another_rank(tmp_path):
    environ = fake_scontrol(tmp_path)
    assert requeue.at_time_limit(signal.SIGTERM, environ) is None  # preemption: SLURM requeues by itself
    assert requeue.at_time_limit(signal.SIGUSR1, {**environ, "SLURM_JOB_ID": ""}) is None
    assert requeue.at_time_limit(signal.SIGUSR1, {**environ, "RANK": "1"}) is None  # rank 0 asks, once
    assert not (tmp_path / "calls").exists()


def test_a_refused_requeue_says_why_and_leaves_it_to_a_retry(tmp_path):
    said = requeue.at_time_limit(signal.SIGUSR1, fake_scontrol(tmp_path, 1, "Requested operation is disabled"))
    assert said == "SLURM job 4242 not requeued (Requested operation is disabled); a retry resumes it"
