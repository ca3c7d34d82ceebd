"""The published dSprites npz, streamed to HDF5.

Format, written as data: a zip of .npy members
    imgs             uint8   (737280, 64, 64)  values 0/1
    latents_classes  int64   (737280, 6)       order color, shape, scale, orientation, posX, posY
    latents_values   float64 (737280, 6)       sizes 1, 3, 6, 40, 32, 32
    metadata         a pickled dict (not read)
`imgs` is read in row blocks from the zip member, so memory stays flat.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from structae.errors import UserError

BATCH = 4096


@dataclass
class NpzOptions:
    """The npz is converted whole; there is nothing to choose."""


def _member(archive: zipfile.ZipFile, name: str):
    try:
        return archive.open(f"{name}.npy")
    except KeyError:
        raise UserError(f"{archive.filename} has no '{name}' array; is it the dSprites npz?") from None


def convert(path: Path, rows: slice) -> Iterator[dict]:
    with zipfile.ZipFile(path) as archive:
        with _member(archive, "latents_classes") as handle:
            classes = np.load(handle)
        with _member(archive, "latents_values") as handle:
            values = np.load(handle)
        with _member(archive, "imgs") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(handle)
            if fortran or dtype != np.uint8 or shape[1:] != (64, 64):
                raise UserError(f"{path}: imgs is {shape} {dtype}; expected (N, 64, 64) uint8 in C order")
            stop = shape[0] if rows.stop is None else min(rows.stop, shape[0])
            row_bytes = 64 * 64
            handle.seek(handle.tell() + rows.start * row_bytes)
            for start in range(rows.start, stop, BATCH):
                n = min(BATCH, stop - start)
                on = np.frombuffer(handle.read(n * row_bytes), np.uint8).reshape(n, 64, 64)
                yield {"image": (on[..., None] * 255).astype(np.uint8), "mask": on.copy(),
                       "factors": {"latents_classes": classes[start:start + n],
                                   "latents_values": values[start:start + n]}}
