"""dSprites-style sprite rendering and the two procedural sprite datasets.

dSprites (Matthey et al. 2017), written as data: 64×64 binary images of one sprite; the factor grid and
`latents_values` / `latents_classes` follow the original npz, in this order and with these sizes.
Multi-dSprites: 64×64 RGB scenes of 1–5 coloured sprites on a grayscale or coloured background; entity 0
is the background, as in DeepMind's multi_dsprites.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 64
LATENT_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
LATENT_SIZES = (1, 3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")  # latents_values shape = 1, 2, 3
LATENT_VALUES = (
    np.array([1.0]),
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),  # 0 and 2π both present, as in the original
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
SPRITE_RADIUS = 10.0  # pixels, half-size of a scale-1 sprite
MARGIN = 10.0  # pixels kept between the image border and a sprite centre at posX/posY 0 or 1
SUPERSAMPLE = 3  # sub-pixels per axis; a pixel is on when at least half its sub-pixels are inside
RENDER_BATCH = 256


WINDOW = 32  # pixels rendered around each sprite centre: a scale-1 sprite at any angle fits in ±14 px


def _square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= 0.8


def _ellipse(u, v):
    return u**2 + (v / 0.5) ** 2 <= 1.0


def _heart(u, v):
    hu, hv = u * 1.15, -v * 1.15 + 0.25  # the implicit curve (x²+y²−1)³ ≤ x²y³, point down
    return (hu**2 + hv**2 - 1.0) ** 3 - hu**2 * hv**3 <= 0.0


INSIDE = (_square, _ellipse, _heart)  # point-in-shape tests in the sprite frame, in radius units


def render(shape_id, scale, angle, pos_x, pos_y, size: int = IMAGE_SIZE) -> np.ndarray:
    """Coverage masks of B sprites: each argument (B,) -> bool (B, size, size).

    Each sprite is supersampled only inside a WINDOW×WINDOW box around its centre, and only its own
    shape's test is evaluated, which keeps the full 737,280-image grid within minutes.
    """
    shape_id = np.asarray(shape_id, dtype=np.int64)
    scale, angle, pos_x, pos_y = (np.asarray(a, dtype=np.float32) for a in (scale, angle, pos_x, pos_y))
    b = len(shape_id)
    unit = size / IMAGE_SIZE  # sprites and margins shrink with the canvas: a 32×32 scene is a 64×64 one halved
    margin = MARGIN * unit
    cx = margin + pos_x * (size - 2 * margin)  # (B,) pixels
    cy = margin + pos_y * (size - 2 * margin)
    x0 = np.floor(cx).astype(np.int64) - WINDOW // 2  # window origin, (B,)
    y0 = np.floor(cy).astype(np.int64) - WINDOW // 2
    sub = (np.arange(WINDOW * SUPERSAMPLE, dtype=np.float32) + 0.5) / SUPERSAMPLE  # (W·s,)
    radius = (SPRITE_RADIUS * unit * scale)[:, None, None]
    dx = (x0[:, None, None] + sub[None, None, :] - cx[:, None, None]) / radius  # (B, 1, W·s)
    dy = (y0[:, None, None] + sub[None, :, None] - cy[:, None, None]) / radius  # (B, W·s, 1)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate the frame by -angle, (B, W·s, W·s)
    inside = np.zeros(u.shape, dtype=np.float32)
    for shape, test in enumerate(INSIDE):
        chosen = shape_id == shape
        if chosen.any():
            inside[chosen] = test(u[chosen], v[chosen])
    window = inside.reshape(b, WINDOW, SUPERSAMPLE, WINDOW, SUPERSAMPLE).mean(axis=(2, 4)) >= 0.5
    canvas = np.zeros((b, size + 2 * WINDOW, size + 2 * WINDOW), dtype=bool)  # padded: windows may overhang
    for i in range(b):
        canvas[i, y0[i] + WINDOW:y0[i] + 2 * WINDOW, x0[i] + WINDOW:x0[i] + 2 * WINDOW] = window[i]
    return canvas[:, WINDOW:WINDOW + size, WINDOW:WINDOW + size]


@dataclass
class DSpritesOptions:
    """A sub-grid of the dSprites factors: every `step`-th value of each factor (1 = the full grid)."""

    shapes: tuple[str, ...] = SHAPES
    scale_step: int = 1
    orientation_step: int = 1
    position_step: int = 1

    def __post_init__(self):
        unknown = set(self.shapes) - set(SHAPES)
        if unknown:
            raise ValueError(f"shapes: {sorted(unknown)} unknown; choose from {', '.join(SHAPES)}")
        if min(self.scale_step, self.orientation_step, self.position_step) < 1:
            raise ValueError("steps must be >= 1")


def dsprites_classes(options: DSpritesOptions) -> np.ndarray:
    """latents_classes (N, 6) of the configured sub-grid, in the npz's row-major order."""
    axes = [
        [0],
        [SHAPES.index(s) for s in SHAPES if s in options.shapes],
        range(0, 6, options.scale_step),
        range(0, 40, options.orientation_step),
        range(0, 32, options.position_step),
        range(0, 32, options.position_step),
    ]
    return np.array(list(itertools.product(*axes)), dtype=np.int64)


