"""Writing result files atomically: to a temporary name beside the target, renamed when complete, so an
interrupted job never leaves a file that looks finished. Every writer in the package goes through
`atomic_path` (or `appending`, for the one log that grows in place).

A full disk (ENOSPC) or an exceeded quota (EDQUOT, common on cluster scratch) while writing ends in one
UserError line naming the path, what the write needed and what is free; the temporary is removed first.

Temporaries are named `<name>.tmp.<host>.<pid>[suffix]`, so that the leftovers of a killed writer (SIGKILL,
a node lost) can be told from a live writer's file:
- a writer removes every temporary of its own target before it starts: one writer per target at a time is
  what Snakemake's output locks guarantee, so any other temporary of that target is a dead job's;
- `sweep_temps`, run when the workflow starts, removes the others under data/ and results/: those whose
  writer ran on this host and is gone, and those nobody has written to for STALE_AFTER_S (a writer on
  another node cannot be asked whether it lives, but a live writer keeps writing to its temporary).
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from structae.errors import UserError

NO_SPACE = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded"}
STALE_AFTER_S = 3600  # an hour without a write: no writer of ours pauses that long between writes
OUTPUT_DIRS = ("data", "results")  # the workflow's own outputs: the only places a sweep looks
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "localhost"
# `<target>.tmp.<host>.<pid>[.ext]`, and `<target>.tmp[.ext]` as writers before host and pid named them.
TEMP = re.compile(r"\.tmp(?:\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+))?(?:\.[A-Za-z0-9]+)?")
TEMP_NAME = re.compile(r".+" + TEMP.pattern)  # a whole file name: some target's temporary


def temp_path(path: Path, suffix: str = "") -> Path:
    """This process's temporary for `path`; `suffix` keeps an extension that a writer dispatches on."""
    return path.with_name(f"{path.name}.tmp.{HOST}.{os.getpid()}{suffix}")


def temps_of(path: str | Path) -> list[Path]:
    """Every temporary of `path` on disk, whoever wrote it."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return [other for other in path.parent.glob(f"{glob.escape(path.name)}.tmp*")
            if TEMP.fullmatch(other.name[len(path.name):])]


def remove_temps(path: str | Path) -> None:
    for other in temps_of(path):
        other.unlink(missing_ok=True)


def out_of_space(err: BaseException) -> int | None:
    """ENOSPC or EDQUOT when `err` or an exception it was raised from is one. Libraries wrap them: torch
    raises a RuntimeError from the OSError, h5py a RuntimeError whose message alone gives the errno."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in NO_SPACE:
            return err.errno
        for code in NO_SPACE:
            if os.strerror(code) in str(err) or f"errno = {code}," in str(err):
                return code
        err = err.__cause__ or err.__context__
    return None


def amount(nbytes: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} bytes"


def mount_point(path: Path) -> Path:
    """The file system `path` is on, named by where it is mounted (/scratch, not a job's folder)."""
    path = path.resolve()
    while not path.exists() or not os.path.ismount(path):
        path = path.parent
    return path


def no_space_error(code: int, path: Path, written: int, size: int | None) -> UserError:
    """The one line for a write of `path` that failed with `code` after `written` bytes (`size`: the
    whole payload, where the writer knows it)."""
    where = mount_point(path.parent)
    free = shutil.disk_usage(where).free
    if size is not None:
        needed = f"needed about {amount(max(size, written))}"
    else:
        needed = f"needed more than the {amount(written)} written" if written else "could not write a byte"
    room = "free space within your quota" if code == errno.EDQUOT else "free space"
    return UserError(f"{NO_SPACE[code]} on {where} writing {path} ({needed}; {amount(free)} free): {room} "
                     f"on {where} or run the workflow from a file system with more room")


@contextmanager
def atomic_path(path: str | Path, suffix: str = "", size: int | None = None) -> Iterator[Path]:
    """A temporary path to write `path`'s content to; renamed onto `path` when the block ends without an
    exception, removed when it raises. `suffix` keeps an extension that a writer dispatches on (".png");
    `size`, the payload's size where the writer knows it, is reported if the disk fills."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _raise_if_full(err, path, 0, size)
        raise
    remove_temps(path)  # a killed writer's, which would otherwise hold its space until a sweep
    tmp = temp_path(path, suffix)
    try:
        yield tmp
    except BaseException as err:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        _raise_if_full(err, path, written, size)
        raise
    _commit(tmp, path)


def _raise_if_full(err: BaseException, path: Path, written: int, size: int | None) -> None:
    code = out_of_space(err)
    if code is not None:
        raise no_space_error(code, path, written, size) from None


def _commit(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except FileNotFoundError:
        if tmp.exists() or not path.parent.is_dir():
            raise
        raise UserError(f"the temporary {tmp} was removed before it could become {path}: another job wrote "
                        f"{path} at the same time (run one writer per output) or a sweep took it for a killed "
                        "job's; rerun this one") from None
    except OSError as err:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        _raise_if_full(err, path, written, None)
        raise


@contextmanager
def appending(path: str | Path) -> Iterator[TextIO]:
    """`path` opened to append text; if the disk fills, it is cut back to what it held (a torn last line
    would corrupt it) and the one-line error raised."""
    path = Path(path)
    held = path.stat().st_size if path.exists() else 0
    try:
        with open(path, "a", newline="") as file:
            yield file
    except OSError as err:
        code = out_of_space(err)
        if code is None:
            raise
        written = path.stat().st_size - held if path.exists() else 0
        os.truncate(path, held)
        raise no_space_error(code, path, written, None) from None


def write_text(path: str | Path, text: str) -> None:
    payload = text.encode()
    with atomic_path(path, size=len(payload)) as tmp:
        tmp.write_bytes(payload)


def sweep_temps(root: str | Path, now: float | None = None) -> list[Path]:
    """Remove, under root's data/ and results/, the temporaries that killed writers left; return them."""
    now = time.time() if now is None else now
    removed = []
    for top in OUTPUT_DIRS:
        for folder, _, names in os.walk(Path(root) / top):
            for name in names:
                match = TEMP_NAME.fullmatch(name)
                if match:
                    path = Path(folder) / name
                    if _abandoned(path, match, now):
                        path.unlink(missing_ok=True)
                        removed.append(path)
    return removed


def _abandoned(path: Path, match: re.Match, now: float) -> bool:
    if match["host"] == HOST and not _alive(int(match["pid"])):
        return True
    try:
        return now - path.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:  # its writer renamed or removed it meanwhile
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
