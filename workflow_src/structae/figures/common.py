"""What every figure module shares: a headless backend and atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are made in batch jobs without a display
import matplotlib.pyplot as plt  # noqa: E402

from structae.files import atomic_path  # noqa: E402


def save(fig, out: str | Path) -> None:
    """Write a figure atomically, so an interrupted job leaves no PNG that looks finished."""
    try:
        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)  # also when the disk is full: a caller drawing many figures keeps no stale one
