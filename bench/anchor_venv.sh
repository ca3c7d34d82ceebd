#!/usr/bin/env bash
# Make a throwaway virtualenv for running a public implementation (an "anchor") beside ours in bench/.
#   bench/anchor_venv.sh DIR [PACKAGE ...]
# DIR must lie outside this repository (the anchors' code and environments are never part of it). The venv
# gets the same torch as ours (2.13.0, the CPU build from this machine's disk) so that the comparison measures
# the code, not the library version; PACKAGE... are the anchor's own imports (see docs/benchmarks.md).
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: bench/anchor_venv.sh DIR [PACKAGE ...]" >&2
  exit 2
fi
dir=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
target=$(cd "$dir" && pwd)
if [[ "$target/" == "$repo/"* ]]; then
  echo "anchor_venv: $target is inside the repository; choose a directory outside it (e.g. /tmp/anchors/venv-NAME)" >&2
  exit 2
fi
python3 -m venv "$target"
"$target/bin/pip" install --quiet --disable-pip-version-check "torch==2.13.0" "$@"
echo "anchor_venv: $target/bin/python"
