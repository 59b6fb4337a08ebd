#!/usr/bin/env bash
# Issue 33's rerun of the NIH 32 px comparison with the generator's own training seed in the
# interval: the cgan (today's defaults, class-balanced batches as the NIH studies train) and the
# diffusion baseline, 3 training seeds each (train-gen --seeds 0,1,2), 30 CPU-minutes per run
# (clock=cpu: the process's CPU seconds on one thread, so other jobs cannot shorten a run), the
# two generators' chains at once on the two cores. Then compare on val (to choose nothing: the
# per-replicate spread) and on test with replicated arms cgan=R1,R2,R3 diffusion=R4,R5,R6.
# Resumable: a finished step's output is kept. Usage: scripts/experiments/nih32_seeds.sh OUT
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-results/nih32-seeds}
MIN=${MINUTES:-30}
SEEDS=${SEEDS:-0,1,2}
CX=("$PY" -m cxraug)
export CXRAUG_THREADS=1
DIFF_SAMPLER=(--set sampler=dpmsolver++ --set steps=20 --set guidance=2)
mkdir -p "$OUT"
t() { local s=$SECONDS; "$@"; echo "[$(date +%T)] $(( SECONDS - s )) s: ${*:3:3}" >> "$OUT/times.txt"; }

[ -f "$OUT/nih32/dataset.json" ] || t "${CX[@]}" prepare --source nih --data-dir ../shared/data/nih-cxr14 --size 32 --out "$OUT/nih32"
chain() {  # NAME PLUGIN extra args...: one run folder per seed under OUT/runs-NAME
  local name=$1 plugin=$2; shift 2
  [ -f "$OUT/runs-$name/done" ] && return
  t "${CX[@]}" train-gen --plugin "$plugin" --data "$OUT/nih32" --out "$OUT/runs-$name" --time-limit "$MIN" \
    --seeds "$SEEDS" --set clock=cpu "$@" > "$OUT/log-train-$name.txt" 2>&1
  touch "$OUT/runs-$name/done"
}
chain cgan cgan --set balanced=true &
a=$!
chain diffusion diffusion --batch-size 32
wait $a
runs() { find "$OUT/runs-$1" -mindepth 1 -maxdepth 1 -type d | sort | paste -sd, -; }
CGAN=cgan=$(runs cgan)
DIFF=diffusion=$(runs diffusion)
for split in val test; do
  n=45; [ "$split" = test ] && n=99
  [ -f "$OUT/compare-$split/compare.json" ] || t "${CX[@]}" compare "$CGAN" "$DIFF" --split "$split" \
    --classes "No Finding" -n "$n" "${DIFF_SAMPLER[@]}" --out "$OUT/compare-$split" > "$OUT/log-compare-$split.txt" 2>&1
done
echo done >> "$OUT/times.txt"
