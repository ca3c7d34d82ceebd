"""Making one split of one configured dataset: the registry of dataset kinds.

Each kind is either *generated* (offline, seeded) or *converted* from downloaded sources. Splits of a
finite source take consecutive rows in the order of `sizes` (after a seeded shuffle where the source
is ordered by class); a size of 0 takes all rows that remain. Generated random scenes use one seed
stream per split, derived from the dataset seed and the split name.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from structae.data import dsprites_npz, h5, mnist, multi_object, shapes, sprites
from structae.data.download import sha256
from structae.data.info import DataInfo
from structae.data.sources import SOURCES
from structae.errors import UserError
from structae.options import from_mapping

OPTIONS = {
    "shapes": shapes.ShapesOptions,
    "mnist_shape": shapes.MnistShapeOptions,
    "dsprites": sprites.DSpritesOptions,
    "multi_dsprites": sprites.MultiDSpritesOptions,
    "mnist_subset": mnist.MnistOptions,
    "mnist_idx": mnist.MnistOptions,
    "multi_object": multi_object.MultiObjectOptions,
    "dsprites_npz": dsprites_npz.NpzOptions,
}
# Kinds whose every split is a fresh draw of random scenes from its seed: another dataset seed gives new
# scenes of the same distribution (evaluate.fresh_test_seed). The other generated kinds are fixed subsets.
SCENE_GENERATORS = ("shapes", "mnist_shape", "multi_dsprites")
OFFLINE_TEST_DIGITS = 1000  # MNIST&Shape's test digits among the offline 5,000 (100 per class on average)
MNIST_FILES = ("mnist_train_images", "mnist_train_labels", "mnist_test_images", "mnist_test_labels")


def options(spec: dict, name: str):
    return from_mapping(OPTIONS[spec["kind"]], spec.get("options"), f"datasets.{name}.options")


def sources_of(spec: dict) -> list[str]:
    """Names (in structae.data.sources) of the files a dataset is converted from; [] if generated."""
    kind = spec["kind"]
    if kind == "multi_object":
        return [multi_object.MultiObjectOptions(**_raw_options(spec)).variant]
    if kind == "dsprites_npz":
        return ["dsprites"]
    if kind == "mnist_idx" or (kind == "mnist_shape" and spec.get("options", {}).get("digits") == "idx"):
        return list(MNIST_FILES)
    return []


def _raw_options(spec: dict) -> dict:
    return {k: v for k, v in spec.get("options", {}).items() if k == "variant"}


def raw_path(source: str) -> str:
    return f"data/raw/{source}/{SOURCES[source].file}"


def _rows(sizes: dict, split: str, available: int | None = None) -> slice:
    """The rows of `split` among consecutive splits in the order of `sizes` (0 = all that remain)."""
    start = 0
    for name, size in sizes.items():
        if name == split:
            if size == 0:
                return slice(start, available)
            return slice(start, start + size)
        if size == 0:
            raise UserError(f"sizes.{name} is 0 (all that remain) but is not the last split")
        start += size
    raise UserError(f"split '{split}' is not in the dataset's sizes ({', '.join(sizes)})")


def _split_seed(seed: int, split: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(split.encode())])


def _generated_size(spec: dict, name: str, split: str) -> int:
    size = spec["sizes"][split]
    if size == 0:
        raise UserError(f"datasets.{name}.sizes.{split}: a generated dataset needs a size > 0")
    return size


def batches(spec: dict, name: str, split: str, raw: list[Path]) -> Iterator[dict]:
    """The rows of one split of dataset `name`, in batches of {image, mask, factors}."""
    kind, opts = spec["kind"], options(spec, name)
    if split not in spec["sizes"]:
        raise UserError(f"datasets.{name}: no split '{split}'; its splits are {', '.join(spec['sizes'])}")
    seed = _split_seed(spec["seed"], split)
    if kind == "shapes":
        return shapes.generate_shapes(opts, _generated_size(spec, name, split), seed)
    if kind == "multi_dsprites":
        return sprites.generate_multi_dsprites(opts, _generated_size(spec, name, split), seed)
    if kind == "mnist_shape":
        digits, rows = digit_pool(opts, split, raw)
        return shapes.generate_mnist_shape(opts, _generated_size(spec, name, split), seed, digits, rows)
    if kind == "dsprites":
        return sprites.generate_dsprites(opts, _rows(spec["sizes"], split, sprites.dsprites_count(opts)))
    if kind == "mnist_subset":
        images, labels = mnist.offline_subset()
        order = np.random.default_rng(spec["seed"]).permutation(len(images))  # the csv is sorted by class
        rows = order[_rows(spec["sizes"], split, len(images))]
        return mnist.digit_batches(images[rows], labels[rows], opts)
    if kind == "mnist_idx":
        return _mnist_idx(spec, split, raw, opts)
    if kind == "multi_object":
        return multi_object.convert(raw[0], opts, _rows(spec["sizes"], split))
    if kind == "dsprites_npz":
        return dsprites_npz.convert(raw[0], _rows(spec["sizes"], split))
    raise AssertionError(kind)


def digit_pool(options: shapes.MnistShapeOptions, split: str, raw: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The digits (M, 28, 28) one split of MNIST&Shape draws from, and their rows (M,) in their source. The test
    split's digits are never drawn by another split: from the idx files, test takes the t10k digits and the
    others the training file's; offline, test takes a fixed fifth of the 5,000 and the others the rest."""
    if options.digits == "idx":
        images = mnist.read_idx(raw[2] if split == "test" else raw[0], mnist.IMAGES_MAGIC)
        return images, np.arange(len(images))
    images, _ = mnist.offline_subset()
    order = np.random.default_rng(0).permutation(len(images))  # the csv is sorted by class: mix before cutting
    rows = order[:OFFLINE_TEST_DIGITS] if split == "test" else order[OFFLINE_TEST_DIGITS:]
    return images[rows], rows


