#!/usr/bin/env bash
# The real NIH images in ../shared at 32 px, where the diffusion baseline is affordable on a
# CPU: cgan and diffusion on the training patients (the runs of docs/results/diffusion-nih32.md),
# +100 synthetic images for each rare class with training images, then real vs reweight vs
# oversample vs classic vs real+cgan vs real+diffusion, 5 seeds (docs/results/nih64.md), and
# the two generators side by side on NIH's test patients (cxraug compare, No Finding).
# Both generators get the same budget of training-step minutes (--time-limit MINUTES, default
# 30); the cgan as published: today's fixed augmentation p of 0.5, without the minibatch std
# (mbstd_group=0; it became a default after these runs; docs/plugins/cgan.md). PARALLEL=1 trains both at once, one
# thread each (a 2-core machine).
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-results/nih32}
NIH=${NIH:-../shared/data/nih-cxr14}
CXR="$PY -m cxraug"
RARE=Consolidation,Emphysema,Fibrosis,Hernia,Mass,Pleural_Thickening,Pneumonia,Pneumothorax
MINUTES=${MINUTES:-30}
mkdir -p "$OUT"
$CXR prepare --source nih --data-dir "$NIH" --size 32 --out "$OUT/nih32" --overwrite
train_cgan() {
  $CXR train-gen --plugin cgan --data "$OUT/nih32" --out "$OUT/runs" --time-limit "$MINUTES" --seed 0 \
    --set balanced=true --set mbstd_group=0 --set sample_every=2000 --set checkpoint_every=1000
}
train_diffusion() {
  $CXR train-gen --plugin diffusion --data "$OUT/nih32" --out "$OUT/runs" --time-limit "$MINUTES" \
    --batch-size 32 --seed 0 --set sample_every=200 --set checkpoint_every=200
}
source "$(dirname "$0")/lib.sh"
train_pair "$OUT"
CGAN=$(ls -d "$OUT"/runs/*-cgan-* | sort | tail -n 1)
DIFF=$(ls -d "$OUT"/runs/*-diffusion-* | sort | tail -n 1)
$CXR synth --run "$CGAN" --class "$RARE" -n 100 --out "$OUT/synth-cgan" --overwrite
$CXR synth --run "$DIFF" --class "$RARE" -n 100 --out "$OUT/synth-diffusion" --overwrite \
  --set sampler=dpmsolver++ --set steps=20 --set guidance=2
$CXR benchmark --data "$OUT/nih32" --synthetic cgan="$OUT/synth-cgan" --synthetic diffusion="$OUT/synth-diffusion" \
  --arms real,reweight,oversample,classic,cgan,diffusion --ratio +100 \
  --seeds 5 --set epochs="${EPOCHS:-8}" --out "$OUT/benchmark"
$CXR compare "$CGAN" "$DIFF" --split test --classes "No Finding" -n 99 --benchmark "$OUT/benchmark" \
  --set sampler=dpmsolver++ --set steps=20 --set guidance=2 --out "$OUT/compare"
