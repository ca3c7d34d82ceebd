"""Processed splits as torch batches for training and evaluation.

A split is read into memory once as uint8 (60,000 images of 64×64×3 take 0.7 GB) and batches are
cut from it by row index, so the batch at a training step is a pure function of the step and the seed
— what makes resumed runs bit-identical. Batch dict (what every model's forward receives):

    image    float32 (B, C, H, W) in [0, 1]
    mask     int64 (B, H, W)      object labels, 0 = background, IGNORE_LABEL = unscored
    index    int64 (B,)           row within this ImageSet
    factors  {name: (B, ...)}     numeric factors only (float32, or int64 for integer ones)
    pivot    float32 (1, C, H, W) the split's fixed pivot image, when the experiment uses a split
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from structae.data import h5
from structae.data.info import DataInfo
from structae.errors import UserError


class ImageSet:
    """Images, masks and numeric factors of one split (or of the rows an index array selects), in memory."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, factors: dict[str, np.ndarray] | None = None,
                 pivot: np.ndarray | None = None, source: str = "arrays"):
        """images (N, H, W, C) uint8, masks (N, H, W) uint8, factors name -> (N, ...), pivot (H, W, C) uint8."""
        self.source = source
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.masks = torch.from_numpy(np.ascontiguousarray(masks))
        self.factors = {}
        for name, values in (factors or {}).items():
            if np.issubdtype(values.dtype, np.number):  # string factors (CLEVR's colour names) stay on disk
                dtype = np.int64 if np.issubdtype(values.dtype, np.integer) else np.float32
                self.factors[name] = torch.from_numpy(values.astype(dtype))
        if len(self.images) == 0:
            raise UserError(f"{source}: no rows selected; check the experiment's split")
        self.pivot = None if pivot is None else _to_float(torch.from_numpy(pivot[None]))

    @classmethod
    def read(cls, path: str | Path, rows: np.ndarray | None = None, pivot_row: int | None = None) -> ImageSet:
        """A processed split (h5 schema), all rows or `rows`; `pivot_row` indexes the whole file."""
        with h5.open_split(path) as file:
            select = slice(None) if rows is None else np.asarray(rows)
            factors = {name: values[:][select] for name, values in file.get("factors", {}).items()}
            pivot = file["image"][pivot_row] if pivot_row is not None else None
            return cls(file["image"][:][select], file["mask"][:][select], factors, pivot, str(path))

    @classmethod
    def synthetic(cls, info: DataInfo, n: int, seed: int = 0, pivot: bool = False) -> ImageSet:
        """Random images and masks shaped as `info` says, and a class in 0..9 for each factor it names:
        one-step tests and benchmarks of paper-scale configs, whose datasets are not on this machine."""
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, (n, info.height, info.width, info.channels), dtype=np.uint8)
        masks = rng.integers(0, info.max_objects + 1, (n, info.height, info.width), dtype=np.uint8)
        factors = {name: rng.integers(0, 10, n) for name in info.factors}
        return cls(images, masks, factors, images[0] if pivot else None, source="synthetic")

    def __len__(self) -> int:
        return len(self.images)

    def info(self) -> DataInfo:
        _, height, width, channels = self.images.shape
        return DataInfo(channels=channels, height=height, width=width, n_images=len(self),
                        max_objects=_largest_label(self.masks), factors=tuple(sorted(self.factors)))

    def batch(self, rows: torch.Tensor, device: torch.device | str = "cpu") -> dict:
        """The batch dict (module docstring) of `rows`, on `device`."""
        batch = {
            "image": _to_float(self.images[rows]).to(device),
            "mask": self.masks[rows].long().to(device),
            "index": rows.to(device),
            "factors": {name: values[rows].to(device) for name, values in self.factors.items()},
        }
        if self.pivot is not None:
            batch["pivot"] = self.pivot.to(device)
        return batch


def _largest_label(masks: torch.Tensor, rows_per_chunk: int = 4096) -> int:
    """The largest object label in `masks`, IGNORE_LABEL left out; 0 for none. A chunked masked_fill, not
    boolean indexing: on the 46,080 dSprites masks that built gigabytes of int64 indices and took 7 s."""
    largest = 0
    for chunk in masks.split(rows_per_chunk):
        top = int(chunk.max()) if chunk.numel() else 0
        if top == h5.IGNORE_LABEL:  # overlaps marked: the largest label below them
            top = int(chunk.masked_fill(chunk == h5.IGNORE_LABEL, 0).max())
        largest = max(largest, top)
    return largest


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.permute(0, 3, 1, 2).float().div_(255.0)  # (B, H, W, C) uint8 -> (B, C, H, W)


def load(data_file: str | Path, split_file: str | Path | None, part: str) -> ImageSet:
    """The `part` ("train" or "test") of an experiment's data: a split file's rows, or the whole file."""
    if split_file is None:
        return ImageSet.read(data_file)
    split_file = Path(split_file)
    if not split_file.is_file():
        raise UserError(f"split index {split_file} is missing; run `snakemake {split_file}` to make it")
    with np.load(split_file) as index:
        if part not in index or "pivot" not in index:
            raise UserError(f"{split_file} has no '{part}' rows; delete it and rerun its rule")
        return ImageSet.read(data_file, index[part], int(index["pivot"]))


@functools.lru_cache(maxsize=2)
def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """A permutation of range(n) that depends only on (seed, epoch); cached, since every step of an epoch
    slices the same one (callers must not modify it)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def step_rows(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """Rows of the global batch at `step` (0-based): epochs of shuffled rows, the last partial batch dropped."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise UserError(f"batch_size {batch_size} is larger than the {n} training images; lower train.batch_size")
    epoch, position = divmod(step, per_epoch)
    return epoch_order(n, seed, epoch)[position * batch_size:(position + 1) * batch_size]