def _mnist_idx(spec: dict, split: str, raw: list[Path], opts) -> Iterator[dict]:
    """`test` reads the t10k files; every other split takes consecutive rows of the train files."""
    train_images, train_labels, test_images, test_labels = raw
    if split == "test":
        images, labels = mnist.read_idx(test_images, 2051), mnist.read_idx(test_labels, 2049)
        rows = slice(0, spec["sizes"]["test"] or None)
    else:
        images, labels = mnist.read_idx(train_images, 2051), mnist.read_idx(train_labels, 2049)
        rows = _rows({k: v for k, v in spec["sizes"].items() if k != "test"}, split, len(images))
    return mnist.digit_batches(images[rows], labels[rows].astype(np.int64), opts)


def describe(spec: dict, name: str) -> DataInfo:
    """The DataInfo a dataset's files will give, known from its config alone (no data needed): what the
    one-step tests and benchmarks of paper-scale configs build models from. Factors are listed only
    where training reads them (MNIST's class label)."""
    kind, opts = spec["kind"], options(spec, name)
    n = sum(spec["sizes"].values())
    if kind in ("shapes", "mnist_shape"):
        objects = len(opts.shapes) if kind == "shapes" else 2
        return DataInfo(1, shapes.IMAGE_SIZE, shapes.IMAGE_SIZE, n, objects, ())
    if kind in ("dsprites", "dsprites_npz"):
        return DataInfo(1, sprites.IMAGE_SIZE, sprites.IMAGE_SIZE, n, 1, ())
    if kind == "multi_dsprites":
        return DataInfo(3, opts.image_size, opts.image_size, n, opts.max_objects, ())
    if kind in ("mnist_subset", "mnist_idx"):
        return DataInfo(1, mnist.IMAGE_SIZE, mnist.IMAGE_SIZE, n, 1, ("label",))
    if kind == "multi_object":
        fmt = multi_object.FORMATS[opts.variant]
        height, width = fmt.image_size
        if opts.crop:
            height, width = opts.crop[1] - opts.crop[0], opts.crop[3] - opts.crop[2]
        if opts.resize:
            height = width = opts.resize
        return DataInfo(3, height, width, n, opts.max_objects or fmt.max_entities - 1, ())
    raise AssertionError(kind)


def make_split(config: dict, name: str, split: str, out: str | Path, raw: list[str | Path] = ()) -> int:
    """Write data/processed/{name}/{split}.h5 (atomically); return its number of rows."""
    try:
        spec = config["datasets"][name]
    except KeyError:
        raise UserError(f"dataset '{name}' is not in the config; known: {', '.join(config['datasets'])}") from None
    raw = [Path(p) for p in raw]
    for path in raw:
        if not path.is_file():
            raise UserError(f"source file {path} is missing; run `snakemake {path}` to download it")
    attrs = {"dataset": name, "split": split, "kind": spec["kind"], "options": spec.get("options", {}),
             "source_format": "generated" if not raw else spec["kind"],
             "source_sha256": json.dumps({p.name: sha256(p) for p in raw})}
    return h5.write_split(out, _all_of(batches(spec, name, split, raw), spec["sizes"].get(split, 0), name, split),
                          attrs)


def _all_of(rows: Iterator[dict], wanted: int, name: str, split: str) -> Iterator[dict]:
    """`rows`, refusing (and so leaving no file) when a finite source holds fewer than the `wanted` images."""
    count = 0
    for batch in rows:
        count += len(batch["image"])
        yield batch
    if wanted and count < wanted:
        raise UserError(f"datasets.{name}.sizes.{split}: {wanted} images asked for, but the source has only {count} "
                        "for this split (after the splits listed before it); lower the size, or set it to 0 for "
                        "all that remain")