def generate_dsprites(options: DSpritesOptions, rows: slice) -> Iterator[dict]:
    """Rows `rows` of the factor grid, in batches; the grid is deterministic, so there is no seed."""
    classes = dsprites_classes(options)[rows]
    for start in range(0, len(classes), RENDER_BATCH):
        batch = classes[start:start + RENDER_BATCH]
        values = np.stack([LATENT_VALUES[i][batch[:, i]] for i in range(6)], axis=1)
        on = render(batch[:, 1], values[:, 2], values[:, 3], values[:, 4], values[:, 5])
        yield {"image": (on[..., None] * 255).astype(np.uint8), "mask": on.astype(np.uint8),
               "factors": {"latents_classes": batch, "latents_values": values}}


def dsprites_count(options: DSpritesOptions) -> int:
    return len(dsprites_classes(options))


@dataclass
class MultiDSpritesOptions:
    """Random scenes in the style of DeepMind's multi_dsprites."""

    background: str = "grayscale"  # grayscale | colored
    min_objects: int = 1
    max_objects: int = 5
    image_size: int = IMAGE_SIZE  # smaller canvases (IODINE's embedded config) scale sprites with them
    sprite_scale: float = 1.0  # sprites' size against the canvas (1: as multi_dsprites)

    def __post_init__(self):
        if not 16 <= self.image_size <= IMAGE_SIZE:
            raise ValueError(f"image_size must be in 16..{IMAGE_SIZE}")
        # The renderer samples a WINDOW-pixel box around each sprite; a rotated scale-1 square reaches √2 radii.
        largest = self.sprite_scale * SPRITE_RADIUS * self.image_size / IMAGE_SIZE * 2 ** 0.5
        if not 0 < self.sprite_scale or largest > WINDOW / 2:
            raise ValueError(f"sprite_scale must be positive and at most "
                             f"{WINDOW / 2 / (SPRITE_RADIUS * self.image_size / IMAGE_SIZE * 2 ** 0.5):.2f} "
                             f"at image_size {self.image_size}")
        if self.background not in ("grayscale", "colored"):
            raise ValueError("background must be grayscale or colored")
        if not 1 <= self.min_objects <= self.max_objects <= 5:
            raise ValueError("need 1 <= min_objects <= max_objects <= 5")


def generate_multi_dsprites(options: MultiDSpritesOptions, n: int, seed: int) -> Iterator[dict]:
    """n scenes; later sprites occlude earlier ones; factors are (N, 6) with entity 0 the background."""
    rng = np.random.default_rng(seed)
    k, size = options.max_objects + 1, options.image_size
    for start in range(0, n, RENDER_BATCH):
        b = min(RENDER_BATCH, n - start)
        counts = rng.integers(options.min_objects, options.max_objects + 1, size=b)
        shape = rng.integers(0, 3, size=(b, k))
        scale = rng.uniform(0.5, 1.0, size=(b, k)) * options.sprite_scale
        angle = rng.uniform(0, 2 * np.pi, size=(b, k))
        pos = rng.uniform(0, 1, size=(b, k, 2))
        color = rng.uniform(0, 1, size=(b, k, 3))
        if options.background == "grayscale":
            color[:, 0] = rng.uniform(0, 1, size=(b, 1))
        present = np.arange(k)[None, :] <= counts[:, None]  # entity 0 (background) always present
        mask = np.zeros((b, size, size), np.uint8)
        for entity in range(1, k):
            on = render(shape[:, entity], scale[:, entity], angle[:, entity], pos[:, entity, 0],
                        pos[:, entity, 1], size) & present[:, entity, None, None]
            mask[on] = entity
        image = np.take_along_axis(color, mask.reshape(b, -1, 1).astype(np.int64), axis=1)
        visibility = np.stack([(mask == e).any(axis=(1, 2)) for e in range(k)], axis=1)
        yield {
            "image": np.round(image.reshape(b, size, size, 3) * 255).astype(np.uint8),
            "mask": mask,
            "factors": {"shape": np.where(present, shape + 1, 0).astype(np.float32),
                        "scale": np.where(present, scale, 0).astype(np.float32),
                        "orientation": np.where(present, angle, 0).astype(np.float32),
                        "x": np.where(present, pos[..., 0], 0).astype(np.float32),
                        "y": np.where(present, pos[..., 1], 0).astype(np.float32),
                        "color": (color * present[..., None]).astype(np.float32),
                        "visibility": visibility.astype(np.float32)},
        }
