"""Generators, converters, the HDF5 schema, downloads and recombination splits."""

import dataclasses
import gzip
import hashlib
import struct
import zipfile
import zlib

import h5py
import numpy as np
import pytest
import torch

from conftest import REPO
from structae.config import load_config
from structae.data import h5, loader, splits, sprites
from structae.data.datasets import make_split
from structae.data.download import download
from structae.data.sources import SOURCES
from structae.errors import UserError
from structae.files import temps_of

KINDS = {
    "shapes": ({"shapes": ["square", "triangle_up", "triangle_down"]}, (32, 32, 1), 3),
    "shapes_colored": ({"shapes": ["square", "triangle_up"], "colored": True}, (32, 32, 3), 2),
    "mnist_shape": ({}, (32, 32, 1), 2),
    "multi_dsprites": ({"max_objects": 3}, (64, 64, 3), 3),
    "dsprites": ({"scale_step": 6, "orientation_step": 20, "position_step": 16}, (64, 64, 1), 1),
    "mnist_subset": ({}, (28, 28, 1), 1),
}


@pytest.mark.parametrize("kind", KINDS)
def test_generated_split_follows_the_schema(tmp_path, kind):
    options, shape, max_label = KINDS[kind]
    spec = {"kind": kind.removesuffix("_colored"), "options": options,
            "sizes": {"train": 12, "test": 0 if kind == "dsprites" else 5}, "seed": 3}
    out = tmp_path / "train.h5"
    rows = make_split({"datasets": {"d": spec}}, "d", "train", out)
    with h5.open_split(out) as file:
        assert file["image"].shape == (rows, *shape) and file["image"].dtype == np.uint8
        assert file["mask"].shape == (rows, *shape[:2]) and file["mask"].dtype == np.uint8
        assert file["image"].compression == "gzip" and file["image"].chunks[0] <= h5.CHUNK_IMAGES
        labels = np.unique(file["mask"][:])
        assert labels.max() <= max_label or h5.IGNORE_LABEL in labels
        assert file.attrs["dataset"] == "d" and file.attrs["split"] == "train"
        assert file.attrs["converter_version"] == h5.CONVERTER_VERSION
    assert rows == 12


def test_split_writer_stores_what_it_was_given_in_batches_of_any_size(tmp_path):
    rng = np.random.default_rng(7)
    sizes = [64, 128, 30, 64, 7]  # whole chunks, then rows that leave later batches off chunk boundaries
    batches = [{"image": rng.integers(0, 4, size=(n, 8, 8, 3), dtype=np.uint8),
                "mask": rng.integers(0, 3, size=(n, 8, 8), dtype=np.uint8),
                "factors": {"x": rng.random((n, 2)).astype(np.float32)}} for n in sizes]
    assert h5.write_split(tmp_path / "s.h5", batches, {"dataset": "d"}) == sum(sizes)
    with h5py.File(tmp_path / "s.h5") as file:
        for name in ("image", "mask"):
            np.testing.assert_array_equal(file[name][:], np.concatenate([b[name] for b in batches]))
            assert file[name].compression == "gzip" and file[name].chunks[0] == h5.CHUNK_IMAGES
            _, stored = file[name].id.read_direct_chunk((64,) + (0,) * (file[name].ndim - 1))
            np.testing.assert_array_equal(np.frombuffer(zlib.decompress(stored), np.uint8),
                                          batches[1][name][:64].ravel())  # standard deflate on disk
        np.testing.assert_array_equal(file["factors/x"][:], np.concatenate([b["factors"]["x"] for b in batches]))


def test_coloured_shapes_draw_each_object_in_one_colour():
    from structae.data.shapes import ShapesOptions, generate_shapes

    rgb = next(generate_shapes(ShapesOptions(colored=True), 64, 5))
    assert ((rgb["image"].max(-1) > 0) == (rgb["mask"] > 0)).all()  # drawn exactly where the mask says
    for image, mask in zip(rgb["image"], rgb["mask"], strict=True):
        for label in (1, 2):
            colours = np.unique(image[(mask == label)], axis=0)
            assert len(colours) == 1 and colours.min() >= 0.25 * 255 - 1  # one colour, none near black


