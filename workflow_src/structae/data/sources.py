"""Downloadable sources: where each file lives and the sha256 it must have.

A `None` sha256 means none could be recorded yet (the maintainers had no network access to the file
when it was added): the download then prints the file's sha256 so it can be recorded here. Where public
code that downloads the same file publishes another digest (`other_digests`, algorithm -> hex), it is
checked meanwhile. A mismatch against any recorded digest stops the download and deletes the file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    file: str
    url: str
    sha256: str | None
    other_digests: tuple[tuple[str, str], ...] = ()


_DM = "https://storage.googleapis.com/multi-object-datasets"
_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist"

SOURCES = {
    "clevr_with_masks": Source("clevr_with_masks_train.tfrecords",
                               f"{_DM}/clevr_with_masks/clevr_with_masks_train.tfrecords", None),
    "multi_dsprites_colored_on_grayscale": Source(
        "multi_dsprites_colored_on_grayscale.tfrecords",
        f"{_DM}/multi_dsprites/multi_dsprites_colored_on_grayscale.tfrecords", None),
    "multi_dsprites_colored_on_colored": Source(
        "multi_dsprites_colored_on_colored.tfrecords",
        f"{_DM}/multi_dsprites/multi_dsprites_colored_on_colored.tfrecords", None),
    "multi_dsprites_binarized": Source(
        "multi_dsprites_binarized.tfrecords", f"{_DM}/multi_dsprites/multi_dsprites_binarized.tfrecords", None),
    "tetrominoes": Source("tetrominoes_train.tfrecords", f"{_DM}/tetrominoes/tetrominoes_train.tfrecords", None),
    "objects_room": Source("objects_room_train.tfrecords", f"{_DM}/objects_room/objects_room_train.tfrecords",
                           None),
    "dsprites": Source(
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "https://github.com/google-deepmind/dsprites-dataset/raw/master/"
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", None,
        # Published by two independent dSprites loaders in public repositories (one each).
        (("md5", "7da33b31b13a06f4b04a70402ce90c2e"), ("sha1", "3e0a46a9238e425f46a6ef9e9bdfd7cedb35d50f"))),
    "mnist_train_images": Source("train-images-idx3-ubyte.gz", f"{_MNIST}/train-images-idx3-ubyte.gz",
                                 "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "mnist_train_labels": Source("train-labels-idx1-ubyte.gz", f"{_MNIST}/train-labels-idx1-ubyte.gz",
                                 "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "mnist_test_images": Source("t10k-images-idx3-ubyte.gz", f"{_MNIST}/t10k-images-idx3-ubyte.gz",
                                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "mnist_test_labels": Source("t10k-labels-idx1-ubyte.gz", f"{_MNIST}/t10k-labels-idx1-ubyte.gz",
                                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
