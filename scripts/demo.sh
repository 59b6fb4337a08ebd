#!/usr/bin/env bash
# The main job, end to end, on the embedded phantom set (NOT real data). Called by `make demo`.
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${2:-demo-output}
CXR="$PY -m cxraug"
mkdir -p "$OUT"
$CXR prepare --source phantom --n 1500 --size 64 --out "$OUT/phantom64" --overwrite
$CXR info "$OUT/phantom64"
