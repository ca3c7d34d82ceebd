"""The processed-dataset schema: one HDF5 file per split, written once, read by every model.

    image     uint8 (N, H, W, C)  chunked along N, gzip-compressed
    mask      uint8 (N, H, W)     per-pixel object label; 0 = background where the source has one,
                                  IGNORE_LABEL = pixels to ignore (overlaps in the CAE Shapes sets)
    factors/  one dataset per factor, (N, ...) — per-object ones are (N, K[, ...]) with entity 0 the
              background where the source has one; `visibility` (N, K) where the source has it
    attrs     dataset, split, kind, source_format, source_sha256, converter_version, options (JSON)

Writes are atomic: rows stream into a temporary beside `<name>.h5` (structae.files), renamed only when the
split is complete, so an interrupted job leaves nothing that looks finished. Memory does not grow with the
dataset. HDF5 writes through `_FirstErrorFile`: HDF5 2.0 crashes (segfault) freeing a file whose close
failed, as it does on a full disk, so HDF5 is never shown a failed write; the writer raises it instead.

Compression runs beside the caller: whole chunks of uint8 datasets are deflated by zlib on worker
threads (zlib releases the GIL; HDF5's own filter would not) and stored with `write_direct_chunk` when
the next batch arrives, so a converter decodes batch i+1 while batch i compresses. The bytes on disk are
what HDF5's gzip filter writes, and any reader decompresses them as usual.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from structae.errors import UserError
from structae.files import atomic_path

IGNORE_LABEL = 255
CONVERTER_VERSION = "1"
CHUNK_IMAGES = 64
GZIP_LEVEL = 1
REQUIRED = {"image": 4, "mask": 3}  # dataset name -> ndim


class _FirstErrorFile:
    """The file HDF5 writes through (h5py's fileobj driver): the first failed write (ENOSPC, EDQUOT, EIO) is
    kept in `error` and that write and every later one dropped, so HDF5 carries on to a clean close."""

    def __init__(self, path: Path):
        self.raw = open(path, "w+b", buffering=0)  # HDF5 writes whole chunks and pages: no buffer needed
        self.error: OSError | None = None

    def write(self, data) -> int:
        if self.error is None:
            try:
                return self.raw.write(data)
            except OSError as err:
                self.error = err
        return memoryview(data).nbytes

    def read(self, size: int = -1) -> bytes:  # h5py takes an object with read and seek for a file object
        return self.raw.read(size)

    def readinto(self, buffer) -> int:
        return self.raw.readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self.raw.truncate(size)
            except OSError as err:
                self.error = err
        return self.raw.tell() if size is None else size

    def flush(self) -> None:
        pass  # unbuffered

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class SplitWriter:
    """Appends batches of rows to a new HDF5 file (write_split gives it a temporary name, renamed on success)."""

    def __init__(self, path: str | Path, attrs: Mapping[str, object]):
        self.path = Path(path)
        self.disk = _FirstErrorFile(self.path)
        try:
            self.file = h5py.File(self.disk, "w")
        except BaseException:
            self.disk.raw.close()
            raise
        for key, value in attrs.items():
            self.file.attrs[key] = value if isinstance(value, str | int | float) else json.dumps(value)
        self.file.attrs["converter_version"] = CONVERTER_VERSION
        self.rows = 0
        self._compressor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="h5-deflate")
        self._pending: list[tuple[h5py.Dataset, int, Future]] = []  # chunks deflating: dataset, first row

    def _append(self, name: str, rows: np.ndarray) -> None:
        if name not in self.file:
            chunk = (min(CHUNK_IMAGES, max(len(rows), 1)), *rows.shape[1:])
            self.file.create_dataset(name, shape=(0, *rows.shape[1:]), maxshape=(None, *rows.shape[1:]),
                                     dtype=rows.dtype, chunks=chunk, compression="gzip",
                                     compression_opts=GZIP_LEVEL, shuffle=rows.dtype.itemsize > 1)
        data = self.file[name]
        if data.shape[1:] != rows.shape[1:] or data.dtype != rows.dtype:
            raise ValueError(f"{name}: rows of shape {rows.shape[1:]} {rows.dtype} do not match "
                             f"{data.shape[1:]} {data.dtype}")
        data.resize(self.rows + len(rows), axis=0)
        chunk = data.chunks[0]
        whole = len(rows) // chunk * chunk if rows.dtype.itemsize == 1 and self.rows % chunk == 0 else 0
        for start in range(0, whole, chunk):  # whole chunks: deflated on a worker, stored later
            block = np.ascontiguousarray(rows[start:start + chunk])
            self._pending.append((data, self.rows + start, self._compressor.submit(zlib.compress, block, GZIP_LEVEL)))
        if whole < len(rows):
            data[self.rows + whole:] = rows[whole:]

    def _store_pending(self) -> None:
        for data, row, deflated in self._pending:
            data.id.write_direct_chunk((row,) + (0,) * (data.ndim - 1), deflated.result())
        self._pending = []

    def append(self, image: np.ndarray, mask: np.ndarray, factors: Mapping[str, np.ndarray] | None = None):
        """image (B, H, W, C) uint8, mask (B, H, W) uint8, factors name -> (B, ...)."""
        if image.dtype != np.uint8 or image.ndim != 4 or mask.shape != image.shape[:3]:
            raise ValueError(f"image must be uint8 (B,H,W,C) and mask (B,H,W); got {image.shape}, {mask.shape}")
        self._store_pending()  # the previous batch's chunks, deflated while the caller made this batch
        self._append("image", image)
        self._append("mask", mask.astype(np.uint8, copy=False))
        for name, values in (factors or {}).items():
            self._append(f"factors/{name}", np.asarray(values))
        self.disk.raise_error()  # stop at the batch that filled the disk
        self.rows += len(image)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._store_pending()
                self.file.attrs["n"] = self.rows
        finally:
            self._compressor.shutdown(cancel_futures=True)
            try:
                self.file.close()
            finally:
                self.disk.raw.close()
        if exc is not self.disk.error:  # a write that failed while closing, or what made the batch fail
            self.disk.raise_error()


def write_split(path: str | Path, batches: Iterable[dict], attrs: Mapping[str, object]) -> int:
    """Stream `batches` (dicts with image, mask and optional factors) into `path` atomically; return rows."""
    with atomic_path(path) as tmp:
        with SplitWriter(tmp, attrs) as writer:
            for batch in batches:
                writer.append(batch["image"], batch["mask"], batch.get("factors"))
        if writer.rows == 0:
            raise UserError(f"{path}: no rows to write; check the dataset's sizes and source")
    return writer.rows


def open_split(path: str | Path) -> h5py.File:
    """Open a processed split read-only after checking its schema; one clear line if it is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset file {path} is missing; run `snakemake {path}` to make it")
    try:
        file = h5py.File(path, "r")
    except OSError:
        raise UserError(f"{path} is not a readable HDF5 file; delete it and rerun its rule") from None
    for name, ndim in REQUIRED.items():
        if name not in file or file[name].ndim != ndim or file[name].dtype != np.uint8:
            file.close()
            raise UserError(f"{path} does not follow the structae schema ({name} must be uint8 with "
                            f"{ndim} axes); delete it and rerun its rule")
    return file
