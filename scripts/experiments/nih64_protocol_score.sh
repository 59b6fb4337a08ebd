#!/usr/bin/env bash
# The scoring half of nih64_protocol.sh, as it was run on 2026-12-05: diffusion samples at about
# 0.5 img/s at 64 px on one thread, so 100 images per class x 14 classes x 3 seeds (the
# protocol's first form) would take hours. Here each class draws as many images as the split
# has real ones (--match-real: No Finding 99 on test, the pooled "all" row exact), the choice
# between the two cgans is made on val with sampling seed 0, and test gets seeds 0,1,2.
#   scripts/experiments/nih64_protocol_score.sh OUT     (after nih64_protocol.sh's training)
set -euo pipefail
OUT=${1:?usage: nih64_protocol_score.sh OUT}
PY=${PY:-python}
GQ=(benchmarks/gan_quality.py --dataset nih64 --out "$OUT" --budgets 60 --diffusion-minutes 60
    --metrics fid,kid,pr,fd_cxr --n 100 --match-real --threads 1)
MAIN=(--cgan-set balanced=true --cgan-set clock=cpu --diffusion-set clock=cpu)
VARIANT=(--no-diffusion --name bilinear-reflect --cgan-set balanced=true --cgan-set clock=cpu
         --cgan-set resample=bilinear --cgan-set g_pad=reflect)
lane_cgans() {
  "$PY" "${GQ[@]}" --split val --seeds 0 "${MAIN[@]}" --only cgan
  "$PY" "${GQ[@]}" --split val --seeds 0 "${VARIANT[@]}" --only cgan
  "$PY" "${GQ[@]}" --split test --seeds 0,1,2 "${MAIN[@]}" --only cgan
  "$PY" "${GQ[@]}" --split test --seeds 0,1,2 "${VARIANT[@]}" --only cgan
}
lane_diffusion() {
  "$PY" "${GQ[@]}" --split val --seeds 0 --only floor
  "$PY" "${GQ[@]}" --split val --seeds 0 "${MAIN[@]}" --only diffusion
  "$PY" "${GQ[@]}" --split test --seeds 0 --only floor
  "$PY" "${GQ[@]}" --split test --seeds 0,1,2 "${MAIN[@]}" --only diffusion
}
lane_cgans > "$OUT/log-score-cgans.txt" 2>&1 &
a=$!
lane_diffusion > "$OUT/log-score-diffusion.txt" 2>&1
wait $a
for split in val test; do
  "$PY" "${GQ[@]}" --split "$split" --report-only > "$OUT/report-$split.md"
  "$PY" "${GQ[@]}" --split "$split" --report-only --name bilinear-reflect > "$OUT/report-$split-variant.md"
done
echo done
