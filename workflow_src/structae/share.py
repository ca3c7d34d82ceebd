"""Sharing data and trained models through DVC, so that a colleague regenerates figures without retraining.

`push` tracks the workflow's expensive outputs (SHARED) with DVC and uploads them; `pull` downloads them
into a fresh clone. Files alone are not enough for Snakemake: pulled files get pull-time modification
times in DVC's own order, so inputs look newer than outputs and everything would retrain, and without
Snakemake's metadata records (.snakemake/metadata) a changed parameter would go unnoticed. So `push`
also versions a provenance snapshot (PROVENANCE): the metadata records of the shared outputs and every
shared file's modification time; `pull` puts both back. Afterwards Snakemake sees exactly the state of
the machine that pushed: nothing retrains, and a changed setting reruns exactly the jobs it affects.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from structae.errors import UserError

SHARED = ("data/raw", "data/processed", "data/splits", "results/checkpoints", "results/metrics")
PROVENANCE = Path("results/provenance")
METADATA = Path(".snakemake/metadata")
MTIMES = "mtimes.json"


def _dvc(root: Path, *args: str) -> None:
    command = [shutil.which("dvc") or "dvc", *args]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        result = subprocess.run(command, cwd=root, env=env, text=True, capture_output=True)
    except FileNotFoundError:
        raise UserError("dvc is not installed; run `make setup` (it installs the workflow tools)") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        raise UserError(f"`dvc {' '.join(args)}` failed: {lines[-1].removeprefix('ERROR: ')}")
    sys.stdout.write(result.stdout)


def output_of(record: Path) -> str:
    """The output path a Snakemake metadata record describes (its name is the path, urlsafe-base64 encoded,
    split into folders of at most NAME_MAX characters whose names start with '@' but the last)."""
    encoded = "".join(part.lstrip("@") for part in record.parts)
    return base64.urlsafe_b64decode(encoded).decode()


def _shared_files(root: Path):
    for top in SHARED:
        for path in sorted((root / top).rglob("*")):
            if path.is_file():
                yield path.relative_to(root).as_posix()


def snapshot(root: Path) -> int:
    """Write PROVENANCE: metadata records and modification times of the shared files; return the file count."""
    target = root / PROVENANCE
    shutil.rmtree(target, ignore_errors=True)
    (target / "metadata").mkdir(parents=True)
    files = list(_shared_files(root))
    wanted = set(files)
    metadata = root / METADATA
    for record in metadata.rglob("*") if metadata.is_dir() else []:
        if record.is_file() and output_of(record.relative_to(metadata)) in wanted:
            copy = target / "metadata" / record.relative_to(metadata)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(record, copy)
    mtimes = {path: (root / path).stat().st_mtime_ns for path in files}
    (target / MTIMES).write_text(json.dumps(mtimes, indent=0, sort_keys=True) + "\n")
    return len(files)


def restore(root: Path) -> int:
    """Put PROVENANCE back: metadata records into .snakemake/metadata and the recorded modification times
    on the pulled files; return the number of files whose time was restored."""
    source = root / PROVENANCE
    if not (source / MTIMES).is_file():
        raise UserError(f"{PROVENANCE}/{MTIMES} is missing; the remote holds no structae share "
                        "(push one with `structae share push`)")
    for record in (source / "metadata").rglob("*"):
        if record.is_file():
            copy = root / METADATA / record.relative_to(source / "metadata")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(record, copy)
    restored = 0
    for path, mtime in json.loads((source / MTIMES).read_text()).items():
        if (root / path).is_file():
            os.utime(root / path, ns=(mtime, mtime))
            restored += 1
    return restored


def tracked(root: Path) -> list[str]:
    return [top for top in SHARED if (root / top).is_dir()] + [PROVENANCE.as_posix()]


def push(root: Path, remote: str | None = None) -> list[str]:
    """Snapshot provenance, `dvc add` the shared folders, `dvc push`; return the .dvc files to commit."""
    count = snapshot(root)
    targets = tracked(root)
    pointers = [f"{target}.dvc" for target in targets]
    _dvc(root, "add", "--quiet", *targets)
    # Explicit targets: DVC's own search for .dvc files skips the git-ignored data/ and results/.
    _dvc(root, "push", *(["--remote", remote] if remote else []), *pointers)
    print(f"pushed {count} files in {', '.join(targets)}")
    return pointers


def pull(root: Path, remote: str | None = None) -> int:
    """`dvc pull` the shared folders, then restore provenance; return the number of files restored."""
    pointers = [f"{target}.dvc" for target in (*SHARED, PROVENANCE.as_posix()) if (root / f"{target}.dvc").is_file()]
    if not pointers:
        raise UserError("no shared results in this clone (no data/*.dvc or results/*.dvc files); "
                        "pull the git commit that a `structae share push` made")
    _dvc(root, "pull", *(["--remote", remote] if remote else []), *pointers)
    return restore(root)
