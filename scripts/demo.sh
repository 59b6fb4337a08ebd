#!/usr/bin/env bash
# The study in miniature on the real chest X-rays that ship with cxraug (PneumoniaMNIST sample,
# CC BY 4.0): `cxraug study` with a small preset. "No Finding" is cut to 10 and to 50 training
# images; at each size the cgan and the diffusion baseline are trained on that reduced set
# alone, their synthetic normal images fill the class up to the other one, and the classifier
# is benchmarked over 3 seeds against each generator's copy control and the best cheap
# baseline (chosen on validation), every arm trained for the same number of steps. Ends with
# the study page to open.
#
# Reproducible: the generators' budgets are STEPS, not minutes, so two runs give the same
# numbers on any machine (only the timings differ). The steps were sized once from the
# measured speed on the 2-core development machine (one thread: cgan 0.11 s/step, diffusion
# 0.97 s/step at 32 px), about 2 minutes of training per generator and size. The two sizes run
# as two shards at once, one thread each (the same cells as one process would make), then a
# last call writes the page from the finished cells. A killed demo continues where it stopped.
#   SIZES        "No Finding" training images kept (of 600)             10,50
#   CGAN_STEPS, DIFFUSION_STEPS  generator budgets, in steps             1000, 120
#   SEEDS, EPOCHS  classifier seeds, and passes over the largest arm    3, 2
#   COMPARE_N    synthetic images per generator in compare              100
#   STUDY_ARGS   more `cxraug study` options (e.g. --config FILE.yaml)
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${2:-demo-output}
SIZES=${SIZES:-10,50}
CGAN_STEPS=${CGAN_STEPS:-1000}
DIFFUSION_STEPS=${DIFFUSION_STEPS:-120}
SEEDS=${SEEDS:-3}
EPOCHS=${EPOCHS:-2}
COMPARE_N=${COMPARE_N:-100}
CXR="$PY -m cxraug"
mkdir -p "$OUT"
t_start=$(date +%s)
[ -f "$OUT/sample32/dataset.json" ] || $CXR prepare --source sample --size 32 --out "$OUT/sample32"
# shellcheck disable=SC2206  # STUDY_ARGS are options, split on purpose
STUDY=(study --data "$OUT/sample32" --rare "No Finding" --sizes "$SIZES" --generators cgan,diffusion
  --gen-steps "cgan=$CGAN_STEPS,diffusion=$DIFFUSION_STEPS" --set-gen cgan:balanced=true
  --set-gen diffusion:balanced=true --seeds "$SEEDS" --ratios fill --compare-n "$COMPARE_N"
  --set epochs="$EPOCHS" --set 'arms=[real,oversample,classic,logit-adjust,cgan,diffusion]' --out "$OUT/study" ${STUDY_ARGS:-})
CXRAUG_THREADS=1 $CXR "${STUDY[@]}" --shard 0/2 >"$OUT/shard-0.log" 2>&1 &
first=$!
CXRAUG_THREADS=1 $CXR "${STUDY[@]}" --shard 1/2 >"$OUT/shard-1.log" 2>&1 &
second=$!
status=0
wait "$first" || status=$?
wait "$second" || status=$?
[ "$status" = 0 ] || { tail -n 3 "$OUT"/shard-*.log >&2; echo "a shard failed; see $OUT/shard-*.log" >&2; exit "$status"; }
$CXR "${STUDY[@]}"  # every cell is done: reuses them all, prints the table, writes the page
echo "demo finished in $(($(date +%s) - t_start))s"
echo "open $(cd "$OUT/study" && pwd)/study.html"
