"""bench/versus.py, the side-by-side harness, on a stand-in anchor: it must time both sides in their own
processes, import the anchor from the path given, and put the slower one on the right side of the ratio."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPT = f"""
import sys, time
sys.path.insert(0, {str(BENCH)!r})
from versus import Case, main

def ours(batch):
    return lambda: time.sleep(0.001 * batch)

def ours_product(batch):
    import torch

    a = torch.ones(32, 32)
    return lambda: a @ a  # 2·32³ FLOPs a step

def anchor(path, batch):
    import stand_in  # found only on the anchor's path
    return lambda: stand_in.step(batch)

main(__file__, {{"step": Case(ours, anchor, "a sleep", batch=4),
                "product": Case(ours_product, anchor, "a matrix product", batch=4)}}, "test")
"""


def _run(tmp_path, *args):
    script = tmp_path / "versus_case.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)


def test_versus_times_both_sides_and_reports_the_anchor_over_ours(tmp_path):
    anchor = tmp_path / "anchor"
    anchor.mkdir()
    (anchor / "stand_in.py").write_text("import time\ndef step(batch):\n    time.sleep(0.004 * batch)\n")
    result = _run(tmp_path, "--anchor", str(anchor), "--rounds", "1", "--kernels", "both")
    assert result.returncode == 0, result.stderr
    table = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()]
    rows = {cells[1]: cells for cells in table if cells[0] == "step"}
    assert set(rows) == {"anchor", "ours", "ours native", "anchor / ours", "anchor / ours native",
                         "portable / native"}
    ratio = float(rows["anchor / ours"][2].rstrip("×"))
    assert 2.5 < ratio < 6  # the anchor sleeps 4× longer per step
    product = {cells[1]: cells for cells in table if cells[0] == "product"}
    assert product["ours"][6] == f"{2 * 32 ** 3 / 1e9:.4g}" and product["anchor"][6] == "0"  # GFLOP per step
    assert float(product["ours"][9]) > 0 and product["ours"][8].endswith(" %")  # the matmul and the share of it


def test_ours_computes_with_the_pipelines_kernels_and_the_anchor_as_it_is(monkeypatch):
    sys.path.insert(0, str(BENCH))
    import versus

    from structae import kernels

    for name in kernels.PORTABLE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert versus.side_env("ours", 2)["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert versus.side_env("ours", 2)[kernels.ENV_VAR] == "portable"
    for side in ("anchor", "ours native"):
        assert "ONEDNN_MAX_CPU_ISA" not in versus.side_env(side, 2)
        assert versus.side_env(side, 2)["OMP_NUM_THREADS"] == "2"


def test_versus_without_an_anchor_is_one_line(tmp_path):
    result = _run(tmp_path, "--anchor", str(tmp_path / "missing"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"versus_case.py: give --anchor, the anchor's checked-out repository (not a directory: "
        f"{tmp_path / 'missing'}); see docs/benchmarks.md"]


def test_cae_threads_reports_one_threaded_job_against_parallel_jobs():
    result = subprocess.run([sys.executable, str(BENCH / "cae_threads.py"), "--jobs", "2", "--batches", "4",
                             "--seconds", "0.2", "--hidden", "4"], capture_output=True, text=True, timeout=300,
                            cwd=BENCH)
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[-1].split()
    assert row[0] == "4" and all(float(cell.rstrip("×")) > 0 for cell in row[1:])



def test_job_times_sums_benchmark_seconds_per_paper_and_stage(tmp_path):
    """bench/job_times.py on hand-written benchmark files: seconds summed per paper and stage, in minutes."""
    files = {"train/cae_two_shapes/seed0.tsv": 60, "train/cae_two_shapes/seed1.tsv": 120,
             "evaluate/cae_two_shapes.tsv": 30, "figure_model/iodine/slots_iodine_multi_dsprites.png.tsv": 90,
             "generate_dataset/mnist/train.tsv": 6}
    for name, value in files.items():
        path = tmp_path / "benchmarks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\n{value}\t0:00:00\n")
    result = subprocess.run([sys.executable, str(BENCH / "job_times.py"), "--root", str(tmp_path), "--config",
                             str(BENCH.parent / "config.yaml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:]}
    assert rows["cae"] == ["0.0", "3.0", "0.5", "0.0", "3.5"]
    assert rows["iodine"] == ["0.0", "0.0", "0.0", "1.5", "1.5"]
    assert rows["swwae"] == ["0.1", "0.0", "0.0", "0.0", "0.1"]
    assert rows["all"][-1] == "5.1"


@pytest.mark.parametrize("script", ["cae", "iodine", "maganet"])
def test_an_anchors_worker_imports_no_structae(script):
    """The anchor's side runs the bench script in the anchor's own environment, which has torch and no
    structae: the script's top level, bench/versus.py and bench/bench_common.py must import without it."""
    code = (f"import sys; sys.modules['structae'] = None; sys.path.insert(0, {str(BENCH)!r}); "
            f"import runpy; runpy.run_path({str(BENCH / f'{script}.py')!r}, run_name='worker_import')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