def test_generators_are_deterministic_and_splits_differ(tmp_path):
    spec = {"kind": "multi_dsprites", "options": {}, "sizes": {"train": 8, "test": 8}, "seed": 0}
    a, b, c = (tmp_path / n for n in ("a.h5", "b.h5", "c.h5"))
    make_split({"datasets": {"d": spec}}, "d", "train", a)
    make_split({"datasets": {"d": spec}}, "d", "train", b)
    make_split({"datasets": {"d": spec}}, "d", "test", c)
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        np.testing.assert_array_equal(fa["image"][:], fb["image"][:])
        assert not np.array_equal(fa["image"][:], fc["image"][:])
        visible = fa["factors/visibility"][:]
        np.testing.assert_array_equal(visible[:, 0], 1)  # the background is always visible


def test_shapes_mark_overlaps_ignored(tmp_path):
    spec = {"kind": "shapes", "options": {}, "sizes": {"train": 300}, "seed": 1}
    out = tmp_path / "t.h5"
    make_split({"datasets": {"d": spec}}, "d", "train", out)
    with h5py.File(out) as file:
        image, mask = file["image"][..., 0], file["mask"][:]
    assert (mask == h5.IGNORE_LABEL).any()
    np.testing.assert_array_equal(image > 0, mask > 0)  # every lit pixel has a label, and only those


def test_mnist_subset_splits_are_disjoint_and_count_right(tmp_path):
    spec = {"kind": "mnist_subset", "options": {}, "sizes": {"train": 300, "val": 100, "test": 0}, "seed": 0}
    images = {}
    for split, n in (("train", 300), ("val", 100), ("test", 4600)):
        out = tmp_path / f"{split}.h5"
        assert make_split({"datasets": {"m": spec}}, "m", split, out) == n
        with h5py.File(out) as file:
            images[split] = {hashlib.sha1(x.tobytes()).hexdigest() for x in file["image"][:]}
    assert not images["train"] & images["test"] and not images["train"] & images["val"]


def _idx(path, magic, array):
    header = struct.pack(">ii", magic, len(array)) + b"".join(struct.pack(">i", d) for d in array.shape[1:])
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_mnist_idx_files_convert(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 256, (10, 28, 28))
    files = [tmp_path / n for n in ("ti.gz", "tl.gz", "ei.gz", "el.gz")]
    _idx(files[0], 2051, train), _idx(files[1], 2049, np.arange(30) % 10)
    _idx(files[2], 2051, test), _idx(files[3], 2049, np.arange(10))
    spec = {"kind": "mnist_idx", "options": {}, "sizes": {"train": 20, "val": 0, "test": 0}, "seed": 0}
    for split, expected in (("train", train[:20]), ("val", train[20:]), ("test", test)):
        out = tmp_path / f"{split}.h5"
        make_split({"datasets": {"m": spec}}, "m", split, out, files)
        with h5py.File(out) as file:
            np.testing.assert_array_equal(file["image"][..., 0], expected)
    _idx(files[1], 2051, np.arange(30))  # wrong magic for a label file
    with pytest.raises(UserError, match="not an idx file with magic 2049"):
        make_split({"datasets": {"m": spec}}, "m", "train", tmp_path / "bad.h5", files)


def _digit_hashes(path, pool: np.ndarray) -> set[str]:
    """The sha1 of every digit crop (28×28, from its source) that the scenes of one split hold."""
    with h5py.File(path) as file:
        rows = file["factors/digit"][:]
        assert len(rows) == len(file["image"])  # one digit per scene
    return {hashlib.sha1(pool[row].tobytes()).hexdigest() for row in rows}


