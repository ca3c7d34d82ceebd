"""The TFRecord reader and the multi-object converter, on records crafted with protobuf."""

import gzip

import h5py
import numpy as np
import pytest

from example_proto import example, frame, write_tfrecord
from structae.data import multi_object, tfrecord
from structae.data.datasets import make_split
from structae.errors import UserError
from structae.files import temps_of


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


def _blob_image_record(image, masks) -> bytes:
    """The same scene with `image` as one string rather than one string per byte: a different layout."""
    from example_proto import Example

    ex = Example()
    ex.features.feature["image"].bytes_list.value.append(image.tobytes())
    ex.features.feature["mask"].bytes_list.value.extend(bytes([b]) for b in masks.ravel().tolist())
    return ex.SerializeToString()


def test_batches_decode_like_single_records_and_odd_records_fall_back(tmp_path, monkeypatch):
    fmt = multi_object.FORMATS["objects_room"]  # no factors, so a blob-image record is complete
    rng = np.random.default_rng(5)
    scenes = [scene(rng, fmt) for _ in range(6)]
    odd_image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    odd_masks = np.stack([(scenes[0][2] == e) * 255 for e in range(fmt.max_entities)]).astype(np.uint8)
    records = [s[0] for s in scenes]
    records.insert(3, _blob_image_record(odd_image, odd_masks))
    path = tmp_path / "objects_room_train.tfrecords"
    write_tfrecord(path, records)
    one_by_one, decode = [], multi_object.decode
    monkeypatch.setattr(multi_object, "decode", lambda r, f: one_by_one.append(r) or decode(r, f))
    opts = multi_object.MultiObjectOptions(variant="objects_room")
    (batch,) = list(multi_object.convert(path, opts, slice(0, None)))
    assert one_by_one == [records[3]]  # only the odd record took the slow path
    images = [s[1] for s in scenes]
    images.insert(3, odd_image)
    labels = [s[2] for s in scenes]
    labels.insert(3, scenes[0][2])
    np.testing.assert_array_equal(batch["image"], np.stack(images))
    np.testing.assert_array_equal(batch["mask"], np.stack(labels))


def test_fixed_layout_refuses_what_it_cannot_slice():
    from example_proto import Example

    ex = Example()
    ex.features.feature["image"].bytes_list.value.extend([b"a", b"b"])
    ex.features.feature["x"].float_list.value.extend([1.0, 2.0])
    packed = ex.SerializeToString()
    layout = tfrecord.FixedLayout.learn(packed, {"image": 2}, {"x": 2})
    assert layout is not None and layout.matches(packed)
    values = layout.decode([packed, packed])
    np.testing.assert_array_equal(values["image"], [[97, 98]] * 2)
    np.testing.assert_array_equal(values["x"], [[1.0, 2.0]] * 2)
    # Same length and skeleton, but the BytesList holds "ab" and "": the batch must not be sliced.
    uneven = packed.replace(b"\x0a\x01a\x0a\x01b", b"\x0a\x02ab\x0a\x00")
    assert layout.matches(uneven) and layout.decode([packed, uneven]) is None
    assert tfrecord.FixedLayout.learn(packed, {"image": 3}, {"x": 2}) is None  # wrong size
    unpacked = packed.replace(b"\x0a\x08" + np.float32(1).tobytes() + np.float32(2).tobytes(),
                              b"\x0d" + np.float32(1).tobytes() + b"\x0d" + np.float32(2).tobytes())
    assert unpacked != packed and tfrecord.FixedLayout.learn(unpacked, {"image": 2}, {"x": 2}) is None


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


def test_sizes_beyond_the_source_are_refused_naming_the_available_count(tmp_path):
    fmt = multi_object.FORMATS["tetrominoes"]
    rng = np.random.default_rng(5)
    path = tmp_path / "tetrominoes_train.tfrecords"
    write_tfrecord(path, [scene(rng, fmt)[0] for _ in range(7)])
    spec = {"kind": "multi_object", "options": {"variant": "tetrominoes"}, "sizes": {"train": 4, "test": 5},
            "seed": 0}
    out = tmp_path / "test.h5"
    with pytest.raises(UserError, match=r"datasets.tet.sizes.test: 5 images asked for, but the source has only 3"):
        make_split({"datasets": {"tet": spec}}, "tet", "test", out, [path])
    assert not out.exists() and not temps_of(out)


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
    assert not out.exists() and not temps_of(out)
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


@pytest.mark.parametrize("field", ["crc32", "length"])
def test_damaged_gzip_trailer_is_named_not_a_record(tmp_path, field):
    def damage(raw):
        packed = bytearray(gzip.compress(raw))
        packed[-8 if field == "crc32" else -4] ^= 0xFF  # the trailer: CRC32, then the length (ISIZE)
        return bytes(packed)

    message = _corrupt_and_convert(tmp_path, damage)
    assert "the gzip trailer of member 0" in message and "is corrupt" not in message  # no record is blamed


def test_uncompressed_tfrecords_are_read_too(tmp_path):
    fmt = multi_object.FORMATS["objects_room"]
    record, image, *_ = scene(np.random.default_rng(4), fmt)
    path = tmp_path / "plain.tfrecords"
    write_tfrecord(path, [record, record], compress=False)
    assert [len(r) for r in tfrecord.iter_records(path)] == [len(record)] * 2


@pytest.mark.parametrize("prefetch", [0, 2])
def test_records_spanning_pieces_and_gzip_members(tmp_path, monkeypatch, prefetch):
    monkeypatch.setattr(tfrecord, "PIECE", 97)  # records of ~1 KB cross many pieces and chunks
    monkeypatch.setattr(tfrecord, "CHUNK", 61)
    rng = np.random.default_rng(6)
    records = [rng.integers(0, 256, size=rng.integers(0, 2000), dtype=np.uint8).tobytes() for _ in range(9)]
    path = tmp_path / "members.tfrecords"
    first, second = b"".join(frame(r) for r in records[:4]), b"".join(frame(r) for r in records[4:])
    path.write_bytes(gzip.compress(first) + gzip.compress(second))  # two gzip members, as `cat` makes
    assert list(tfrecord.iter_records(path, prefetch=prefetch)) == records


def test_groups_by_bytes_join_into_batches_in_order(tmp_path, monkeypatch):
    fmt = multi_object.FORMATS["tetrominoes"]
    rng = np.random.default_rng(8)
    scenes = [scene(rng, fmt) for _ in range(7)]
    path = tmp_path / "tetrominoes_train.tfrecords"
    write_tfrecord(path, [s[0] for s in scenes])
    monkeypatch.setattr(multi_object, "RAW_BYTES", 2 * len(scenes[0][0]))  # groups of 2 records
    monkeypatch.setattr(multi_object, "BATCH", 3)
    batches = list(multi_object.convert(path, multi_object.MultiObjectOptions(variant="tetrominoes"),
                                        slice(1, None)))
    assert [len(b["image"]) for b in batches] == [4, 2]  # 2+2 decoded >= 3, then the rest
    np.testing.assert_array_equal(np.concatenate([b["image"] for b in batches]), np.stack([s[1] for s in scenes[1:]]))
    np.testing.assert_array_equal(np.concatenate([b["factors"]["x"] for b in batches]),
                                  np.stack([s[3]["x"] for s in scenes[1:]]))
