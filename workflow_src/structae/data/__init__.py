"""Datasets: generators and converters, each writing the one HDF5 schema of structae.data.h5."""