def _no_test_digit_in_training(tmp_path, spec: dict, raw: list, pools: dict) -> None:
    hashes = {}
    for split in ("train", "val", "test"):
        out = tmp_path / f"{split}.h5"
        make_split({"datasets": {"m": spec}}, "m", split, out, raw)
        hashes[split] = _digit_hashes(out, pools[split])
    assert hashes["test"] and not hashes["test"] & (hashes["train"] | hashes["val"])


def test_mnist_shape_test_digits_never_appear_in_training_offline(tmp_path):
    """Embedded: every split once drew from all 5,000 offline digits, so test scenes held trained digits."""
    from structae.data.mnist import offline_subset

    pool = offline_subset()[0]
    spec = {"kind": "mnist_shape", "sizes": {"train": 2000, "val": 200, "test": 500}, "seed": 0}
    _no_test_digit_in_training(tmp_path, spec, [], {"train": pool, "val": pool, "test": pool})


def test_mnist_shape_test_digits_never_appear_in_training_idx(tmp_path):
    """Paper scale: train and val draw from the MNIST training file, test from t10k."""
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (40, 28, 28)), rng.integers(0, 256, (15, 28, 28))
    files = [tmp_path / n for n in ("ti.gz", "tl.gz", "ei.gz", "el.gz")]
    _idx(files[0], 2051, train), _idx(files[1], 2049, np.arange(40) % 10)
    _idx(files[2], 2051, test), _idx(files[3], 2049, np.arange(15) % 10)
    spec = {"kind": "mnist_shape", "options": {"digits": "idx"}, "sizes": {"train": 300, "val": 50, "test": 100},
            "seed": 0}
    pools = {"train": train.astype(np.uint8), "val": train.astype(np.uint8), "test": test.astype(np.uint8)}
    _no_test_digit_in_training(tmp_path, spec, files, pools)


def test_dsprites_npz_streams_in_the_original_layout(tmp_path):
    opts = sprites.DSpritesOptions(shapes=("square",), scale_step=3, orientation_step=20, position_step=8)
    classes = sprites.dsprites_classes(opts)
    values = np.stack([sprites.LATENT_VALUES[i][classes[:, i]] for i in range(6)], axis=1)
    imgs = np.random.default_rng(0).integers(0, 2, (len(classes), 64, 64), dtype=np.uint8)
    npz = tmp_path / "dsprites.npz"
    with zipfile.ZipFile(npz, "w") as archive:
        for name, array in (("imgs", imgs), ("latents_classes", classes), ("latents_values", values)):
            with archive.open(f"{name}.npy", "w") as handle:
                np.lib.format.write_array(handle, array)
    spec = {"kind": "dsprites_npz", "options": {}, "sizes": {"train": 10, "test": 0}, "seed": 0}
    out = tmp_path / "test.h5"
    make_split({"datasets": {"d": spec}}, "d", "test", out, [npz])
    with h5py.File(out) as file:
        np.testing.assert_array_equal(file["mask"][:], imgs[10:])
        np.testing.assert_array_equal(file["factors/latents_classes"][:], classes[10:])


def test_dsprites_grid_values_match_the_original_npz():
    classes = sprites.dsprites_classes(sprites.DSpritesOptions())
    assert len(classes) == 737280
    np.testing.assert_array_equal(classes[1], [0, 0, 0, 0, 0, 1])  # posY varies fastest, as in the npz
    assert np.isclose(sprites.LATENT_VALUES[3][-1], 2 * np.pi) and sprites.LATENT_VALUES[2][1] == pytest.approx(0.6)


def _grid_factors():
    classes = sprites.dsprites_classes(sprites.DSpritesOptions(orientation_step=4, position_step=2))
    values = np.stack([sprites.LATENT_VALUES[i][classes[:, i]] for i in range(6)], axis=1)
    return classes, {name: values[:, i] for i, name in enumerate(sprites.LATENT_NAMES)}


