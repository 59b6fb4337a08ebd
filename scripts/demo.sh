#!/usr/bin/env bash
# The study in miniature on the real chest X-rays that ship with cxraug (PneumoniaMNIST sample,
# CC BY 4.0): the normal class made rare in training, the cgan and the diffusion baseline
# trained with their default settings for the same short budget, synthetic normal images from
# both, the generators compared, and the classifier benchmarked over several seeds: does each
# generator's images beat their copy control (the 50 real normal films repeated to the same
# count) and the best cheap baseline (oversample, classical augmentation or logit adjustment,
# chosen on validation), every arm trained for the same number of steps, with a noise control
# beside them. Ends with the page to open.
# Called by `make demo`; sized to finish in about 10 minutes on 2 CPU cores. The numbers are
# real, the budget is small: the variables below make it larger, e.g. MINUTES=30 SEEDS=10.
#   MINUTES  training-step minutes per generator (both get the same)     3
#   KEEP     "No Finding" training images kept (of 600): the rare class  50
#   SEEDS, EPOCHS  classifier seeds, and passes over the largest arm      3, 3
#                  (every arm trains that many optimiser steps)
#   COMPARE_N      synthetic images per generator in compare             200
#   CGAN_ARGS, DIFFUSION_ARGS, COMPARE_ARGS, BENCH_ARGS: extra options for those commands
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${2:-demo-output}
MINUTES=${MINUTES:-3}
KEEP=${KEEP:-50}
SEEDS=${SEEDS:-3}
EPOCHS=${EPOCHS:-3}
COMPARE_N=${COMPARE_N:-200}
CXR="$PY -m cxraug"
RARE="No Finding"
mkdir -p "$OUT"
t_start=$(date +%s)
stage() { t_stage=$(date +%s); echo "== $1"; }
took() { echo "   ($1: $(($(date +%s) - t_stage))s)"; }

stage "1/6 prepare: the built-in real chest X-rays (PneumoniaMNIST sample) at 32 px; '$RARE' cut to $KEEP training images"
$CXR prepare --source sample --size 32 --out "$OUT/sample32" --overwrite
$CXR benchmark --data "$OUT/sample32" --controlled-imbalance "$RARE=$KEEP" \
  --export-reduced "$OUT/sample32-rare" --overwrite
took prepare

stage "2/6 train-gen: cgan and diffusion side by side, $MINUTES minutes of training steps each (one thread each)"
mkdir -p "$OUT/runs"
train() { # train PLUGIN EXTRA_ARGS: default settings, classes drawn equally often, the shared budget
  # shellcheck disable=SC2086  # EXTRA_ARGS are options, split on purpose
  CXRAUG_THREADS=1 $CXR train-gen --plugin "$1" --data "$OUT/sample32-rare" --out "$OUT/runs" \
    --time-limit "$MINUTES" --seed 0 --set balanced=true $2 >"$OUT/train-$1.log" 2>&1
}
train cgan "${CGAN_ARGS:-}" &
cgan_pid=$!
train diffusion "${DIFFUSION_ARGS:-}" &
diffusion_pid=$!
status=0
wait "$cgan_pid" || status=$?
wait "$diffusion_pid" || status=$?
[ "$status" = 0 ] || { tail -n 5 "$OUT"/train-*.log >&2; echo "a generator failed; see $OUT/train-*.log" >&2; exit "$status"; }
grep -h "^done:" "$OUT/train-cgan.log" "$OUT/train-diffusion.log" || true
CGAN_RUN=$(ls -d "$OUT"/runs/*-cgan-* | sort | tail -n 1)
DIFFUSION_RUN=$(ls -d "$OUT"/runs/*-diffusion-* | sort | tail -n 1)
took train-gen

N_SYNTH=$((600 - KEEP)) # fills the rare class up to the other one
stage "3/6 synth: $N_SYNTH synthetic '$RARE' images from each generator"
$CXR synth --run "$CGAN_RUN" --class "$RARE" -n "$N_SYNTH" --out "$OUT/synth-cgan" --overwrite
$CXR synth --run "$DIFFUSION_RUN" --class "$RARE" -n "$N_SYNTH" --out "$OUT/synth-diffusion" --overwrite
took synth

stage "4/6 compare: both generators' '$RARE' images against the same real validation images, with cost"
# shellcheck disable=SC2086
$CXR compare "$CGAN_RUN" "$DIFFUSION_RUN" --classes "$RARE" --n "$COMPARE_N" --out "$OUT/compare" --overwrite \
  ${COMPARE_ARGS:-}
took compare

stage "5/6 benchmark: each generator vs its copy and noise controls and the best baseline, equal steps, $SEEDS seeds"
# shellcheck disable=SC2086
$CXR benchmark --data "$OUT/sample32" --controlled-imbalance "$RARE=$KEEP" \
  --synthetic cgan="$OUT/synth-cgan" --synthetic diffusion="$OUT/synth-diffusion" \
  --arms real,oversample,classic,logit-adjust,cgan,diffusion,cgan+classic,diffusion+classic --ratio fill --seeds "$SEEDS" \
  --set epochs="$EPOCHS" --out "$OUT/benchmark" --overwrite ${BENCH_ARGS:-}
took benchmark

plural() { if [ "$1" = 1 ]; then echo "$1 $2"; else echo "$1 ${3:-$2s}"; fi; } # N SINGULAR [PLURAL]
BUDGET="A small budget: each generator trained for $(plural "$MINUTES" minute) of training steps (one thread each), \
the classifier the same steps for every arm ($(plural "$EPOCHS" pass passes) over the largest) x $(plural "$SEEDS" seed), \
on PneumoniaMNIST at 32 px with '$RARE' cut to $KEEP training images. The numbers are real; a study needs far more."
stage "6/6 report: the front page"
$CXR report --benchmark "$OUT/benchmark" --compare "$OUT/compare" --out "$OUT/index.html" --overwrite \
  --note "$BUDGET"
took report

echo "demo finished in $(($(date +%s) - t_start))s. $BUDGET"
echo "open $(cd "$OUT" && pwd)/index.html"
