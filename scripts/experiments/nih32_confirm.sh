#!/usr/bin/env bash
# Issue 19's NIH 32 px confirmation on the test split: cgan recipes chosen on val by the screen
# (gan_recipe_screen.sh with DATASET=nih32) against the diffusion baseline, 30 CPU-minutes each
# (clock=cpu, one thread each, all at once), then `cxraug compare` on the test split's No
# Finding images (99 of 15 patients, patients resampled, Holm over the family) as
# compare-nih32.md does. Resumable: a finished run or compare is kept.
#   CGANS="cgan|balanced=true natural|balanced=false" scripts/experiments/nih32_confirm.sh OUT
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:?usage: nih32_confirm.sh OUT}
MIN=${MINUTES:-30}
CX=("$PY" -m cxraug)
export CXRAUG_THREADS=1
read -r -a CGANS <<< "${CGANS:-cgan|balanced=true natural|balanced=false}"
mkdir -p "$OUT"
[ -f "$OUT/nih32/dataset.json" ] || "${CX[@]}" prepare --source nih --data-dir ../shared/data/nih-cxr14 --size 32 --out "$OUT/nih32"
gen() {  # NAME PLUGIN extra args...
  local name=$1 plugin=$2; shift 2
  local run=$OUT/runs/$name
  if [ -f "$run/export/config.json" ] && tail -n 1 "$run/metrics.jsonl" | grep -q '"stop"'; then return; fi
  if [ -d "$run" ]; then "${CX[@]}" train-gen --resume "$run" > "$OUT/log-$name.txt" 2>&1; return; fi
  mkdir -p "$OUT/tmp-$name"
  "${CX[@]}" train-gen --plugin "$plugin" --data "$OUT/nih32" --out "$OUT/tmp-$name" --time-limit "$MIN" \
    --seed 0 --set clock=cpu "$@" > "$OUT/log-$name.txt" 2>&1
  mkdir -p "$OUT/runs" && mv "$OUT/tmp-$name"/0* "$run" && rm -r "$OUT/tmp-$name"  # and its lock file
}
pids=() names=()
for c in "${CGANS[@]}"; do
  name=${c%%|*} sets=()
  for s in ${c#*|}; do sets+=(--set "$s"); done
  gen "$name" cgan "${sets[@]}" &
  pids+=($!) names+=("$OUT/runs/$name")
done
gen diffusion diffusion --batch-size 32
for p in "${pids[@]}"; do wait "$p"; done
[ -f "$OUT/compare-test/compare.json" ] || "${CX[@]}" compare "${names[@]}" "$OUT/runs/diffusion" \
  --split test --classes "No Finding" -n 99 --set sampler=dpmsolver++ --set steps=20 --set guidance=2 \
  --out "$OUT/compare-test" > "$OUT/log-compare-test.txt" 2>&1
echo done
