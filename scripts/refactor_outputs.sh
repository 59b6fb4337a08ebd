#!/usr/bin/env bash
# Every command's outputs on phantom data and on the built-in real sample, at toy size, for a
# refactor's "outputs identical before and after" check: run it once on the commit before and
# once after (PYTHONPATH picks the tree), then `scripts/outputs_diff.py BEFORE AFTER`.
#   PYTHONPATH=/path/to/tree:/path/to/tree/plugins scripts/refactor_outputs.sh OUT [PYTHON]
# One thread, fixed seeds, step budgets (not minutes): two runs of the same tree give the same
# files but for timings. About 6 minutes on one core.
set -euo pipefail
OUT=${1:?usage: refactor_outputs.sh OUT [PYTHON]}
PY=${2:-.venv/bin/python}
export CXRAUG_THREADS=1 COLUMNS=160
CX=("$PY" -m cxraug)
[ -e "$OUT" ] && { echo "$OUT exists; choose a new folder" >&2; exit 2; }
mkdir -p "$OUT"
log() { "$@" >> "$OUT/printed.txt" 2>&1; }
TINY_CGAN=(--set z_dim=16 --set g_ch=4 --set d_ch=4 --set max_ch=16 --set embed_dim=8 --set standing_stats_batches=2)
TINY_DIFF=(--set 'block_out_channels=[8,16]')

# phantom: prepare, both generators, synth, score (run and images), compare, benchmark, report
log "${CX[@]}" prepare --source phantom --n 300 --size 32 --workers 1 --out "$OUT/phantom32"
log "${CX[@]}" train-gen --plugin cgan --data "$OUT/phantom32" --out "$OUT/runs" --steps 30 --batch-size 16 \
  "${TINY_CGAN[@]}" --set sample_every=10 --set checkpoint_every=10
log "${CX[@]}" train-gen --plugin diffusion --data "$OUT/phantom32" --out "$OUT/runs" --steps 4 --batch-size 8 \
  "${TINY_DIFF[@]}" --set sample_every=0 --set checkpoint_every=2
CGAN=$(find "$OUT/runs" -maxdepth 1 -name '*-cgan-*' | head -1)
DIFF=$(find "$OUT/runs" -maxdepth 1 -name '*-diffusion-*' | head -1)
log "${CX[@]}" synth --run "$CGAN" --class "No Finding" -n 40 --out "$OUT/synth-cgan"
log "${CX[@]}" synth --run "$DIFF" --class "No Finding" -n 40 --set steps=4 --out "$OUT/synth-diffusion"
log "${CX[@]}" score --run "$CGAN" --classes "No Finding" --n 24 --min-images 10 --out "$OUT/score-run"
log "${CX[@]}" score --images "$OUT/synth-cgan" --data "$OUT/phantom32" --min-images 10 --out "$OUT/score-images"
log "${CX[@]}" compare "$CGAN" "$DIFF" --classes "No Finding" --n 24 --min-images 10 --set steps=4 \
  --out "$OUT/compare"
log "${CX[@]}" benchmark --data "$OUT/phantom32" --synthetic "cgan=$OUT/synth-cgan" --seeds 3 --set model=tiny \
  --set epochs=1 --set plots=false --set bootstrap_draws=200 --force --out "$OUT/benchmark"
log "${CX[@]}" report --benchmark "$OUT/benchmark" --compare "$OUT/compare" --out "$OUT/report/index.html"
log "${CX[@]}" report --run "$CGAN"

# the built-in sample: a toy study (reduced sets, both generators, benchmark, compare, page)
log "${CX[@]}" prepare --source sample --size 32 --out "$OUT/sample32"
cat > "$OUT/toy-study.yaml" <<'EOF'
compare_n: 20
compare_bootstrap: 50
compare_min_images: 10
compare_speed_images: 8
compare_metrics: [fid, kid]
compare_memorization: false
gen_sets:
  cgan: {batch_size: 16, z_dim: 16, g_ch: 4, d_ch: 4, max_ch: 16, embed_dim: 8, standing_stats_batches: 2,
         sample_every: 0}
  diffusion: {batch_size: 8, block_out_channels: [8, 16], sample_every: 0}
sample_sets:
  diffusion: {steps: 4}
bench_sets: {model: tiny, epochs: 1, bootstrap_draws: 200, plots: false}
EOF
log "${CX[@]}" study --data "$OUT/sample32" --rare "No Finding" --sizes 10,20 --gen-steps cgan=8,diffusion=2 \
  --seeds 3 --ratios fill --config "$OUT/toy-study.yaml" --out "$OUT/study"
echo "done: $OUT"
