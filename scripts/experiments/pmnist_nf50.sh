#!/usr/bin/env bash
# The controlled experiment on real data: PneumoniaMNIST (32 px), "No Finding" (normal) made
# rare by keeping 50 of its 1,214 training images (chosen by patient), then real vs reweight
# vs oversample vs classic vs real+cgan, 5 seeds. The generator is trained on the reduced
# training set only, so it has seen exactly the normal images the classifier keeps.
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
$CXR benchmark --data "$OUT/pmnist32" --controlled-imbalance "No Finding=50" \
  --synthetic cgan="$OUT/synth-cgan" --arms real,reweight,oversample,classic,cgan --ratio fill \
  --seeds 5 --set epochs="$EPOCHS" --out "$OUT/benchmark"