def test_to_element_counts_by_brute_force():
    classes, factors = _grid_factors()
    test = {"shape": {"eq": "ellipse"}, "posX": {"ge": 0.6}, "posY": {"ge": 0.6},
            "orientation": {"ge": "120deg", "le": "240deg"}, "scale": {"lt": 0.6}}
    mask = splits.test_mask(factors, test, "splits.t")
    expected = sum(1 for c in classes if c[1] == 1 and c[4] / 31 >= 0.6 and c[5] / 31 >= 0.6
                   and 120 <= np.degrees(c[3] * 2 * np.pi / 39) <= 240 and c[2] == 0)
    assert mask.sum() == expected > 0


def test_boundaries_are_inclusive_despite_float_representation():
    factors = {"scale": np.array([0.5, 0.6000000000000001, 0.6999999999999999])}
    assert splits.test_mask(factors, {"scale": {"ge": 0.6}}, "s").tolist() == [False, True, True]
    assert splits.test_mask(factors, {"scale": {"lt": 0.6}}, "s").tolist() == [True, False, False]
    assert splits.test_mask(factors, {"scale": {"le": 0.7}}, "s").tolist() == [True, True, True]


def test_split_file_and_pivot(tmp_path):
    spec = {"kind": "dsprites", "options": {"orientation_step": 8, "position_step": 4}, "sizes": {"all": 0}, "seed": 0}
    data = tmp_path / "all.h5"
    make_split({"datasets": {"d": spec}}, "d", "all", data)
    split = {"dataset": "d", "test": {"shape": {"eq": "ellipse"}, "posX": {"ge": 0.5}},
             "pivot": {"shape": "heart", "scale": 1.0, "orientation": 0, "posX": 0, "posY": 0}}
    counts = splits.make_split(split, "r", data, tmp_path / "r.npz")
    index = np.load(tmp_path / "r.npz")
    assert counts["train"] + counts["test"] == sprites.dsprites_count(sprites.DSpritesOptions(**spec["options"]))
    assert not set(index["train"]) & set(index["test"])
    with h5py.File(data) as file:
        pivot = file["factors/latents_values"][int(index["pivot"])]
    assert pivot[1] == 3 and pivot[2] == 1.0 and pivot[4] == 0
    with pytest.raises(UserError, match="no image has factors"):
        splits.make_split({**split, "pivot": {"scale": 0.55}}, "r", data, tmp_path / "x.npz")


