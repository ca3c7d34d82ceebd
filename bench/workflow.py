"""How long the workflow itself takes: `snakemake -n all` before any data exists (target < 10 s), for the
embedded and the paper-scale config. Prints a table; asserts nothing.
    python bench/workflow.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from structae.tables import print_table

ROOT = Path(__file__).resolve().parents[1]
FILES = ["Snakefile", "rules", "report", "envs", "profiles", "config.yaml", "config"]


def timed(cwd: Path, *args: str) -> tuple[float, int]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, check=True)
    jobs = next((int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("total")), 0)
    return time.perf_counter() - start, jobs


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in FILES:
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
        for label, extra in (("embedded", []), ("paper", ["--config", "scale=paper"])):
            seconds, jobs = timed(work, "-n", "all", *extra)
            rows.append((f"snakemake -n all ({label}, no data yet)", f"{seconds:.1f}", str(jobs)))
    header = ("command", "seconds", "jobs")
    print_table(header, rows)


if __name__ == "__main__":
    main()
