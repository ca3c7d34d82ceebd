"""What every figure module shares: a headless backend and atomic PNG writes."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are made in batch jobs without a display
import matplotlib.pyplot as plt  # noqa: E402


def save(fig, out: str | Path) -> None:
    """Write a figure atomically, so an interrupted job leaves no PNG that looks finished."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, out)
