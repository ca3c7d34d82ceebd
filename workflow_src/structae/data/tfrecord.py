"""A streaming reader of (GZIP) TFRecord files and a `tf.train.Example` parser, without TensorFlow.

TFRecord framing, per record:  uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)
little-endian, masked_crc(x) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2³²).

Example wire format (protobuf):  Example{1: Features{1: repeated MapEntry{1: key, 2: Feature}}}
    Feature{1: BytesList{1: repeated bytes} | 2: FloatList{1: packed float} | 3: Int64List{1: packed varint}}

DeepMind's multi-object datasets store `image` and `mask` as one single-byte string per element, so a
BytesList payload is the regular run `0x0A 0x01 b₀ 0x0A 0x01 b₁ …`; `bytes_list_as_uint8` reads it as a
strided numpy view instead of tens of thousands of protobuf objects, which is what limits TensorFlow.
"""

from __future__ import annotations

import gzip
import struct
import threading
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from queue import Full, Queue

import crc32c
import numpy as np

from structae.errors import UserError

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _open(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    # A large buffer keeps the number of Python-level reads per record small.
    return gzip.open(path, "rb") if gzipped else open(path, "rb", buffering=1 << 20)


def iter_records(path: str | Path, prefetch: int = 16) -> Iterator[bytes]:
    """Yield each record's bytes after checking both CRCs; corruption is a UserError naming the record.

    A reader thread decompresses and checks up to `prefetch` records ahead (zlib and crc32c release the
    GIL), so decompression overlaps the caller's decoding on a second core; memory stays bounded.
    """
    if prefetch <= 0:
        yield from _read_records(Path(path))
        return
    queue: Queue = Queue(maxsize=prefetch)
    stop = threading.Event()

    def produce():
        try:
            for record in _read_records(Path(path)):
                while not stop.is_set():
                    try:
                        queue.put(record, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_DONE)
        except BaseException as err:  # handed to the consumer, which raises it in its own thread
            queue.put(err)

    thread = threading.Thread(target=produce, name="tfrecord-reader", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


_DONE = object()


def _read_records(path: Path) -> Iterator[bytes]:
    index = 0
    try:
        with _open(path) as stream:
            while header := stream.read(12):
                if len(header) < 12:
                    raise _corrupt(path, index, "truncated header")
                length, length_crc = struct.unpack("<QI", header)
                if masked_crc(header[:8]) != length_crc:
                    raise _corrupt(path, index, "length CRC mismatch")
                data = stream.read(length)
                footer = stream.read(4)
                if len(data) < length or len(footer) < 4:
                    raise _corrupt(path, index, "truncated data")
                if masked_crc(data) != struct.unpack("<I", footer)[0]:
                    raise _corrupt(path, index, "data CRC mismatch")
                yield data
                index += 1
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise _corrupt(path, index, f"broken gzip stream ({err})") from None


def _corrupt(path: Path, index: int, what: str) -> UserError:
    return UserError(f"{path}: record {index} is corrupt ({what}); re-download the file "
                     f"(delete it and rerun its download rule)")


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field in buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:  # length-delimited
            length, pos = _varint(buf, pos)
            yield number, wire, pos, pos + length
            pos += length
        elif wire == 0:
            value_start = pos
            _, pos = _varint(buf, pos)
            yield number, wire, value_start, pos
        elif wire == 5:
            yield number, wire, pos, pos + 4
            pos += 4
        elif wire == 1:
            yield number, wire, pos, pos + 8
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def parse_example(record: bytes) -> dict[str, tuple[int, memoryview]]:
    """Feature name -> (list kind, the list message's bytes). Values are decoded on demand."""
    buf = memoryview(record)
    features: dict[str, tuple[int, memoryview]] = {}
    for number, _, start, end in _fields(buf, 0, len(buf)):
        if number != 1:
            continue
        for entry_number, _, entry_start, entry_end in _fields(buf, start, end):
            if entry_number != 1:
                continue
            key, value = None, None
            for field, _, lo, hi in _fields(buf, entry_start, entry_end):
                if field == 1:
                    key = bytes(buf[lo:hi]).decode()
                elif field == 2:
                    value = (lo, hi)
            if key is None or value is None:
                continue
            for kind, _, lo, hi in _fields(buf, *value):
                features[key] = (kind, buf[lo:hi])
    return features


def bytes_list_as_uint8(payload: memoryview) -> np.ndarray:
    """A BytesList of single-byte strings as uint8 (N,); falls back to a generic decode otherwise.

    Strided slices of a bytes object run in C at memory speed, much faster than numpy's strided compare.
    """
    raw = bytes(payload)
    n, rest = divmod(len(raw), 3)
    if not rest and raw[0::3] == _repeated(0x0A, n) and raw[1::3] == _repeated(0x01, n):
        return np.frombuffer(raw[2::3], dtype=np.uint8)
    return np.frombuffer(b"".join(bytes_list(payload)), dtype=np.uint8)


@cache
def _repeated(byte: int, n: int) -> bytes:
    return bytes([byte]) * n


def bytes_list(payload: memoryview) -> list[bytes]:
    return [bytes(payload[lo:hi]) for number, _, lo, hi in _fields(payload, 0, len(payload)) if number == 1]


def float_list(payload: memoryview) -> np.ndarray:
    """Packed (one length-delimited run) or unpacked (tag per float) FloatList as float32 (N,)."""
    parts = []
    for number, _, lo, hi in _fields(payload, 0, len(payload)):
        if number == 1:
            parts.append(np.frombuffer(payload[lo:hi], dtype="<f4"))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def int64_list(payload: memoryview) -> np.ndarray:
    values = []
    for number, _, lo, hi in _fields(payload, 0, len(payload)):
        if number != 1:
            continue
        pos = lo
        while pos < hi:  # a packed run holds several varints; an unpacked field holds one
            value, pos = _varint(payload, pos)
            values.append(value - (1 << 64) if value >= 1 << 63 else value)
    return np.array(values, dtype=np.int64)
