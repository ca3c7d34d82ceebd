# Included before Snakemake reads any config file. The scale (`--config scale=NAME`, default embedded) names
# the files the workflow reads (structae.scales); a file with a key given twice, a YTE template
# (`__use_yte__`, which would run its Python) or bytes that are not UTF-8 stops here with one line, as does a
# scale other than the one whose outputs data/ and results/ already hold.
# Files passed with --configfile were already read by Snakemake; they are checked the same way.
import sys
from pathlib import Path

from structae import scales
from structae.config_files import check_files
from structae.errors import UserError
from structae.files import sweep_temps

SCALE = config.get("scale", scales.DEFAULT)
try:
    SCALE_FILES = scales.files(SCALE)
    check_files([*SCALE_FILES, *workflow.configfiles])
    scales.check_outputs(Path.cwd(), SCALE)
except UserError as err:
    sys.exit(f"structae: error: {err}")


# A run starts by removing the temporaries that killed jobs left under data/ and results/ (structae.files).
onstart:
    scales.record(Path.cwd(), SCALE)
    for stale in sweep_temps(Path.cwd()):
        print(f"structae: removed {stale}, left by a killed job", file=sys.stderr)
