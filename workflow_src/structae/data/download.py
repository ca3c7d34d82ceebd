"""Fetching a source file (from the web or a local mirror) and checking its sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from structae.data.sources import SOURCES, Source
from structae.errors import UserError
from structae.files import atomic_path, out_of_space


def file_digests(path: Path, algorithms) -> dict[str, str]:
    """Hex digests of the file by each algorithm, in one pass over it."""
    digests = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            for digest in digests.values():
                digest.update(chunk)
    return {algorithm: digest.hexdigest() for algorithm, digest in digests.items()}


def sha256(path: Path) -> str:
    return file_digests(path, ["sha256"])["sha256"]


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise UserError(f"unknown source '{name}'; known: {', '.join(sorted(SOURCES))}") from None


def location(src: Source, mirror: str | None) -> str:
    """The URL or path to fetch: `mirror` (a directory or file:// URL) holds files by their names."""
    if not mirror:
        return src.url
    if mirror.startswith("file://"):
        return os.path.join(urllib.parse.urlparse(mirror).path, src.file)
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + src.file
    return os.path.join(mirror, src.file)


def download(name: str, out: str | Path, mirror: str | None = None, expected: str | None = None) -> str:
    """Fetch source `name` to `out` atomically; return its sha256. A mismatch deletes the file."""
    src = source(name)
    where = location(src, mirror)
    with atomic_path(out) as tmp:  # a failed fetch or a digest mismatch leaves nothing behind
        _fetch(src, where, tmp)
        expected = expected or src.sha256
        recorded = {"sha256": expected} if expected else dict(src.other_digests)
        got = file_digests(tmp, {"sha256", *recorded})
        for algorithm, value in recorded.items():
            if got[algorithm] != value:
                raise UserError(f"{src.file}: {algorithm} {got[algorithm]} does not match the recorded {value}; "
                                f"the file was deleted: check the source or the mirror and retry")
    digest = got["sha256"]
    if expected is None:
        checked = f" (its published {', '.join(recorded)} match)" if recorded else ""
        print(f"warning: no sha256 recorded for '{name}'{checked}; got {digest}: record it in "
              f"structae/data/sources.py after checking the file", file=sys.stderr)
    return digest


def _fetch(src: Source, where: str, to: Path) -> None:
    try:
        if "://" in where:
            with urllib.request.urlopen(where, timeout=60) as response, open(to, "wb") as handle:
                shutil.copyfileobj(response, handle, 1 << 22)
        else:
            if not Path(where).is_file():
                raise UserError(f"{where} not found in the mirror; put {src.file} there or set sources.mirror")
            shutil.copyfile(where, to)
    except OSError as err:
        if out_of_space(err):
            raise  # atomic_path's one line: the network is not to blame
        raise UserError(f"could not fetch {where} ({err}); check the network or set sources.mirror") from None
