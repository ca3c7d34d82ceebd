"""What a model may know about its data when it is built; torch-free, so the workflow can import it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DataInfo:
    """What a model may know about its data when it is built (saved in every checkpoint)."""

    channels: int
    height: int
    width: int
    n_images: int
    max_objects: int  # largest object label in the masks (background and ignore excluded)
    factors: tuple[str, ...]

    def to_dict(self) -> dict:
        return asdict(self)
