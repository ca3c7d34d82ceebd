"""The workflow through a real SLURM: scripts/slurm.sh brings up a single-node cluster on this machine and
the tiny config runs with tests/slurm_profile, the real snakemake-executor-plugin-slurm submitting with sbatch.

Skipped, with the reason, only where SLURM cannot be installed here (not root, no apt-get).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY

SCRIPT = REPO / "scripts" / "slurm.sh"
PROFILE = REPO / "tests" / "slurm_profile"
TARGET = "results/tables/engine.csv"  # data, a split, 3 training jobs (one on 2 GPUs), 2 evaluations
HARD_TIMEOUT_S = 600
STUCK_PENDING_S = 120  # a job SLURM can never schedule stays pending; the run itself would never notice

pytestmark = pytest.mark.slow


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "SLURM integration test needs root to install and run slurmctld/slurmd (not root here)"
    if not shutil.which("sbatch") and not shutil.which("apt-get"):
        return "SLURM integration test needs Debian's slurm packages and apt-get is not available here"
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    install = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
    if install.returncode != 0:
        pytest.skip(f"SLURM could not be installed here: {install.stderr.strip().splitlines()[-1:]}")
    state = tmp_path_factory.mktemp("slurm")
    start = time.perf_counter()
    up = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True, text=True)
    assert up.returncode == 0, up.stdout + up.stderr
    print(f"slurm up in {time.perf_counter() - start:.2f} s")
    yield state
    subprocess.run(["bash", str(SCRIPT), "stop", str(state)], capture_output=True, text=True)


def _pending_for(since: dict[str, float]) -> float:
    """Seconds the longest-pending job on the (private) cluster has been pending; `since` remembers first sightings."""
    queue = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True).stdout.split("\n")
    now, longest = time.monotonic(), 0.0
    for line in filter(None, queue):
        job, state = line.split()
        if state == "PENDING":
            longest = max(longest, now - since.setdefault(job, now))
    return longest


def _run_with_watchdog(cwd: Path, env: dict, target: str = TARGET, each_poll=None,
                       stuck_pending_s: float = STUCK_PENDING_S) -> tuple[int, str]:
    """snakemake with the test profile; SIGINT on a hard timeout or a job pending too long, then unlock.
    `each_poll()`, if given, runs every 2 s while snakemake does."""
    log = cwd / "snakemake.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", str(PROFILE), target],
                                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline, since, why = time.monotonic() + HARD_TIMEOUT_S, {}, None
        while proc.poll() is None:
            if each_poll:
                each_poll()
            if time.monotonic() > deadline:
                why = f"no result after {HARD_TIMEOUT_S} s"
            elif _pending_for(since) > stuck_pending_s:
                why = f"a job has been pending for over {stuck_pending_s} s (SLURM cannot schedule it)"
            if why:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                subprocess.run(["scancel", "--user", "root"], capture_output=True)
                subprocess.run([sys.executable, "-m", "snakemake", "--unlock"], cwd=cwd, env=env,
                               capture_output=True)
                break
            time.sleep(2)
    output = log.read_text()
    if why:
        pytest.fail(f"SLURM run stopped by the watchdog: {why}\n{output[-3000:]}")
    return proc.returncode, output


def test_tiny_workflow_runs_through_sbatch(slurm_cluster, workflow_dir):
    config = yaml.safe_load((workflow_dir / TINY).read_text())
    config["experiments"]["tiny_two_shapes"]["resources"] = {"gpus": 2}
    (workflow_dir / TINY).write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    returncode, output = _run_with_watchdog(workflow_dir, env)
    assert returncode == 0, output[-3000:]
    assert (workflow_dir / TARGET).exists()

    submitted = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", output))
    rules = sorted(submitted.values())
    assert rules.count("train") == 3 and rules.count("evaluate") == 2, rules
    assert "table_metrics" not in rules  # a local rule: runs on the submit host
    for job, rule in submitted.items():
        shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        assert "JobState=COMPLETED" in shown, shown  # squeue/scontrol know the job: it went through sbatch
        two_gpus = "TresPerJob=gres:gpu:2" in shown or "TresPerJob=gres/gpu:2" in shown
        assert two_gpus == (rule == "train" and "tiny_two_shapes" in shown), shown
    ddp_log = (workflow_dir / "logs/train/tiny_two_shapes/seed0.log").read_text()
    assert "2 process(es)" in ddp_log  # the rule launched torchrun with the job's 2 GPUs
    assert "1 process(es)" in (workflow_dir / "logs/train/tiny_to_element/seed0.log").read_text()


def test_a_training_job_requeues_itself_at_its_time_limit_and_resumes(slurm_cluster, workflow_dir):
    """USR1 (SLURM's time-limit warning) to a running training job: the trainer saves, requeues its own job,
    and the same job resumes and finishes, with no retry to spend (the test profile has retries: 0)."""
    config = yaml.safe_load((workflow_dir / TINY).read_text())
    config["experiments"]["tiny_two_shapes"]["train"].update(steps=1500, checkpoint_every=500)
    (workflow_dir / TINY).write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    train_log = workflow_dir / "logs/train/tiny_two_shapes/seed0.log"
    signalled = []

    def time_limit_warning_once_training_runs():  # once some steps are done, so that the resume shows
        done = re.findall(r"(\d+)/1500 \[", train_log.read_text() if train_log.exists() else "")
        if not signalled and done and int(done[-1]) >= 100:
            job = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True).stdout.split()
            subprocess.run(["scancel", "--signal", "USR1", job[0]], check=True)
            signalled.append(job[0])

    # SLURM holds a requeued job for its credential lifetime before it may start again (scripts/slurm.sh: 20 s).
    returncode, output = _run_with_watchdog(workflow_dir, env, "results/checkpoints/tiny_two_shapes/seed0/model.pt",
                                            time_limit_warning_once_training_runs, stuck_pending_s=300)
    assert signalled and returncode == 0, output[-3000:]
    shown = subprocess.run(["scontrol", "show", "job", signalled[0]], capture_output=True, text=True).stdout
    assert "Restarts=1" in shown and "JobState=COMPLETED" in shown, shown
    resumed = re.search(r"resuming from step (\d+)", train_log.read_text())
    assert resumed and int(resumed[1]) >= 100  # the second start went on from the first one's saved state


def test_the_no_accounting_profile_is_the_slurm_profile_plus_three_settings():
    main = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    variant = yaml.safe_load((REPO / "profiles/slurm-no-accounting/config.yaml").read_text())
    added = {key: variant.pop(key) for key in set(variant) - set(main)}
    assert variant == main
    assert added == {"slurm-no-account": True, "slurm-status-command": "squeue",
                     "slurm-init-seconds-before-status-checks": 60}


def test_paper_scale_jobs_ask_for_chunked_runtimes_and_gpu_evaluation(workflow_dir):
    """What the paper-scale jobs request: a training runtime above STRUCTAE_SLURM_MAX_RUNTIME is capped (the run
    goes on in requeued chunks), and evaluating a GPU experiment asks for one GPU."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "STRUCTAE_SLURM_MAX_RUNTIME": "300"}
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "results/metrics/iodine_clevr6.json",
                          "--config", "scale=paper"], cwd=workflow_dir, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = {block.split("\n", 1)[0].strip(): block for block in run.stdout.split("rule ")[1:]}
    assert "runtime=300," in jobs["train:"]  # the experiment asks for 600 minutes
    assert "gpu=1" in jobs["evaluate:"]
    bad = subprocess.run([sys.executable, "-m", "snakemake", "-n", "all", "--config", "scale=paper"], cwd=workflow_dir,
                         env={**env, "STRUCTAE_SLURM_MAX_RUNTIME": "a day"}, capture_output=True, text=True)
    assert bad.returncode != 0 and "STRUCTAE_SLURM_MAX_RUNTIME='a day': give the cluster's time limit" in bad.stderr
