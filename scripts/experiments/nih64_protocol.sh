#!/usr/bin/env bash
# Issue 19's NIH 64 px protocol (its variant's keys were removed in issue 32: rerun it at commit
# 940657f): the cgan (defaults, and low-pass resampling with reflect
# padding) and the diffusion baseline, 60 CPU-minutes each (clock=cpu, one thread each, so three
# jobs on two cores still get their whole budget), scored with three sampling seeds on val (the
# choice) and then on test (the report). Every stage resumes: rerun the script after a stop.
#   scripts/experiments/nih64_protocol.sh OUT
set -euo pipefail
OUT=${1:?usage: nih64_protocol.sh OUT}
PY=${PY:-python}
GQ=(benchmarks/gan_quality.py --dataset nih64 --out "$OUT" --budgets 60 --diffusion-minutes 60
    --seeds 0,1,2 --metrics fid,kid,pr,fd_cxr --n 100)
MAIN=(--cgan-set balanced=true --cgan-set clock=cpu --diffusion-set clock=cpu)
VARIANT=(--no-diffusion --name bilinear-reflect --cgan-set balanced=true --cgan-set clock=cpu
         --cgan-set resample=bilinear --cgan-set g_pad=reflect --threads 1)
for split in val test; do
  # the floor and the real texture first, alone, so the two processes below do not race on them
  "$PY" "${GQ[@]}" --split "$split" --only floor --threads 2 > "$OUT/log-floor-$split.txt" 2>&1
  "$PY" "${GQ[@]}" --split "$split" "${MAIN[@]}" --jobs 2 --threads 2 > "$OUT/log-main-$split.txt" 2>&1 &
  a=$!
  "$PY" "${GQ[@]}" --split "$split" "${VARIANT[@]}" > "$OUT/log-variant-$split.txt" 2>&1
  wait $a
done
"$PY" "${GQ[@]}" --split test --report-only --name bilinear-reflect > "$OUT/report-test-variant.md"
"$PY" "${GQ[@]}" --split val --report-only --name bilinear-reflect > "$OUT/report-val-variant.md"
echo done
