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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    where = location(src, mirror)
    try:
        if "://" in where:
            with urllib.request.urlopen(where, timeout=60) as response, open(tmp, "wb") as handle:
                shutil.copyfileobj(response, handle, 1 << 22)
        else:
            if not Path(where).is_file():
                raise UserError(f"{where} not found in the mirror; put {src.file} there or set sources.mirror")
            shutil.copyfile(where, tmp)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"could not fetch {where} ({err}); check the network or set sources.mirror") from None
    digest = sha256(tmp)
    expected = expected or src.sha256
    if expected is None:
        print(f"warning: no sha256 recorded for '{name}'; got {digest}: record it in "
              f"structae/data/sources.py after checking the file", file=sys.stderr)
    elif digest != expected:
        tmp.unlink()
        raise UserError(f"{src.file}: sha256 {digest} does not match the recorded {expected}; the file "
                        f"was deleted: check the source or the mirror and retry")
    os.replace(tmp, out)
    return digest
