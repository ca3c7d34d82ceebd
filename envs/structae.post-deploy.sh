#!/usr/bin/env bash
# Snakemake runs this once after it creates envs/structae.yaml's environment, inside that environment, from
# the workflow's directory (its working directory). It installs the structae package there, editable, so the
# environment runs this checkout's code (its dependencies are the environment's pinned conda packages).
set -euo pipefail
if ! grep -qs '^name = "structae"$' pyproject.toml; then
    echo "structae: error: envs/structae.post-deploy.sh runs from the structae workflow's directory, and $PWD" \
        "has no structae pyproject.toml; run snakemake from the repository's root" >&2
    exit 1
fi
python -m pip install --quiet --no-deps --no-build-isolation --editable .