def test_download_from_mirror_checks_sha256(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    payload = b"not really mnist"
    (mirror / "train-labels-idx1-ubyte.gz").write_bytes(payload)
    out = tmp_path / "raw" / "labels.gz"
    digest = download("mnist_train_labels", out, mirror=f"file://{mirror}",
                      expected=hashlib.sha256(payload).hexdigest())
    assert out.read_bytes() == payload and digest == hashlib.sha256(payload).hexdigest()
    out.unlink()
    with pytest.raises(UserError, match="does not match the recorded"):
        download("mnist_train_labels", out, mirror=str(mirror))  # the recorded (real) checksum
    assert not out.exists() and not temps_of(out)


def test_download_checks_published_digests_while_no_sha256_is_recorded(tmp_path, capsys, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    name = SOURCES["dsprites"].file
    (mirror / name).write_bytes(b"not the dSprites npz")
    out = tmp_path / "raw" / name
    with pytest.raises(UserError, match="md5 .* does not match the recorded 7da33b31"):
        download("dsprites", out, mirror=str(mirror))
    assert not out.exists() and not temps_of(out)
    payload = b"a file whose digests are recorded"
    (mirror / name).write_bytes(payload)
    digests = (("md5", hashlib.md5(payload).hexdigest()), ("sha1", hashlib.sha1(payload).hexdigest()))
    monkeypatch.setitem(SOURCES, "dsprites", dataclasses.replace(SOURCES["dsprites"], other_digests=digests))
    assert download("dsprites", out, mirror=str(mirror)) == hashlib.sha256(payload).hexdigest()
    assert out.read_bytes() == payload
    assert "published md5, sha1 match" in capsys.readouterr().err


def test_multi_dsprites_sprite_scale_grows_sprites_and_leaves_the_default_scenes_alone():
    from structae.data.sprites import MultiDSpritesOptions, generate_multi_dsprites

    small = {"image_size": 32, "max_objects": 2}
    default = next(generate_multi_dsprites(MultiDSpritesOptions(**small), 64, 0))
    same = next(generate_multi_dsprites(MultiDSpritesOptions(**small, sprite_scale=1.0), 64, 0))
    big = next(generate_multi_dsprites(MultiDSpritesOptions(**small, sprite_scale=2.0), 64, 0))
    np.testing.assert_array_equal(default["image"], same["image"])
    assert (big["mask"] > 0).mean() > 2.5 * (default["mask"] > 0).mean()  # about 4× the area, less clipping
    with pytest.raises(ValueError, match="sprite_scale must be positive and at most 2.26 at image_size 32"):
        MultiDSpritesOptions(**small, sprite_scale=3.0)


@pytest.mark.parametrize("rows_per_chunk", [1, 2, 4096])
def test_largest_label_leaves_overlaps_out_in_every_chunk(rows_per_chunk):
    masks = np.zeros((3, 4, 4), np.uint8)
    masks[0, 0, 0] = h5.IGNORE_LABEL  # a chunk whose maximum is an overlap
    masks[0, 1, 1] = 1
    masks[2, 2, 2] = 3
    masks[2, 3, 3] = h5.IGNORE_LABEL
    images = np.zeros((3, 4, 4, 1), np.uint8)
    assert loader._largest_label(torch.from_numpy(masks), rows_per_chunk) == 3
    assert loader.ImageSet(images, masks).info().max_objects == 3
    only_overlaps = np.full((1, 4, 4), h5.IGNORE_LABEL, np.uint8)
    assert loader.ImageSet(images[:1], only_overlaps).info().max_objects == 0


def _dsprites_grid() -> dict[str, np.ndarray]:
    """The factors of every image of the dSprites npz, in its order (latents_classes row-major)."""
    grids = np.meshgrid(*sprites.LATENT_VALUES, indexing="ij")
    return {name: grid.ravel() for name, grid in zip(sprites.LATENT_NAMES, grids, strict=True)}


def test_paper_scale_splits_and_pivot_are_the_papers_and_the_reimplementations():
    """Montero et al. (2021)'s recombination-to-range holds out squares with posX ≥ 0.5, as the reimplementation's
    code (generate/dsprite_dataset.py:82-85); its pivot is image 594095 (dsprite_dataset.py:21). The config once
    held out ellipses and pivoted on a square at the origin."""
    config = load_config([REPO / "config.yaml", REPO / "config/paper.yaml"])["splits"]
    factors = _dsprites_grid()
    for name in ("to_element", "to_range"):
        assert splits.pivot_index(factors, config[name]["pivot"], name) == 594095
    held_out = splits.test_mask(factors, config["to_range"]["test"], "to_range")
    np.testing.assert_array_equal(held_out, (factors["shape"] == 1) & (factors["posX"] >= 0.5))
    element = splits.test_mask(factors, config["to_element"]["test"], "to_element")
    # Montero et al.'s recombination-to-element (mmrl/disent-and-gen datasplits.py:187-195): ellipses of scale
    # 0.7-1.0, the 12 orientations strictly inside (120°, 240°), posX and posY > 0.66 (11 positions each). The
    # config once took the reimplementation's scale < 0.6 and positions ≥ 0.6 (14 · 13 · 13 images).
    np.testing.assert_array_equal(element, (factors["shape"] == 2) & (factors["scale"] > 0.65)
                                  & (factors["orientation"] > 2 * np.pi / 3 + 1e-6)
                                  & (factors["orientation"] < 4 * np.pi / 3 - 1e-6)
                                  & (factors["posX"] > 0.66) & (factors["posY"] > 0.66))
    assert element.sum() == 4 * 12 * 11 * 11
