"""Recombination splits: declarative predicates over a dataset's factors, written as index files.

A split's `test` is a conjunction of comparisons, e.g.
    test: {shape: {eq: ellipse}, posX: {ge: 0.6}, orientation: {ge: 120deg, le: 240deg}, scale: {lt: 0.6}}
Values are numbers, shape names (square, ellipse, heart) or angles with a `deg` suffix. Comparisons
allow a tolerance of TOLERANCE, so a boundary stored as 0.6000000000000001 still counts as 0.6: `ge`
and `le` include the boundary, `lt` and `gt` exclude it. Train is every other row. The pivot is the
first row whose factors equal the given values.

File: data/splits/{dataset}/{split}.npz with int64 arrays `train`, `test` and a scalar `pivot`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from structae.data import h5, sprites
from structae.errors import UserError
from structae.files import atomic_path

TOLERANCE = 1e-6
COMPARE = {
    "eq": lambda v, t: np.abs(v - t) <= TOLERANCE,
    "ge": lambda v, t: v >= t - TOLERANCE,
    "le": lambda v, t: v <= t + TOLERANCE,
    "gt": lambda v, t: v > t + TOLERANCE,
    "lt": lambda v, t: v < t - TOLERANCE,
}


def factor_table(path: str | Path) -> dict[str, np.ndarray]:
    """Per-image scalar factors of a processed split: name -> (N,)."""
    with h5.open_split(path) as file:
        if "factors/latents_values" in file:
            values = file["factors/latents_values"][:]
            return {name: values[:, i] for i, name in enumerate(sprites.LATENT_NAMES)}
        group = file.get("factors", {})
        return {name: group[name][:] for name in group if group[name].ndim == 1}


def to_number(value, where: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text in sprites.SHAPES:
        return float(sprites.SHAPES.index(text) + 1)  # latents_values codes shapes as 1, 2, 3
    if text.endswith("deg"):
        try:
            return math.radians(float(text[:-3]))
        except ValueError:
            pass
    raise UserError(f"{where}: cannot read {value!r}; use a number, a shape name or an angle like 120deg")


def _factor(factors: dict, name: str, where: str) -> np.ndarray:
    if name not in factors:
        raise UserError(f"{where}: unknown factor '{name}'; the dataset has {', '.join(factors)}")
    return factors[name]


def test_mask(factors: dict[str, np.ndarray], test: dict, where: str) -> np.ndarray:
    keep = np.ones(len(next(iter(factors.values()))), dtype=bool)
    for name, comparisons in test.items():
        values = _factor(factors, name, f"{where}.test")
        for op, target in comparisons.items():
            keep &= COMPARE[op](values, to_number(target, f"{where}.test.{name}.{op}"))
    return keep


def pivot_index(factors: dict[str, np.ndarray], pivot: dict, where: str) -> int:
    match = np.ones(len(next(iter(factors.values()))), dtype=bool)
    for name, target in pivot.items():
        match &= COMPARE["eq"](_factor(factors, name, f"{where}.pivot"), to_number(target, f"{where}.pivot"))
    if not match.any():
        raise UserError(f"{where}.pivot: no image has factors {pivot}; pick values on the dataset's grid")
    return int(np.flatnonzero(match)[0])


def make_split(spec: dict, name: str, data_path: str | Path, out: str | Path) -> dict[str, int]:
    """Write the index file of split `name`; return its counts (train, test)."""
    where = f"splits.{name}"
    factors = factor_table(data_path)
    test = test_mask(factors, spec["test"], where)
    pivot = pivot_index(factors, spec["pivot"], where)
    if test.all() or not test.any():
        raise UserError(f"{where}.test selects {int(test.sum())} of {test.size} images; "
                        f"a split needs both train and test images")
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, train=np.flatnonzero(~test), test=np.flatnonzero(test), pivot=np.int64(pivot))
    return {"train": int((~test).sum()), "test": int(test.sum()), "pivot": pivot}
