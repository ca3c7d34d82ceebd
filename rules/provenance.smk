# Shared results (structae.share): after a plain `dvc pull`, put back the pushing machine's Snakemake records
# and file times once, so that only figures, tables and the report are planned; and say so in one line when
# a DVC pointer is here but its data is not (a pull that has not run, or failed).
import sys
from pathlib import Path

from structae import share


def _restore_pulled_provenance(root):
    try:
        restored = share.restore_if_pulled(root)
    except (ValueError, KeyError, TypeError):
        sys.exit(
            f"structae: error: {share.PROVENANCE}/{share.MTIMES} is not a provenance snapshot; pull it again "
            "(`dvc pull`)"
        )
    if restored is not None:
        print(f"structae: restored the provenance of {restored} pulled files ({share.PROVENANCE})", file=sys.stderr)
    missing = share.missing_pulls(root)
    if missing:
        print(
            f"structae: warning: {', '.join(missing)} not pulled (remote '{share.REMOTE}' is "
            f"{share.remote_url(root)}): run `dvc pull`, or {share.HOW_TO_SET}; otherwise the workflow "
            "makes them",
            file=sys.stderr,
        )


_restore_pulled_provenance(Path.cwd())
