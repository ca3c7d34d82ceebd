"""DeepMind's multi-object datasets (Kabra et al. 2019), GZIP TFRecords of tf.train.Example, to HDF5.

The formats, written as data from the official readers (deepmind/multi_object_datasets). `image` and
`mask` are BytesLists of one single-byte string per element; `image` is (H, W, C). The canonical mask
layout differs: (H, W, K, 1) in multi_dsprites, (K, H, W, 1) in the other three, with values 0/255 and
entity 0 the background. Every entity's pixels are disjoint, so the label map is the argmax over K.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from structae.data import tfrecord

BATCH = 256  # rows per decoded batch
RAW_BYTES = 32 << 20  # most record bytes decoded at once


@dataclass(frozen=True)
class Format:
    file: str  # the published file name
    image_size: tuple[int, int]
    max_entities: int
    mask_layout: str  # "HWK" or "KHW"
    floats: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per-entity float features
    strings: tuple[str, ...] = ()  # per-entity string features (CLEVR)


def _sprites(k: int) -> dict[str, tuple[int, ...]]:
    return {"x": (k,), "y": (k,), "shape": (k,), "scale": (k,), "orientation": (k,), "color": (k, 3),
            "visibility": (k,)}


FORMATS = {
    "multi_dsprites_colored_on_grayscale": Format(
        "multi_dsprites_colored_on_grayscale.tfrecords", (64, 64), 6, "HWK", _sprites(6)),
    "multi_dsprites_colored_on_colored": Format(
        "multi_dsprites_colored_on_colored.tfrecords", (64, 64), 5, "HWK", _sprites(5)),
    "multi_dsprites_binarized": Format(
        "multi_dsprites_binarized.tfrecords", (64, 64), 4, "HWK", _sprites(4)),
    "tetrominoes": Format(
        "tetrominoes_train.tfrecords", (35, 35), 4, "KHW",
        {"x": (4,), "y": (4,), "shape": (4,), "color": (4, 3), "visibility": (4,)}),
    "objects_room": Format("objects_room_train.tfrecords", (64, 64), 7, "KHW"),
    "clevr_with_masks": Format(
        "clevr_with_masks_train.tfrecords", (240, 320), 11, "KHW",
        {"x": (11,), "y": (11,), "z": (11,), "rotation": (11,), "pixel_coords": (11, 3), "visibility": (11,)},
        ("size", "material", "shape", "color")),
}


@dataclass
class MultiObjectOptions:
    """`variant` names a FORMATS entry; crop/resize/max_objects reproduce IODINE's CLEVR6 pipeline."""

    variant: str = "multi_dsprites_colored_on_grayscale"
    crop: tuple[int, int, int, int] | None = None  # (row0, row1, col0, col1), e.g. (29, 221, 64, 256)
    resize: int | None = None  # square side after cropping, e.g. 128
    max_objects: int | None = None  # keep scenes with at most this many visible objects (CLEVR6: 6)

    def __post_init__(self):
        if self.variant not in FORMATS:
            raise ValueError(f"variant must be one of {', '.join(FORMATS)}")
        if self.crop is not None and len(self.crop) != 4:
            raise ValueError("crop must be [row0, row1, col0, col1]")


def decode(record: bytes, fmt: Format) -> dict:
    """One record -> image (H, W, 3) uint8, mask (H, W) uint8 labels, factors name -> (K, ...)."""
    features = tfrecord.parse_example(record)
    h, w = fmt.image_size
    k = fmt.max_entities
    image = tfrecord.bytes_list_as_uint8(features["image"][1]).reshape(h, w, 3)
    masks = tfrecord.bytes_list_as_uint8(features["mask"][1])
    masks = masks.reshape(h, w, k).transpose(2, 0, 1) if fmt.mask_layout == "HWK" else masks.reshape(k, h, w)
    factors = {name: tfrecord.float_list(features[name][1]).reshape(shape) for name, shape in fmt.floats.items()}
    for name in fmt.strings:
        factors[name] = np.array(tfrecord.bytes_list(features[name][1]), dtype="S16")
    return {"image": image, "mask": _labels(masks), "factors": factors}


def _labels(masks: np.ndarray) -> np.ndarray:
    """(..., K, H, W) disjoint 0/255 masks -> (..., H, W) entity index; a sum of K plane passes beats argmax."""
    labels = np.zeros(masks.shape[:-3] + masks.shape[-2:], np.uint8)
    for entity in range(1, masks.shape[-3]):
        labels += (masks[..., entity, :, :] >> 7) * np.uint8(entity)
    return labels


def visible_objects(record: bytes) -> int:
    """Visible non-background entities, read from `visibility` alone (for the CLEVR6 filter)."""
    visibility = tfrecord.float_list(tfrecord.parse_example(record)["visibility"][1])
    return int((visibility[1:] > 0).sum())


