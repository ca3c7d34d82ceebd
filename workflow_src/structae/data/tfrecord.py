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

import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from queue import Full, Queue

import crc32c
import numpy as np

from structae.errors import UserError

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# The reader works on the decompressed stream in pieces rather than record by record: one zlib call per
# piece (which releases the GIL) runs on a second core while the caller decodes, and there is no Python
# call per record on the reading side. Pieces bound the memory: a highly compressible chunk is inflated
# at most PIECE bytes at a time.
CHUNK = 1 << 20  # compressed bytes per read
PIECE = 1 << 22  # most decompressed bytes handed over at once


class DamagedTrailer(Exception):
    """A gzip member's trailer (the CRC32 and length of all its data) does not match what was inflated."""

    def __init__(self, member: int):
        super().__init__(member)
        self.member = member


# What zlib says when the inflated data is whole but a member's trailer disagrees with it.
_TRAILER_ERRORS = ("incorrect data check", "incorrect length check")


def _pieces(path: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed if it is GZIP (every member of a multi-member file), in pieces.

    zlib checks each member's CRC32 and length itself: a mismatch raises DamagedTrailer (the records may
    be intact, the file is not); a stream that ends early raises EOFError.
    """
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            handle.seek(0)
            while piece := handle.read(PIECE):
                yield piece
            return
        handle.seek(0)
        inflater, pending, member = zlib.decompressobj(wbits=31), b"", 0
        while True:
            if not pending and not (pending := handle.read(CHUNK)):
                if inflater.eof:
                    return
                raise EOFError("the compressed stream ends early")
            if inflater.eof:  # another gzip member follows
                inflater, member = zlib.decompressobj(wbits=31), member + 1
            try:
                piece = inflater.decompress(pending, PIECE)
            except zlib.error as err:
                if any(what in str(err) for what in _TRAILER_ERRORS):
                    raise DamagedTrailer(member) from None
                raise
            pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if piece:
                yield piece


def iter_records(path: str | Path, prefetch: int = 4) -> Iterator[bytes]:
    """Yield each record's bytes after checking both CRCs; corruption is a UserError naming the record.

    A reader thread decompresses up to `prefetch` pieces ahead, so decompression overlaps the caller's
    decoding on a second core; memory stays bounded (prefetch × PIECE). prefetch 0 reads inline.
    """
    path = Path(path)
    if prefetch <= 0:
        yield from _records(path, _pieces(path))
        return
    queue: Queue = Queue(maxsize=prefetch)
    stop = threading.Event()

    def produce():
        try:
            for piece in _pieces(path):
                while not stop.is_set():
                    try:
                        queue.put(piece, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_DONE)
        except BaseException as err:  # handed to the consumer, which raises it in its own thread
            queue.put(err)

    def received() -> Iterator[bytes]:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    thread = threading.Thread(target=produce, name="tfrecord-reader", daemon=True)
    thread.start()
    try:
        yield from _records(path, received())
    finally:
        stop.set()
        thread.join()


_DONE = object()


def _records(path: Path, pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Split the byte stream into records, checking the length's and the data's masked CRC32C."""
    buffer, pos, index = b"", 0, 0

    def fill(end: int) -> bool:
        """Make buffer[pos:end] available (moving pos to 0); False at the end of the stream."""
        nonlocal buffer, pos
        while len(buffer) < end:
            try:
                piece = next(pieces, None)
            except DamagedTrailer as damaged:
                raise UserError(f"{path}: the gzip trailer of member {damaged.member} (the CRC32 and length of its "
                                "data) does not match the inflated data; the file is damaged at its end: re-download "
                                "it (delete it and rerun its download rule)") from None
            except (EOFError, zlib.error, OSError) as err:
                raise _corrupt(path, index, f"broken compressed stream ({err})") from None
            if piece is None:
                return False
            buffer, end, pos = buffer[pos:] + piece, end - pos, 0
        return True

    while True:
        if not fill(pos + 12):
            if pos == len(buffer):
                return
            raise _corrupt(path, index, "truncated header")
        length, length_crc = struct.unpack_from("<QI", buffer, pos)
        if masked_crc(buffer[pos:pos + 8]) != length_crc:
            raise _corrupt(path, index, "length CRC mismatch")
        if not fill(pos + 16 + length):
            raise _corrupt(path, index, "truncated data")
        start = pos + 12
        data = buffer[start:start + length]
        if masked_crc(data) != struct.unpack_from("<I", buffer, start + length)[0]:
            raise _corrupt(path, index, "data CRC mismatch")
        yield data
        pos, index = start + length + 4, index + 1


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


def feature_spans(record: bytes) -> dict[str, tuple[int, int, int]]:
    """Feature name -> (list kind, start, end): where the list message's bytes lie in the record."""
    buf = memoryview(record)
    spans: dict[str, tuple[int, int, int]] = {}
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
                spans[key] = (kind, lo, hi)
    return spans


