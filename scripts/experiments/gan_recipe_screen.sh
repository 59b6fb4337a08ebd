#!/usr/bin/env bash
# Issue 19's screen: each cgan recipe variant for the same CPU-minutes on one thread, scored on
# the PneumoniaMNIST *validation* split (135 per class), two variants at a time on the two
# cores. The budget is in steps: MINUTES x the variant's steps per minute on one thread alone
# (the defaults' measured rate, 414.9, over the step-cost ratio of benchmarks/cgan_step_cost.py
# measured in one run), so other jobs on the machine cannot shorten a run. Variants are
# "name|steps per minute|key=value key=value" (train_seed=N among them: the training seed, 0
# by default, for the spread over training runs). Results: OUT/results/val/NAME-Mmin.json and
# OUT/report-val.md (benchmarks/gan_quality.py's protocol; an interrupted screen resumes).
# DATASET=nih32 screens on the NIH images instead (class-balanced batches, as the NIH studies
# train; per class as many samples as val has real images, three sampling seeds).
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-results/gan-screen}
MIN=${MINUTES:-10}
R3="loss=rpgan d_sn=false d_act=lrelu d_zero_init=true beta2=0.99 beta2_start=0.9 burnin_kimg=50"
VARIANTS=(
  "defaults|414.9|"
  "augp03|414.9|aug_p=0.3"
  "r3-g005|286|$R3 gamma=0.05"
  "r3-g02|286|$R3 gamma=0.2"
  "transitional|414.9|cond_start_kimg=25 cond_end_kimg=100"
  "recon|388|recon_weight=1"
  "bilinear|367|resample=bilinear"
  "nf-g|432|g_norm=none"
  "r3-nf-g005|280|$R3 gamma=0.05 g_norm=none"
  "augself|414.9|augself_weight=1"
  "utlo8|300.7|uc_res=8"
  "defaults-t1|414.9|train_seed=1"
  "defaults-t2|414.9|train_seed=2"
  "augself-t1|414.9|augself_weight=1 train_seed=1"
  "augself-t2|414.9|augself_weight=1 train_seed=2"
  "nf-g-t1|432|g_norm=none train_seed=1"
  "nf-g-t2|432|g_norm=none train_seed=2"
  "augp08|414.9|aug_p=0.8"
  "natural|414.9|balanced=false"
  "skipz|414.9|g_skip_z=true"
  "ms1|414.9|ms_weight=1"
  "ms1-t1|414.9|ms_weight=1 train_seed=1"
  "ms01|414.9|ms_weight=0.1"
)
[ -n "${ONLY:-}" ] && mapfile -t VARIANTS < <(printf '%s\n' "${VARIANTS[@]}" | grep -E "^(${ONLY})\|")
[ -n "${EXTRA_VARIANT:-}" ] && VARIANTS+=("$EXTRA_VARIANT")
GQ=(benchmarks/gan_quality.py --out "$OUT" --split val --n 135 --budgets "$MIN" --no-diffusion --threads 1)
BASE_SETS=""
if [ "${DATASET:-pmnist32}" = nih32 ]; then
  GQ+=(--dataset nih32 --match-real --seeds 0,1,2)
  BASE_SETS="balanced=true"
fi
$PY "${GQ[@]}" --only floor > /dev/null  # the real floor once, before the pairs start
run() {
  local name=${1%%|*} rest=${1#*|}
  local rate=${rest%%|*} sets="$BASE_SETS ${rest#*|}" flags=()
  for s in $sets; do
    if [[ $s == train_seed=* ]]; then flags+=(--train-seed "${s#train_seed=}"); else flags+=(--cgan-set "$s"); fi
  done
  $PY "${GQ[@]}" --only cgan --name "$name" --cgan-steps-per-min "$rate" "${flags[@]}" > "$OUT/log-$name.txt" 2>&1
}
for ((i = 0; i < ${#VARIANTS[@]}; i += 2)); do
  run "${VARIANTS[i]}" &
  a=$!
  if ((i + 1 < ${#VARIANTS[@]})); then run "${VARIANTS[i + 1]}"; fi
  wait "$a"
done
$PY "${GQ[@]}" --report-only | tee "$OUT/report-val.md"
