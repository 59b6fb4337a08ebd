#!/usr/bin/env bash
# The controlled experiment on real data: PneumoniaMNIST (32 px), "No Finding" (normal) made
# rare by keeping 50 of its 1,214 training images (chosen by patient), then the benchmark's
# default arms (the five cheap baselines, real+cgan, real+diffusion, each with +classic, and the
# copy and noise controls; every arm the same optimiser steps), SEEDS seeds (10). The generators are
# trained on the reduced training set only, so they have seen exactly the normal images the
# classifier keeps, each with today's defaults and the same budget of CPU-minutes of training
# steps (--time-limit with clock=cpu, so a busy machine does not shorten it). Each step
# refuses to overwrite; the benchmark resumes (finished arm x seed runs are kept).
# PARALLEL=1 trains the two generators at once, one thread each (a 2-core machine).
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-results/pmnist32-nf50}
NPZ=${NPZ:-../shared/data/medmnist/pneumoniamnist_balanced_subset.npz}
CXR="$PY -m cxraug"
EPOCHS=${EPOCHS:-3}
MINUTES=${MINUTES:-30}
mkdir -p "$OUT"
$CXR prepare --source medmnist --npz "$NPZ" --size 32 --out "$OUT/pmnist32" --overwrite
$CXR benchmark --data "$OUT/pmnist32" --controlled-imbalance "No Finding=50" \
  --export-reduced "$OUT/pmnist32-nf50" --overwrite
train_cgan() {
  $CXR train-gen --plugin cgan --data "$OUT/pmnist32-nf50" --out "$OUT/runs" --time-limit "$MINUTES" \
    --seed 0 --set balanced=true --set clock=cpu --set sample_every=2000 --set checkpoint_every=1000
}
train_diffusion() {
  $CXR train-gen --plugin diffusion --data "$OUT/pmnist32-nf50" --out "$OUT/runs" --time-limit "$MINUTES" \
    --batch-size 32 --seed 0 --set balanced=true --set clock=cpu --set sample_every=400 --set checkpoint_every=200
}
source "$(dirname "$0")/lib.sh"
train_pair "$OUT"
RUN=$(ls -d "$OUT"/runs/*-cgan-* | sort | tail -n 1)
$CXR synth --run "$RUN" --class "No Finding" -n 1200 --out "$OUT/synth-cgan" --overwrite
RUN=$(ls -d "$OUT"/runs/*-diffusion-* | sort | tail -n 1)
$CXR synth --run "$RUN" --class "No Finding" -n 1200 --out "$OUT/synth-diffusion" --overwrite \
  --set sampler=dpmsolver++ --set steps=20 --set guidance=2
$CXR benchmark --data "$OUT/pmnist32" --controlled-imbalance "No Finding=50" \
  --synthetic cgan="$OUT/synth-cgan" --synthetic diffusion="$OUT/synth-diffusion" \
  --ratio fill \
  --seeds "${SEEDS:-10}" --set epochs="$EPOCHS" --out "$OUT/benchmark"