def parse_example(record: bytes) -> dict[str, tuple[int, memoryview]]:
    """Feature name -> (list kind, the list message's bytes). Values are decoded on demand."""
    buf = memoryview(record)
    return {name: (kind, buf[lo:hi]) for name, (kind, lo, hi) in feature_spans(record).items()}


class FixedLayout:
    """Decodes many records at once when they are serialized alike, as a fixed-size dataset's are.

    Learned from one record: every byte that is not a value (tags, lengths, keys, features not asked
    for) is kept as the skeleton. A record of the same length with the same skeleton parses exactly like
    the first, so its values lie at the same offsets, and a batch of such records is one (B, length)
    array from which each feature is a strided slice: no Python work per record beyond comparing a few
    short byte strings. BytesLists must hold one single-byte string per element (`0x0A 0x01 b` runs);
    that is checked for the whole batch at once. FloatLists must be packed.
    """

    def __init__(self, length: int, skeleton: list[tuple[int, bytes]], byte_lists: dict, float_lists: dict):
        self.length, self.skeleton = length, skeleton
        self.byte_lists, self.float_lists = byte_lists, float_lists

    @classmethod
    def learn(cls, record: bytes, byte_features: dict[str, int], float_features: dict[str, int]):
        """The layout of `record`, or None if it cannot have one (a missing feature, a wrong size, an
        unpacked FloatList). byte_features / float_features: name -> number of values."""
        spans = feature_spans(record)
        values, byte_lists, float_lists = [], {}, {}
        for name, n in byte_features.items():
            if name not in spans or spans[name][0] != 1 or spans[name][2] - spans[name][1] != 3 * n:
                return None
            byte_lists[name] = spans[name][1:]
            values.append(spans[name][1:])
        buf = memoryview(record)
        for name, n in float_features.items():
            if name not in spans or spans[name][0] != 2:
                return None
            fields = list(_fields(buf, *spans[name][1:]))
            if len(fields) != 1 or fields[0][:2] != (1, 2) or fields[0][3] - fields[0][2] != 4 * n:
                return None  # not one packed run of n floats
            float_lists[name] = fields[0][2:]
            values.append(fields[0][2:])
        skeleton, pos = [], 0
        for lo, hi in sorted(values):
            if lo > pos:
                skeleton.append((pos, record[pos:lo]))
            pos = hi
        if pos < len(record):
            skeleton.append((pos, record[pos:]))
        return cls(len(record), skeleton, byte_lists, float_lists)

    def matches(self, record: bytes) -> bool:
        return len(record) == self.length and all(
            record[at:at + len(expected)] == expected for at, expected in self.skeleton)

    def decode(self, records: list[bytes]) -> dict[str, np.ndarray] | None:
        """Feature name -> (B, n) uint8 (BytesLists) or float32 (FloatLists) for records that all match;
        None if some BytesList does not hold single-byte strings (decode those records one by one)."""
        joined = b"".join(records)
        rows = np.frombuffer(joined, np.uint8).reshape(len(records), self.length)
        out = {}
        for name, (lo, hi) in self.byte_lists.items():
            values = one_byte_strings(joined, lo, (hi - lo) // 3, len(records), self.length)
            if values is None:
                return None
            out[name] = values
        for name, (lo, hi) in self.float_lists.items():
            out[name] = np.ascontiguousarray(rows[:, lo:hi]).view("<f4")
        return out


def one_byte_strings(buffer, offset: int, n: int, rows: int = 1, row_stride: int = 0) -> np.ndarray | None:
    """The bytes b of n consecutive `0x0A 0x01 b` runs (a BytesList of one-byte strings) starting at
    `offset` in each of `rows` rows of `buffer`, as a (rows, n) uint8 view; None if any run differs.

    Each run's tag and length are checked as one little-endian uint16 (0x010A) through a stride-3 view:
    one numpy pass, which releases the GIL, so the reader thread keeps decompressing meanwhile.
    """
    if n == 0:
        return np.zeros((rows, 0), np.uint8)
    tags = np.ndarray((rows, n), "<u2", buffer, offset, (row_stride, 3))
    if not (tags == 0x010A).all():
        return None
    return np.ndarray((rows, n), np.uint8, buffer, offset + 2, (row_stride, 3))


def bytes_list_as_uint8(payload: memoryview) -> np.ndarray:
    """A BytesList of single-byte strings as uint8 (N,); falls back to a generic decode otherwise."""
    n, rest = divmod(len(payload), 3)
    values = None if rest else one_byte_strings(payload, 0, n)
    if values is not None:
        return np.ascontiguousarray(values[0])
    return np.frombuffer(b"".join(bytes_list(payload)), dtype=np.uint8)


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
