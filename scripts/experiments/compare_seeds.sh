#!/usr/bin/env bash
# Issue 33's reruns of the comparisons with the generator's own training seed in the interval:
# the cgan (today's defaults) and the diffusion baseline, 3 training seeds each
# (train-gen --seeds 0,1,2), 30 CPU-minutes per run (clock=cpu: the process's CPU seconds on one
# thread, so other jobs cannot shorten a run), the two generators' chains at once on the two
# cores. Then compare on val (to choose nothing: the per-replicate spread) and on test with
# replicated arms cgan=R1,R2,R3 diffusion=R4,R5,R6 (DPM-Solver++ 20 steps, guidance 2).
#   DATASET=nih32     the NIH images in ../shared at 32 px; cgan with class-balanced batches
#                     (as the NIH studies train), diffusion batch 32; No Finding, 45 val / 99 test
#   DATASET=pmnist32  PneumoniaMNIST (balanced subset) at 32 px; both generators' defaults;
#                     both classes, 234 per class on test (the test split's size), 45 on val
#   DATASET=nih64     the NIH images at 64 px, 60 CPU-minutes per run (issue 32's protocol);
#                     cgan class-balanced, diffusion's defaults (as issue 19's 64 px runs)
#   METRICS=fid,kid,pr,dc,fd_cxr  compare's --metrics (default: compare's own; nih64 adds
#                     fd_cxr, the distance in a chest-X-ray classifier's features)
# Resumable: a finished step's output is kept, a killed training run continues (train-gen --resume). Usage: DATASET=... compare_seeds.sh OUT
set -euo pipefail
PY=${PY:-.venv/bin/python}
DATASET=${DATASET:-nih32}
OUT=${1:-results/$DATASET-seeds}
MIN=${MINUTES:-30}
[ "$DATASET" = nih64 ] && MIN=${MINUTES:-60}
SEEDS=${SEEDS:-0,1,2}
CX=("$PY" -m cxraug)
export CXRAUG_THREADS=1
DIFF_SAMPLER=(--set sampler=dpmsolver++ --set steps=20 --set guidance=2)
case $DATASET in
  nih32) PREP=(--source nih --data-dir ../shared/data/nih-cxr14 --size 32); CGAN_SET=(--set balanced=true)
         DIFF_SET=(--batch-size 32); CLASSES="No Finding"; N_TEST=99 ;;
  nih64) PREP=(--source nih --data-dir ../shared/data/nih-cxr14 --size 64); CGAN_SET=(--set balanced=true)
         DIFF_SET=(); CLASSES="No Finding"; N_TEST=99; METRICS=${METRICS:-fid,kid,pr,dc,fd_cxr} ;;
  pmnist32) PREP=(--source medmnist --npz ../shared/data/medmnist/pneumoniamnist_balanced_subset.npz --size 32)
         CGAN_SET=(); DIFF_SET=(); CLASSES="No Finding,Pneumonia"; N_TEST=234 ;;
  *) echo "DATASET must be nih32, nih64 or pmnist32 (got $DATASET)" >&2; exit 2 ;;
esac
METRIC_ARGS=(); [ -n "${METRICS:-}" ] && METRIC_ARGS=(--metrics "$METRICS")
mkdir -p "$OUT"
t() { local s=$SECONDS; "$@"; echo "[$(date +%T)] $(( SECONDS - s )) s: ${*:3:3}" >> "$OUT/times.txt"; }

[ -f "$OUT/$DATASET/dataset.json" ] || t "${CX[@]}" prepare "${PREP[@]}" --out "$OUT/$DATASET"
seed_run() {  # NAME SEED: the run folder of that training seed under OUT/runs-NAME, if any
  local r
  for r in "$OUT/runs-$1"/*/; do
    [ -f "$r/config.json" ] && [ "$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["train"]["seed"])' "$r/config.json")" = "$2" ] && { echo "${r%/}"; return; }
  done
  return 0
}
chain() {  # NAME PLUGIN extra args...: one run folder per seed under OUT/runs-NAME; a killed run resumes
  local name=$1 plugin=$2 s run; shift 2
  [ -f "$OUT/runs-$name/done" ] && return
  for s in ${SEEDS//,/ }; do
    run=$(seed_run "$name" "$s")
    if [ -z "$run" ]; then
      t "${CX[@]}" train-gen --plugin "$plugin" --data "$OUT/$DATASET" --out "$OUT/runs-$name" --time-limit "$MIN" \
        --seed "$s" --set clock=cpu "$@" >> "$OUT/log-train-$name.txt" 2>&1
    elif ! grep -qE '"kind": "stop", "reason": "(time_limit|steps)"' "$run/metrics.jsonl"; then
      t "${CX[@]}" train-gen --resume "$run" >> "$OUT/log-train-$name.txt" 2>&1
    fi
  done
  touch "$OUT/runs-$name/done"
}
chain cgan cgan "${CGAN_SET[@]}" &
a=$!
chain diffusion diffusion "${DIFF_SET[@]}"
wait $a
runs() { find "$OUT/runs-$1" -mindepth 1 -maxdepth 1 -type d | sort | paste -sd, -; }
CGAN=cgan=$(runs cgan)
DIFF=diffusion=$(runs diffusion)
for split in val test; do
  n=45; [ "$split" = test ] && n=$N_TEST
  [ -f "$OUT/compare-$split/compare.json" ] || t "${CX[@]}" compare "$CGAN" "$DIFF" --split "$split" \
    --classes "$CLASSES" -n "$n" "${DIFF_SAMPLER[@]}" "${METRIC_ARGS[@]}" --out "$OUT/compare-$split" > "$OUT/log-compare-$split.txt" 2>&1
done
echo done >> "$OUT/times.txt"