def _resize(image: np.ndarray, mask: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear for images (as IODINE's tf.image.resize), nearest for label maps. (B, H, W, C), (B, H, W)."""
    import torch
    import torch.nn.functional as F

    pixels = torch.from_numpy(image).permute(0, 3, 1, 2).float()
    pixels = F.interpolate(pixels, size=(side, side), mode="bilinear", align_corners=False)
    labels = F.interpolate(torch.from_numpy(mask)[:, None].float(), size=(side, side), mode="nearest")
    return (pixels.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy(), labels[:, 0].byte().numpy())


def _layout_for(record: bytes, fmt: Format) -> tfrecord.FixedLayout | None:
    """The fast path for fixed-size formats; CLEVR's string lists vary in length, so it has none."""
    if fmt.strings:
        return None
    h, w = fmt.image_size
    floats = {name: int(np.prod(shape)) for name, shape in fmt.floats.items()}
    return tfrecord.FixedLayout.learn(record, {"image": h * w * 3, "mask": h * w * fmt.max_entities}, floats)


def _decode_batch(records: list[bytes], fmt: Format, layout: tfrecord.FixedLayout | None) -> dict:
    """Records -> image (B, H, W, 3), mask (B, H, W), factors name -> (B, ...): those that match the
    layout all at once, any others one by one, in record order."""
    h, w = fmt.image_size
    k = fmt.max_entities
    fast = [layout is not None and layout.matches(r) for r in records]
    values = layout.decode([r for r, ok in zip(records, fast, strict=True) if ok]) if any(fast) else None
    if values is None:
        fast = [False] * len(records)
    image = np.empty((len(records), h, w, 3), np.uint8)
    mask = np.empty((len(records), h, w), np.uint8)
    factors: dict[str, np.ndarray] = {}
    rows = np.flatnonzero(fast)
    if len(rows):
        image[rows] = values["image"].reshape(-1, h, w, 3)
        masks = values["mask"].reshape(-1, h, w, k)
        mask[rows] = _labels(np.moveaxis(masks, -1, 1) if fmt.mask_layout == "HWK" else masks.reshape(-1, k, h, w))
        for name, shape in fmt.floats.items():
            factors[name] = np.empty((len(records), *shape), np.float32)
            factors[name][rows] = values[name].reshape(-1, *shape)
    for i in np.flatnonzero(~np.array(fast)):
        row = decode(records[i], fmt)
        image[i], mask[i] = row["image"], row["mask"]
        for name, value in row["factors"].items():
            if name not in factors:
                factors[name] = np.empty((len(records), *value.shape), value.dtype)
            factors[name][i] = value
    return {"image": image, "mask": mask, "factors": factors}


def _finish(parts: list[dict], options: MultiObjectOptions) -> dict:
    """Join decoded parts into one batch, then crop and resize."""
    def join(arrays):  # one part (every fixed-size format) needs no copy
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    image, mask = join([p["image"] for p in parts]), join([p["mask"] for p in parts])
    factors = {name: join([p["factors"][name] for p in parts]) for name in parts[0]["factors"]}
    if options.crop is not None:
        r0, r1, c0, c1 = options.crop
        image, mask = image[:, r0:r1, c0:c1], mask[:, r0:r1, c0:c1]
    if options.resize is not None:
        image, mask = _resize(np.ascontiguousarray(image), np.ascontiguousarray(mask), options.resize)
    return {"image": image, "mask": mask, "factors": factors}


class _GroupDecoder:
    """Decodes groups of records with the layout learned from the first record it is given."""

    def __init__(self, fmt: Format):
        self.fmt, self.layout, self.learned = fmt, None, False

    def __call__(self, records: list[bytes]) -> dict:
        if not self.learned:
            self.layout, self.learned = _layout_for(records[0], self.fmt), True
        return _decode_batch(records, self.fmt, self.layout)


def convert(path: Path, options: MultiObjectOptions, rows: slice) -> Iterator[dict]:
    """Batches of the kept records rows.start..rows.stop-1 (after the max_objects filter), in file order.

    Records are decoded in groups of at most BATCH records and RAW_BYTES bytes (CLEVR's are 3 MB each),
    and the decoded rows handed on BATCH at a time.
    """
    decode_group = _GroupDecoder(FORMATS[options.variant])
    kept, group, group_bytes, parts, decoded = 0, [], 0, [], 0
    for record in tfrecord.iter_records(path):
        if options.max_objects is not None and visible_objects(record) > options.max_objects:
            continue
        if rows.stop is not None and kept >= rows.stop:
            break  # later records belong to later splits; nothing more to verify for this one
        if kept >= rows.start:
            group.append(record)
            group_bytes += len(record)
            if len(group) == BATCH or group_bytes >= RAW_BYTES:
                parts.append(decode_group(group))
                decoded += len(group)
                group, group_bytes = [], 0
                if decoded >= BATCH:
                    yield _finish(parts, options)
                    parts, decoded = [], 0
        kept += 1
    if group:
        parts.append(decode_group(group))
    if parts:
        yield _finish(parts, options)
