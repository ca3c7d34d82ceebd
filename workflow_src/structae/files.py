"""Writing result files atomically: to a temporary name beside the target, renamed when complete, so an
interrupted job never leaves a file that looks finished. Every writer in the package goes through
`atomic_path`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write `path`'s content to; renamed onto `path` when the block ends without an
    exception, removed when it raises. `suffix` keeps an extension that a writer dispatches on (".png")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp" + suffix)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
