#!/usr/bin/env bash
# The whole pipeline on the real NIH images in ../shared at 64 px: prepare (patient-disjoint
# splits, NIH's test patients = test), cgan on the training patients, synthesize the rare
# classes that have training images, score, then real vs reweight vs oversample vs classic vs
# real+cgan (+100 images per rare class), 5 seeds. See docs/results/nih64.md for what this
# small set (788 single-label images) can and cannot show. The cgan: today's defaults, a budget
# of GAN_MINUTES (60) CPU-minutes of training steps (clock=cpu), the same command as the cgan of
# the NIH 64 px protocol (nih64_protocol.sh); RUN=path reuses such a run instead of training one
# (its data must be this folder's: prepare is deterministic, and synth and benchmark check the
# dataset's fingerprint).
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-results/nih64}
NIH=${NIH:-../shared/data/nih-cxr14}
CXR="$PY -m cxraug"
RARE=Consolidation,Emphysema,Fibrosis,Hernia,Mass,Pleural_Thickening,Pneumonia,Pneumothorax
mkdir -p "$OUT"
$CXR prepare --source nih --data-dir "$NIH" --size 64 --out "$OUT/nih64" --overwrite
if [ -z "${RUN:-}" ]; then
  $CXR train-gen --plugin cgan --data "$OUT/nih64" --out "$OUT/runs" --time-limit "${GAN_MINUTES:-60}" \
    --set balanced=true --set clock=cpu --set sample_every=500 --set checkpoint_every=500
  RUN=$(ls -d "$OUT"/runs/*-cgan-* | sort | tail -n 1)
fi
$CXR synth --run "$RUN" --class "$RARE" -n 100 --out "$OUT/synth-cgan" --overwrite
$CXR score --run "$RUN" -n 100 --out "$OUT/score-cgan" --overwrite
$CXR benchmark --data "$OUT/nih64" --synthetic cgan="$OUT/synth-cgan" \
  --arms real,reweight,oversample,classic,cgan --ratio +100 \
  --seeds 5 --set epochs="${EPOCHS:-8}" --out "$OUT/benchmark"
