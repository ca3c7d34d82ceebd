"""Metrics files to tables: a tidy CSV and a markdown summary per paper.

CSV (results/tables/{paper}.csv): one row per experiment × metric × seed, with that group's mean,
standard deviation (ddof 1; empty for one seed) and number of seeds repeated on each row, so the
file is both the raw data and the summary; `reported` is the paper's number for that metric, where the
experiment's config gives one; `fresh_test_seed` is empty for the dataset's own test split and the generator
seed for a test split drawn anew (evaluate.fresh_test_seed). Markdown (results/tables/{paper}.md):
experiments as rows (a fresh test split's scores in a row of their own, below the experiment's), metrics as
columns, "mean ± std" cells, and a "metric (paper)" column beside each metric with reported numbers.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

import pandas as pd

from structae import files
from structae.errors import UserError

KEYS = ["paper", "experiment", "model", "dataset", "split", "fresh_test_seed"]


def tidy(metrics_files: list[str | Path]) -> pd.DataFrame:
    rows = []
    for path in metrics_files:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"metrics file {path} is missing; run `snakemake {path}` to make it")
        result = json.loads(path.read_text())
        fresh = result.get("fresh_test_seed") is not None
        reported = {} if fresh else result.get("reported", {})  # the paper's number sits beside the test row
        for seed, values in result["seeds"].items():
            for metric, value in values.items():
                rows.append({**{k: result.get(k) for k in KEYS}, "metric": metric, "seed": int(seed),
                             "value": value, "reported": reported.get(metric)})
    frame = pd.DataFrame(rows, columns=[*KEYS, "metric", "seed", "value", "reported"])
    frame["fresh_test_seed"] = frame["fresh_test_seed"].astype("Int64")  # whole seeds, empty for the test split
    frame = frame.sort_values(["experiment", "fresh_test_seed", "metric", "seed"], kind="stable",
                              na_position="first", ignore_index=True)
    groups = frame.groupby(["experiment", "fresh_test_seed", "metric"], sort=False, dropna=False)["value"]
    return frame.assign(mean=groups.transform("mean"), std=groups.transform("std"),
                        n_seeds=groups.transform("count"))


def mean_std(mean: float, std: float) -> str:
    """Mean and std to the std's second significant digit ("0.912 ± 0.012", "267 ± 118")."""
    if pd.isna(std):
        return f"{mean:.4g}"
    decimals = max(0, 1 - math.floor(math.log10(std))) if std > 0 else 4
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def own_test(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows scored on each dataset's own test split (not on a fresh one); a table made before fresh test
    splits existed has only those."""
    if "fresh_test_seed" not in frame:
        return frame
    return frame[frame["fresh_test_seed"].isna()]


def row_label(experiment: str, fresh_test_seed) -> str:
    if pd.isna(fresh_test_seed):
        return experiment
    return f"{experiment}, fresh test scenes (generator seed {int(fresh_test_seed)})"


def _grid(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Experiments × metrics, "mean ± std" over seeds; reported numbers beside the metrics that have them."""
    labels = [row_label(e, s) for e, s in zip(frame["experiment"], frame["fresh_test_seed"], strict=True)]
    frame = frame.assign(experiment=labels)
    summary = frame.drop_duplicates(["experiment", "metric"])
    wide = summary.assign(cell=[mean_std(m, s) for m, s in zip(summary["mean"], summary["std"], strict=True)])
    wide = wide.pivot(index="experiment", columns="metric", values="cell").reindex(summary["experiment"].unique())
    reported = summary.dropna(subset=["reported"])
    for metric in reported["metric"].unique():
        values = reported[reported["metric"] == metric].set_index("experiment")["reported"]
        column = wide.columns.get_loc(metric) + 1
        wide.insert(column, f"{metric} (paper)", values.reindex(wide.index).map(lambda v: f"{v:g}", na_action="ignore"))
    seeds = summary.groupby("experiment")["n_seeds"].max()
    header = ["experiment", "seeds", *wide.columns]
    return header, [[experiment, str(seeds[experiment]), *cells.fillna("–")] for experiment, cells in wide.iterrows()]


def markdown(frame: pd.DataFrame) -> str:
    header, rows = _grid(frame)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html(frame: pd.DataFrame, title: str) -> str:
    """The markdown table as a standalone HTML page, which Snakemake's report shows inline."""
    header, rows = _grid(frame)
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return html_page(title, f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                            "<p>mean ± std over training seeds, on held-out test images</p>",
                     "th,td{padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}")


def html_page(title: str, body: str, style: str = "") -> str:
    """A standalone HTML page (as the report shows tables and claims) with `title` as its heading; `body` is
    HTML already, `style` CSS beyond the shared table look."""
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{escape(title)}</title><style>"
            f"body{{font-family:sans-serif}}table{{border-collapse:collapse}}th,td{{border:1px solid #bbb}}{style}"
            f"</style></head><body><h3>{escape(title)}</h3>{body}</body></html>\n")


def read_tidy(path: str | Path) -> pd.DataFrame:
    """A table written by write_table, back as the tidy frame."""
    if not Path(path).is_file():
        raise UserError(f"table {path} is missing; run `snakemake {path}` to make it")
    return pd.read_csv(path)


def write_table(metrics_files: list[str | Path], csv_out: str | Path, markdown_out: str | Path,
                html_out: str | Path | None = None) -> pd.DataFrame:
    frame = tidy(metrics_files)
    files.write_text(csv_out, frame.to_csv(index=False))
    files.write_text(markdown_out, markdown(frame))
    if html_out:
        files.write_text(html_out, html(frame, f"{Path(markdown_out).stem}: metrics on test images"))
    return frame


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Plain-text columns on stdout: the tables that bench/ and probes/ print."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)), flush=True)
