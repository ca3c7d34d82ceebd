"""Each paper's share of a finished run: the seconds of every job that writes a Snakemake benchmark file
(data, training, evaluation, figures), summed per paper and stage, in minutes of job time. Jobs without a
benchmark file (tables, claims, small figures) are not counted. Prints a table; asserts nothing.
    python bench/job_times.py [--root DIR] [--config config.yaml]
Run it in (or point --root at) a working directory after `snakemake all`.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from structae.config import load_config
from structae.tables import print_table

# benchmarks/<stage folder>/...: which stage a file belongs to, and whether the next path part names an
# experiment, a dataset or a paper.
STAGES = {"generate_dataset": ("data", "dataset"), "convert_dataset": ("data", "dataset"),
          "train": ("train", "experiment"), "evaluate": ("evaluate", "experiment"),
          "embed_latents": ("figures", "experiment"), "figure_model": ("figures", "paper")}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--config", action="append", help="config files (default: ROOT/config.yaml)")
    return parser.parse_args()


def seconds(path: Path) -> float:
    with path.open() as handle:
        return sum(float(row["s"]) for row in csv.DictReader(handle, delimiter="\t"))


def main() -> None:
    args = arguments()
    config = load_config(args.config or [args.root / "config.yaml"])
    paper_of = {"experiment": {name: entry["paper"] for name, entry in config["experiments"].items()},
                "dataset": {name: "+".join(entry["papers"]) for name, entry in config["datasets"].items()}}
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for path in sorted((args.root / "benchmarks").rglob("*.tsv")):
        parts = path.relative_to(args.root / "benchmarks").parts
        if parts[0] not in STAGES:
            continue
        stage, kind = STAGES[parts[0]]
        name = parts[1].removesuffix(".tsv")
        paper = name if kind == "paper" else paper_of[kind].get(name, "?")
        totals[paper, stage] += seconds(path)
    papers = sorted({paper for paper, _ in totals})
    stages = ["data", "train", "evaluate", "figures"]
    rows = [(paper, *(f"{totals[paper, stage] / 60:.1f}" for stage in stages),
             f"{sum(totals[paper, stage] for stage in stages) / 60:.1f}") for paper in papers]
    rows.append(("all", *(f"{sum(totals[p, stage] for p in papers) / 60:.1f}" for stage in stages),
                 f"{sum(totals.values()) / 60:.1f}"))
    print_table(("paper", *(f"{stage} min" for stage in stages), "total min"), rows)


if __name__ == "__main__":
    main()
