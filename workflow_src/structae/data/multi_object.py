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

BATCH = 256


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
    """(K, H, W) disjoint 0/255 masks -> (H, W) entity index; a sum of K plane passes beats argmax."""
    labels = np.zeros(masks.shape[1:], np.uint8)
    for entity in range(1, len(masks)):
        labels += (masks[entity] >> 7) * np.uint8(entity)
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


def _stack(rows: list[dict], options: MultiObjectOptions) -> dict:
    image = np.stack([r["image"] for r in rows])
    mask = np.stack([r["mask"] for r in rows])
    if options.crop is not None:
        r0, r1, c0, c1 = options.crop
        image, mask = image[:, r0:r1, c0:c1], mask[:, r0:r1, c0:c1]
    if options.resize is not None:
        image, mask = _resize(np.ascontiguousarray(image), np.ascontiguousarray(mask), options.resize)
    factors = {name: np.stack([r["factors"][name] for r in rows]) for name in rows[0]["factors"]}
    return {"image": image, "mask": mask, "factors": factors}


def convert(path: Path, options: MultiObjectOptions, rows: slice) -> Iterator[dict]:
    """Batches of the kept records rows.start..rows.stop-1 (after the max_objects filter), in file order."""
    fmt = FORMATS[options.variant]
    kept, batch = 0, []
    for record in tfrecord.iter_records(path):
        if options.max_objects is not None and visible_objects(record) > options.max_objects:
            continue
        if rows.stop is not None and kept >= rows.stop:
            break  # later records belong to later splits; nothing more to verify for this one
        if kept >= rows.start:
            batch.append(decode(record, fmt))
            if len(batch) == BATCH:
                yield _stack(batch, options)
                batch = []
        kept += 1
    if batch:
        yield _stack(batch, options)
