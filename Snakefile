# structae: raw data to paper figures for CAE, IODINE, MAGANet and SWWAE. See README.md.
from snakemake.utils import min_version

min_version("9.0")


include: "rules/config_files.smk"


# One scale at a time: `snakemake --config scale=paper` reads config.yaml and config/paper.yaml,
# `--config scale=tiny` config/tiny.yaml alone (rules/config_files.smk); --configfile layers files on top.
for path in SCALE_FILES:

    configfile: path


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/provenance.smk"


# A requested path can never smuggle shell syntax or `..` into a job: every wildcard is a safe name or a
# rule's narrower choice (and shell lines quote every value with :q as well).
wildcard_constraints:
    dataset=SAFE_NAME,
    split=SAFE_NAME,
    experiment=SAFE_NAME,
    paper=SAFE_NAME,
    figure=SAFE_NAME,
    seed=r"\d+",


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/figures.smk"
include: "rules/report.smk"


rule all:
    """Every paper's datasets, models, tables and figures at the configured scale."""
    default_target: True
    input:
        all_targets(),


rule cae:
    """The CAE paper's targets."""
    input:
        paper_targets("cae"),


rule iodine:
    """The IODINE paper's targets."""
    input:
        paper_targets("iodine"),


rule maganet:
    """The MAGANet paper's targets (with the VAE baseline)."""
    input:
        paper_targets("maganet"),


rule swwae:
    """The SWWAE paper's targets."""
    input:
        paper_targets("swwae"),
