#!/usr/bin/env bash
# The controlled experiment on real data: PneumoniaMNIST (32 px), "No Finding" (normal) made
# rare by keeping 50 of its 1,214 training images (chosen by patient), then real vs reweight
# vs oversample vs classic vs real+cgan vs real+diffusion, 5 seeds. The generators are trained
# on the reduced training set only, so they have seen exactly the normal images the classifier
# keeps. Each step refuses to overwrite; the benchmark resumes (finished arm x seed runs are kept).
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-results/pmnist32-nf50}
NPZ=${NPZ:-../shared/data/medmnist/pneumoniamnist_balanced_subset.npz}
CXR="$PY -m cxraug"
EPOCHS=${EPOCHS:-3}
mkdir -p "$OUT"
$CXR prepare --source medmnist --npz "$NPZ" --size 32 --out "$OUT/pmnist32" --overwrite
$CXR benchmark --data "$OUT/pmnist32" --controlled-imbalance "No Finding=50" \
  --export-reduced "$OUT/pmnist32-nf50" --overwrite
$CXR train-gen --plugin cgan --data "$OUT/pmnist32-nf50" --out "$OUT/runs" --steps "${GAN_STEPS:-600}" \
  --set balanced=true --set sample_every=200 --set checkpoint_every=200
RUN=$(ls -d "$OUT"/runs/*-cgan-* | sort | tail -n 1)
$CXR synth --run "$RUN" --class "No Finding" -n 1200 --out "$OUT/synth-cgan" --overwrite
$CXR train-gen --plugin diffusion --data "$OUT/pmnist32-nf50" --out "$OUT/runs" \
  --steps "${DIFFUSION_STEPS:-1200}" --batch-size 32 --seed 0 \
  --set balanced=true --set sample_every=400 --set checkpoint_every=200
RUN=$(ls -d "$OUT"/runs/*-diffusion-* | sort | tail -n 1)
$CXR synth --run "$RUN" --class "No Finding" -n 1200 --out "$OUT/synth-diffusion" --overwrite \
  --set sampler=dpmsolver++ --set steps=20 --set guidance=2
$CXR benchmark --data "$OUT/pmnist32" --controlled-imbalance "No Finding=50" \
  --synthetic cgan="$OUT/synth-cgan" --synthetic diffusion="$OUT/synth-diffusion" \
  --arms real,reweight,oversample,classic,cgan,diffusion --ratio fill \
  --seeds 5 --set epochs="$EPOCHS" --out "$OUT/benchmark"
