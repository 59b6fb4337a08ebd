#!/usr/bin/env bash
# The NIH 32 px study, rerun after issues 19 and 21: two cgan recipes (today's defaults and
# transitional conditioning) and the diffusion baseline, 30 CPU-minutes each (clock=cpu: the
# process's CPU seconds on one thread, so other jobs on a shared machine cannot shorten a
# run), the three at once; the cgan recipe chosen on the validation split's No Finding images,
# then compare on the test split and the benchmark with 6 arms x 5 seeds. Resumable step by
# step: a finished step's output is kept. Usage: scripts/experiments/nih32_rerun.sh OUT
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-results/nih32}
MIN=${MINUTES:-30}
CX=("$PY" -m cxraug)
export CXRAUG_THREADS=1
RARE=Consolidation,Emphysema,Fibrosis,Hernia,Mass,Pleural_Thickening,Pneumonia,Pneumothorax
DIFF_SAMPLER=(--set sampler=dpmsolver++ --set steps=20 --set guidance=2)
mkdir -p "$OUT"
t() { local s=$SECONDS; "$@"; echo "[$(date +%T)] $(( SECONDS - s )) s: ${*:3:3}" >> "$OUT/times.txt"; }

[ -f "$OUT/nih32/dataset.json" ] || t "${CX[@]}" prepare --source nih --data-dir ../shared/data/nih-cxr14 --size 32 --out "$OUT/nih32"
gen() {  # NAME PLUGIN extra args...
  local name=$1 plugin=$2; shift 2
  local run=$OUT/runs/$name
  if [ -f "$run/export/config.json" ] && grep -q time_limit "$run/metrics.jsonl" 2>/dev/null && tail -1 "$run/metrics.jsonl" | grep -q '"stop"'; then return; fi
  if [ -d "$run" ]; then t "${CX[@]}" train-gen --resume "$run" > "$OUT/log-$name.txt" 2>&1; return; fi
  mkdir -p "$OUT/tmp-$name"
  t "${CX[@]}" train-gen --plugin "$plugin" --data "$OUT/nih32" --out "$OUT/tmp-$name" --time-limit "$MIN" \
    --seed 0 --set clock=cpu "$@" > "$OUT/log-$name.txt" 2>&1
  mkdir -p "$OUT/runs" && mv "$OUT/tmp-$name"/0* "$run" && rm -r "$OUT/tmp-$name"  # and its lock file
}
gen cgan cgan --set balanced=true &
a=$!
gen cgan-trans cgan --set balanced=true --set cond_start_kimg=50 --set cond_end_kimg=200 &
b=$!
gen diffusion diffusion --batch-size 32
wait $a $b

# Choose the cgan recipe on validation (45 No Finding images there), report on test.
[ -f "$OUT/compare-val/compare.json" ] || t "${CX[@]}" compare "$OUT/runs/cgan" "$OUT/runs/cgan-trans" "$OUT/runs/diffusion" \
  --split val --classes "No Finding" -n 45 "${DIFF_SAMPLER[@]}" --out "$OUT/compare-val" > "$OUT/log-compare-val.txt" 2>&1
BEST=$("$PY" - "$OUT/compare-val/compare.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["class"] == "No Finding" and r["run"].startswith("cgan")]
print(min(rows, key=lambda r: float(r["fid"]))["run"])
PY
)
echo "cgan recipe chosen on val (No Finding FID): $BEST" | tee "$OUT/chosen.txt"

[ -f "$OUT/synth-cgan/manifest.csv" ] || t "${CX[@]}" synth --run "$OUT/runs/$BEST" --class "$RARE" -n 100 --out "$OUT/synth-cgan" > "$OUT/log-synth-cgan.txt" 2>&1
[ -f "$OUT/synth-diffusion/manifest.csv" ] || t "${CX[@]}" synth --run "$OUT/runs/diffusion" --class "$RARE" -n 100 "${DIFF_SAMPLER[@]}" \
  --out "$OUT/synth-diffusion" > "$OUT/log-synth-diffusion.txt" 2>&1
# The benchmark spread over two processes of one thread each (--spread runs; bit-identical to one process).
t "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 -m cxraug benchmark --data "$OUT/nih32" \
  --synthetic cgan="$OUT/synth-cgan" --synthetic diffusion="$OUT/synth-diffusion" \
  --arms real,reweight,oversample,classic,cgan,diffusion --ratio +100 --seeds 5 --set epochs=8 \
  --out "$OUT/benchmark" > "$OUT/log-benchmark.txt" 2>&1
[ -f "$OUT/compare-test/compare.json" ] || t "${CX[@]}" compare "$OUT/runs/cgan" "$OUT/runs/cgan-trans" "$OUT/runs/diffusion" \
  --split test --classes "No Finding" -n 99 --benchmark "$OUT/benchmark" "${DIFF_SAMPLER[@]}" \
  --out "$OUT/compare-test" > "$OUT/log-compare-test.txt" 2>&1
echo done >> "$OUT/times.txt"
