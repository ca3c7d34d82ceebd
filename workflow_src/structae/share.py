"""Sharing data and trained models through DVC, so that a colleague regenerates figures without retraining.

`push` tracks the workflow's expensive outputs (SHARED) with DVC and uploads them; `pull` downloads them
into a fresh clone. Files alone are not enough for Snakemake: pulled files get pull-time modification
times in DVC's own order, so inputs look newer than outputs and everything would retrain, and without
Snakemake's metadata records (.snakemake/metadata) a changed parameter would go unnoticed. So `push`
also versions a provenance snapshot (PROVENANCE): the metadata records of the shared outputs and every
shared file's modification time; `pull` puts both back. Afterwards Snakemake sees exactly the state of
the machine that pushed: nothing retrains, and a changed setting reruns exactly the jobs it affects.

Plain DVC works as well: the .dvc pointers sit in data/ and results/, which git (and so DVC) sees, and
after a plain `dvc pull` the workflow itself restores the provenance once (`restore_if_pulled`, called when
Snakemake loads), so `dvc pull && snakemake all` makes only figures, tables and the report.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from structae.errors import UserError
from structae.files import write_text

SHARED = ("data/raw", "data/processed", "data/fresh", "data/splits", "results/checkpoints", "results/metrics")
PROVENANCE = Path("results/provenance")
METADATA = Path(".snakemake/metadata")
MTIMES = "mtimes.json"
RESTORED = Path(".snakemake/structae-provenance-restored")  # digest of the last snapshot put back
REMOTE = "shared"  # the repository's DVC remote
REMOTE_VARIABLE = "STRUCTAE_DVC_REMOTE"
HOW_TO_SET = (f"set it with `dvc remote modify --local {REMOTE} url PATH_OR_URL` "
              f"(or {REMOTE_VARIABLE}=PATH_OR_URL make pull)")


def remote_url(root: Path, remote: str = REMOTE) -> str | None:
    """The remote's URL as DVC resolves it from the repository's config files (config.local wins)."""
    url = None
    for name in ("config", "config.local"):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(root / ".dvc" / name)
        except configparser.Error:
            continue  # DVC itself reports a broken config file
        for section in (f"'remote \"{remote}\"'", f'remote "{remote}"'):  # DVC writes the quoted form
            url = parser.get(section, "url", fallback=url)
    return url


def check_remote(root: Path, remote: str = REMOTE, pushing: bool = False) -> str:
    """The remote's URL, after checking what can be checked without a network: that it is set and, for a
    path, that it exists (a push may create its last folder). One line naming the URL and how to set it."""
    url = remote_url(root, remote)
    if not url:
        raise UserError(f"the DVC remote '{remote}' has no URL; {HOW_TO_SET}")
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = root / (parsed.path if parsed.scheme else url)
        if not (path.parent if pushing else path).is_dir():
            raise UserError(f"the DVC remote '{remote}' is {url}, which does not exist on this machine; {HOW_TO_SET}")
    return url


def use_remote_from_environment(root: Path) -> None:
    """With STRUCTAE_DVC_REMOTE set, point the remote there for this clone (.dvc/config.local), so that plain
    dvc commands use it too."""
    url = os.environ.get(REMOTE_VARIABLE)
    if url and url != remote_url(root):
        _dvc(root, "remote", "modify", "--local", REMOTE, "url", url)


def _dvc(root: Path, *args: str) -> None:
    command = [shutil.which("dvc") or "dvc", *args]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        result = subprocess.run(command, cwd=root, env=env, text=True, capture_output=True)
    except FileNotFoundError:
        raise UserError("dvc is not installed; run `make setup` (it installs the workflow tools)") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        where = f" (remote '{REMOTE}' is {remote_url(root)}; {HOW_TO_SET})" if args[0] in ("push", "pull") else ""
        raise UserError(f"`dvc {' '.join(args)}` failed: {lines[-1].removeprefix('ERROR: ')}{where}")
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
    stats = {path: (root / path).stat() for path in files}
    times = {path: {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size} for path, stat in stats.items()}
    write_text(target / MTIMES, json.dumps(times, indent=0, sort_keys=True) + "\n")
    _mark_restored(root)  # this machine's own state: nothing to put back
    return len(files)


def _digest(root: Path) -> str:
    return hashlib.sha256((root / PROVENANCE / MTIMES).read_bytes()).hexdigest()


def _mark_restored(root: Path) -> None:
    write_text(root / RESTORED, _digest(root) + "\n")


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
    for path, recorded in json.loads((source / MTIMES).read_text()).items():
        file = root / path
        # A file of another size is not the one pushed (a pull that did not overwrite local work): its own
        # time stays, so Snakemake judges it as it is.
        if file.is_file() and file.stat().st_size == recorded["size"]:
            os.utime(file, ns=(recorded["mtime_ns"], recorded["mtime_ns"]))
            restored += 1
    _mark_restored(root)
    return restored


def restore_if_pulled(root: Path) -> int | None:
    """Restore provenance once after each pull that brought a new snapshot (plain `dvc pull` included); the
    number of files restored, or None when there was nothing new. Called when the workflow loads."""
    if not (root / PROVENANCE / MTIMES).is_file():
        return None
    stamp = root / RESTORED
    if stamp.is_file() and stamp.read_text().strip() == _digest(root):
        return None
    return restore(root)


def missing_pulls(root: Path) -> list[str]:
    """Shared folders whose DVC pointer is in this clone but whose data is not: a pull that has not run or
    failed."""
    return [top for top in (*SHARED, PROVENANCE.as_posix()) if (root / f"{top}.dvc").is_file()
            and not (root / top).exists()]


def tracked(root: Path) -> list[str]:
    return [top for top in SHARED if (root / top).is_dir()] + [PROVENANCE.as_posix()]


def push(root: Path, remote: str | None = None) -> list[str]:
    """Snapshot provenance, `dvc add` the shared folders, `dvc push`; return the files to commit."""
    use_remote_from_environment(root)
    check_remote(root, remote or REMOTE, pushing=True)
    count = snapshot(root)
    targets = tracked(root)
    pointers = [f"{target}.dvc" for target in targets]
    _dvc(root, "add", "--quiet", *targets)
    _dvc(root, "push", *(["--remote", remote] if remote else []), *pointers)
    print(f"pushed {count} files in {', '.join(targets)}")
    ignores = [f"{top}/.gitignore" for top in ("data", "results") if (root / top / ".gitignore").is_file()]
    return pointers + ignores  # `dvc add` lists the tracked folders in their parent's .gitignore


def pull(root: Path, remote: str | None = None) -> int:
    """`dvc pull` the shared folders, then restore provenance; return the number of files restored."""
    pointers = [f"{target}.dvc" for target in (*SHARED, PROVENANCE.as_posix()) if (root / f"{target}.dvc").is_file()]
    if not pointers:
        raise UserError("no shared results in this clone (no data/*.dvc or results/*.dvc files); "
                        "pull the git commit that a `structae share push` made")
    use_remote_from_environment(root)
    check_remote(root, remote or REMOTE)
    _dvc(root, "pull", *(["--remote", remote] if remote else []), *pointers)
    return restore(root)
