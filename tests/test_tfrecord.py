"""The TFRecord reader and the multi-object converter, on records crafted with protobuf."""

import gzip

import h5py
import numpy as np
import pytest

from example_proto import example, frame, write_tfrecord
from structae.data import multi_object, tfrecord
from structae.data.datasets import make_split
from structae.errors import UserError


def scene(rng, fmt: multi_object.Format):
    """A random scene in `fmt`: image, disjoint 0/255 entity masks in the format's layout, factors."""
    h, w = fmt.image_size
    k = fmt.max_entities
    labels = rng.integers(0, k, size=(h, w))
    masks = np.stack([(labels == e) * 255 for e in range(k)], axis=-1).astype(np.uint8)  # (H, W, K)
    stored = masks if fmt.mask_layout == "HWK" else masks.transpose(2, 0, 1)
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    floats = {name: rng.random(shape).astype(np.float32) for name, shape in fmt.floats.items()}
    strings = {name: [b"red", b"big"][:1] * k for name in fmt.strings}
    record = example({"image": image, "mask": stored[..., None]}, floats, strings)
    return record, image, labels.astype(np.uint8), floats


@pytest.mark.parametrize("variant", ["multi_dsprites_colored_on_grayscale", "tetrominoes", "objects_room"])
def test_decode_matches_the_crafted_scene(variant):
    fmt = multi_object.FORMATS[variant]
    record, image, labels, floats = scene(np.random.default_rng(0), fmt)
    decoded = multi_object.decode(record, fmt)
    np.testing.assert_array_equal(decoded["image"], image)
    np.testing.assert_array_equal(decoded["mask"], labels)
    for name, values in floats.items():
        np.testing.assert_array_equal(decoded["factors"][name], values)


def test_float_and_int_lists_decode_packed_and_unpacked():
    from example_proto import Example

    ex = Example()
    ex.features.feature["f"].float_list.value.extend([1.5, -2.0])
    ex.features.feature["i"].int64_list.value.extend([3, -4, 1 << 40])
    features = tfrecord.parse_example(ex.SerializeToString())
    np.testing.assert_array_equal(tfrecord.float_list(features["f"][1]), [1.5, -2.0])
    np.testing.assert_array_equal(tfrecord.int64_list(features["i"][1]), [3, -4, 1 << 40])
    unpacked = b"\x0d" + np.float32(7.25).tobytes() + b"\x0d" + np.float32(-1).tobytes()
    np.testing.assert_array_equal(tfrecord.float_list(memoryview(unpacked)), [7.25, -1.0])


def _clevr_file(tmp_path, n=6, rng=None):
    rng = rng or np.random.default_rng(1)
    fmt = multi_object.FORMATS["clevr_with_masks"]
    records, visible = [], []
    for i in range(n):
        record, *_ = scene(rng, fmt)
        # overwrite visibility: scene i has i visible objects (entity 0 is the background)
        vis = np.zeros(fmt.max_entities, np.float32)
        vis[: i + 1] = 1
        ex = __import__("example_proto").Example.FromString(record)
        del ex.features.feature["visibility"].float_list.value[:]
        ex.features.feature["visibility"].float_list.value.extend(vis.tolist())
        records.append(ex.SerializeToString())
        visible.append(i)
    path = tmp_path / "clevr_with_masks_train.tfrecords"
    write_tfrecord(path, records)
    return path, visible


def test_clevr6_filter_crop_and_resize(tmp_path):
    path, visible = _clevr_file(tmp_path)
    opts = multi_object.MultiObjectOptions(variant="clevr_with_masks", crop=(29, 221, 64, 256), resize=32,
                                           max_objects=3)
    batches = list(multi_object.convert(path, opts, slice(0, None)))
    kept = sum(len(b["image"]) for b in batches)
    assert kept == sum(v <= 3 for v in visible)
    assert batches[0]["image"].shape[1:] == (32, 32, 3) and batches[0]["mask"].shape[1:] == (32, 32)
    assert batches[0]["factors"]["pixel_coords"].shape[1:] == (11, 3)


def test_splits_take_consecutive_records(tmp_path):
    fmt = multi_object.FORMATS["tetrominoes"]
    rng = np.random.default_rng(2)
    scenes = [scene(rng, fmt) for _ in range(7)]
    path = tmp_path / "tetrominoes_train.tfrecords"
    write_tfrecord(path, [s[0] for s in scenes])
    spec = {"kind": "multi_object", "options": {"variant": "tetrominoes"}, "sizes": {"train": 4, "test": 0},
            "seed": 0}
    for split, rows in (("train", range(0, 4)), ("test", range(4, 7))):
        out = tmp_path / f"{split}.h5"
        assert make_split({"datasets": {"tet": spec}}, "tet", split, out, [path]) == len(rows)
        with h5py.File(out) as file:
            np.testing.assert_array_equal(file["image"][:], np.stack([scenes[i][1] for i in rows]))
            assert file.attrs["source_format"] == "multi_object"


def _corrupt_and_convert(tmp_path, damage):
    fmt = multi_object.FORMATS["tetrominoes"]
    rng = np.random.default_rng(3)
    raw = b"".join(frame(scene(rng, fmt)[0]) for _ in range(5))
    path = tmp_path / "tetrominoes_train.tfrecords"
    path.write_bytes(damage(raw))
    spec = {"kind": "multi_object", "options": {"variant": "tetrominoes"}, "sizes": {"train": 0}, "seed": 0}
    out = tmp_path / "train.h5"
    with pytest.raises(UserError) as err:
        make_split({"datasets": {"tet": spec}}, "tet", "train", out, [path])
    assert not out.exists() and not (tmp_path / "train.h5.tmp").exists()
    return str(err.value)


def test_flipped_byte_names_file_and_record(tmp_path):
    record_size = len(frame(scene(np.random.default_rng(3), multi_object.FORMATS["tetrominoes"])[0]))

    def flip(raw):
        raw = bytearray(raw)
        raw[2 * record_size + 100] ^= 0xFF  # inside record 2's data
        return gzip.compress(bytes(raw))

    message = _corrupt_and_convert(tmp_path, flip)
    assert "record 2" in message and "tetrominoes_train.tfrecords" in message and "\n" not in message


def test_truncated_file_names_the_record(tmp_path):
    message = _corrupt_and_convert(tmp_path, lambda raw: gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    assert "record" in message and "corrupt" in message


def test_uncompressed_tfrecords_are_read_too(tmp_path):
    fmt = multi_object.FORMATS["objects_room"]
    record, image, *_ = scene(np.random.default_rng(4), fmt)
    path = tmp_path / "plain.tfrecords"
    write_tfrecord(path, [record, record], compress=False)
    assert [len(r) for r in tfrecord.iter_records(path)] == [len(record)] * 2
