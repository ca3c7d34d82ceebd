"""Scales: which config files a run reads, and a guard against one scale overwriting another's outputs.

A scale is a whole configuration (embedded, paper, tiny); `snakemake --config scale=NAME` picks one. All
scales write the same paths (data/, results/), so running a second scale in a directory that holds the
first one's outputs would retrain and overwrite them: hours of checkpoints. The workflow records the scale
it ran in SCALE_RECORD and refuses another scale there with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structae.errors import UserError
from structae.files import write_text

# The files read for each scale, in order (later ones override earlier ones, key by key).
SCALES = {
    "embedded": ("config.yaml",),
    "paper": ("config.yaml", "config/paper.yaml"),
    "tiny": ("config/tiny.yaml",),
}
DEFAULT = "embedded"
SCALE_RECORD = Path("results/.scale")


def files(scale: Any) -> tuple[str, ...]:
    """The config files of `scale`, relative to the workflow's root."""
    if not isinstance(scale, str) or scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)} (snakemake --config scale=NAME)")
    return SCALES[scale]


def check_outputs(root: Path, scale: str) -> None:
    """Refuse to run `scale` where another scale's outputs are."""
    record = root / SCALE_RECORD
    previous = record.read_text().strip() if record.is_file() else scale
    if previous != scale:
        raise UserError(f"data/ and results/ hold the {previous} scale's outputs and scale {scale} would overwrite "
                        f"them: run it in another clone, or move data/ and results/ away first "
                        f"(or pass --config scale={previous})")


def record(root: Path, scale: str) -> None:
    """Note which scale the outputs in `root` belong to (called when a run starts)."""
    write_text(root / SCALE_RECORD, scale + "\n")
