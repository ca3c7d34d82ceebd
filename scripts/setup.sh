#!/usr/bin/env bash
# Installs structae with one set of its extras: `scripts/setup.sh workflow` (default; what `make all` needs:
# Snakemake, its SLURM plugin, DVC) or `scripts/setup.sh dev` (that plus the test and lint tools: `make test`).
# - Into the active virtualenv or conda environment when there is one (a GPU cluster keeps its torch),
#   otherwise into ./.venv, created here.
# - Only where no torch is importable does it install one: the CPU build 2.13.0, which is what a laptop
#   or CI needs; an unpinned `torch` would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-workflow}
case $extras in
  workflow|dev) ;;
  *) echo "setup: unknown extras '$extras'; use workflow (the pipeline) or dev (plus tests and linters)" >&2; exit 2 ;;
esac

if [[ -n "${VIRTUAL_ENV:-}" ]]; then env_dir=$VIRTUAL_ENV
elif [[ -n "${CONDA_PREFIX:-}" ]]; then env_dir=$CONDA_PREFIX
else
  env_dir=.venv
  if [[ ! -x $env_dir/bin/python ]]; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "structae needs Python >= 3.11; found $(python3 --version)" >&2; exit 1; }
    python3 -m venv "$env_dir"
  fi
fi
py=$env_dir/bin/python
pip=("$py" -m pip install --quiet --disable-pip-version-check)

if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "setup: no torch in $env_dir; installing the CPU build (torch==2.13.0)"
  # TORCH_INDEX_URL lets a machine without the local wheel take the CPU build from PyTorch's index.
  "${pip[@]}" "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
echo "setup: installing structae (editable) with its $extras extras into $env_dir"
"${pip[@]}" -e ".[$extras]"
touch "$env_dir/.structae-$extras-installed"
if [[ $extras == dev ]]; then  # dev includes the workflow extras
  touch "$env_dir/.structae-workflow-installed"
fi
