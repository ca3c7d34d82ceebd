"""structae: raw data to paper figures for CAE, IODINE, MAGANet and SWWAE.

The package runs without Snakemake; every workflow rule calls its `structae` command line.
"""

__version__ = "0.1.0"
