#!/usr/bin/env bash
# The main job end to end on the embedded phantom set (procedural, NOT real data), sized to
# finish in about 10 minutes on 2 CPU cores. Called by `make demo`.
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${2:-demo-output}
CXR="$PY -m cxraug"
RARE=Hernia,Pneumonia
mkdir -p "$OUT"
t0=$(date +%s)

echo "== 1/5 prepare: phantom chest X-rays, 32 px (NOT real data)"
$CXR prepare --source phantom --n 1500 --size 32 --out "$OUT/phantom32" --overwrite

echo "== 2/5 train-gen: conditional GAN on the training patients"
$CXR train-gen --plugin cgan --data "$OUT/phantom32" --out "$OUT/runs" --steps 300 \
  --set balanced=true --set sample_every=100 --set checkpoint_every=100
RUN=$(ls -d "$OUT"/runs/*-cgan-phantom32 | sort | tail -n 1)

echo "== 3/5 synth: rare classes ($RARE)"
$CXR synth --run "$RUN" --class "$RARE" -n 700 --out "$OUT/synth-cgan" --overwrite

echo "== 4/5 score: FID/KID per class against the validation patients (rare classes have too few)"
$CXR score --run "$RUN" --classes "No Finding,Hernia" --n 40 --out "$OUT/score-cgan" --overwrite

echo "== 5/5 benchmark: real vs oversample vs real+cgan (all 1,400 synthetic images), 3 seeds"
$CXR benchmark --data "$OUT/phantom32" --synthetic cgan="$OUT/synth-cgan" \
  --arms real,oversample,cgan --seeds 3 --out "$OUT/benchmark" --overwrite \
  --set epochs=3 --set "rare_classes=[Hernia,Pneumonia]"

echo "demo finished in $(( $(date +%s) - t0 ))s (phantom data: the numbers show the pipeline, not medicine)"
echo "report: $OUT/benchmark/summary.md"
