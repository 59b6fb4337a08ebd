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
# Variants whose keys were removed in issue 32 (R3GAN's objective, transitional conditioning, the
# reconstruction head, bilinear resampling, the normalisation-free G, AugSelf, UTLO, the shared
# latent, mode seeking) ran at commit 940657f; their results are in docs/results/gan-recipe.md.
# dfeat / dfeat-up2: the pretrained-feature D (issue 32) at the image size and upsampled 2x;
# their rates are 414.9 over the step-cost ratios measured at 32 px in one run (2.50 and 5.58,
# docs/plugins/cgan.md): remeasure them on an idle machine before a screen that decides.
# dfeat-w01-warm: the feature D at a tenth of the weight after a Vision-aided warm-up of 128 kimg
# (2,000 steps at batch 64, at the defaults' rate; the remaining minutes at dfeat's): 2000/414.9
# + (S - 2000)/166.0 = 10 minutes gives S = 2,860 steps, 286.0 a minute on average.
VARIANTS=(
  "defaults|414.9|"
  "defaults-t1|414.9|train_seed=1"
  "defaults-t2|414.9|train_seed=2"
  "dfeat|166.0|d_features=true"
  "dfeat-t1|166.0|d_features=true train_seed=1"
  "dfeat-t2|166.0|d_features=true train_seed=2"
  "dfeat-w01|166.0|d_features=true d_features_weight=0.1"
  "dfeat-w01-t1|166.0|d_features=true d_features_weight=0.1 train_seed=1"
  "dfeat-w01-t2|166.0|d_features=true d_features_weight=0.1 train_seed=2"
  "dfeat-up2|74.4|d_features=true d_features_upsample=2"
  "dfeat-up2-t1|74.4|d_features=true d_features_upsample=2 train_seed=1"
  "dfeat-up2-t2|74.4|d_features=true d_features_upsample=2 train_seed=2"
  "dfeat-w01-warm|286.0|d_features=true d_features_weight=0.1 d_features_warmup_kimg=128"
  "dfeat-w01-warm-t1|286.0|d_features=true d_features_weight=0.1 d_features_warmup_kimg=128 train_seed=1"
  "dfeat-w01-warm-t2|286.0|d_features=true d_features_weight=0.1 d_features_warmup_kimg=128 train_seed=2"
  "augp03|414.9|aug_p=0.3"
  "augp08|414.9|aug_p=0.8"
  "natural|414.9|balanced=false"
)
[ -n "${ONLY:-}" ] && mapfile -t VARIANTS < <(printf '%s\n' "${VARIANTS[@]}" | grep -E "^(${ONLY})\|")
[ -n "${EXTRA_VARIANT:-}" ] && VARIANTS+=("$EXTRA_VARIANT")
GQ=(benchmarks/gan_quality.py --out "$OUT" --split val --n 135 --budgets "$MIN" --no-diffusion --threads 1)
BASE_SETS=""
if [ "${DATASET:-pmnist32}" = nih32 ]; then
  # The decision metrics share no weights with a D on ImageNet features (issue 32): FD_cxr, KID
  # and precision/recall in the reference classifier's features; Inception FID beside them.
  GQ+=(--dataset nih32 --match-real --seeds 0,1,2 --metrics fid,kid,pr,fd_cxr)
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
