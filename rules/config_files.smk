# Included before Snakemake reads config.yaml: a config file with a key given twice, a YTE template
# (`__use_yte__`, which would run its Python) or bytes that are not UTF-8 stops here with one line.
# Files passed with --configfile were already read by Snakemake; they are checked the same way.
import sys

from structae.config_files import check_files
from structae.errors import UserError

try:
    check_files(["config.yaml", *workflow.configfiles])
except UserError as err:
    sys.exit(f"structae: error: {err}")
