# structae: raw data to paper figures for CAE, IODINE, MAGANet and SWWAE. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/figures.smk"


rule all:
    input:
        all_targets(),
    default_target: True


rule cae:
    input:
        paper_targets("cae"),


rule iodine:
    input:
        paper_targets("iodine"),


rule maganet:
    input:
        paper_targets("maganet"),


rule swwae:
    input:
        paper_targets("swwae"),
