# structae: raw data to paper figures for CAE, IODINE, MAGANet and SWWAE. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/figures.smk"


rule all:
    input:
        all_targets(),
    default_target: True
