#!/usr/bin/env bash
# The ResNet-18 experiment on one accelerator (an H200), in under 8 minutes:
#   1. throughput of the train step at batch 8192 in bfloat16, fractal schedule
#      vs constant rate (images/s, ratio, fraction of the measured bf16 matmul
#      rate), full width;
#   2. the full Fashion-MNIST experiment (constant-rate sweep for the edge of
#      stability, then best constant rate vs repeated T = 8 fractal cycle vs
#      adaptive_fractal_sgd at batch 8192, one seed), its step counts sized
#      from the measured step time so that everything ends inside the budget.
#
# The device machine has no network and no Debian package cache: carry the
# .deb fetched here with
#   mkdir -p .data/debs && (cd .data/debs && apt-get download dataset-fashion-mnist)
# (.data/ is git-ignored) and run, from the repository root,
#   bash benchmarks/resnet/gpu.sh                  # device tool: carry .data/debs
# It unpacks the .deb with `dpkg -x` into a temporary folder (the installed
# /usr/share/datasets/fashion-mnist is used when no .deb is there).
#
# Results go to $OUT (the device tool's return folder; default
# results/resnet_gpu/out) and to benchmarks/results/resnet_gpu/ (RESNET_RESULTS).
# CPU check of this script with tiny settings: RESNET_GPU_TINY=1 bash ...
# Knobs (environment): PYTHON (python3), BUDGET_S (480: the whole script),
# RESNET_WORKDIR (results/resnet_gpu).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-480}
WORK=${RESNET_WORKDIR:-results/resnet_gpu}
OUT_DIR=${OUT:-$WORK/out}
TINY=${RESNET_GPU_TINY:-0}
if [[ "$TINY" == 1 ]]; then
  RESULTS=${RESNET_RESULTS:-$WORK/results}  # Tiny CPU runs stay out of git.
else
  RESULTS=${RESNET_RESULTS:-benchmarks/results/resnet_gpu}
fi
mkdir -p "$OUT_DIR" "$RESULTS" "$WORK"
export PYTHONUNBUFFERED=1
LOG="$OUT_DIR/gpu.log"
: >"$LOG"
log() { echo "[gpu.sh $(($(date +%s) - start)) s] $*" | tee -a "$LOG"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deb=$(ls .data/debs/dataset-fashion-mnist_*.deb 2>/dev/null | head -n 1 || true)
if [[ -n "$deb" ]]; then
  dpkg -x "$deb" "$tmp/deb"
  DATA="$tmp/deb/usr/share/datasets/fashion-mnist"
  log "unpacked $deb"
else
  DATA=/usr/share/datasets/fashion-mnist
  log "no .deb under .data/debs; using $DATA"
fi
ls "$DATA" >>"$LOG"
(command -v nvidia-smi >/dev/null && nvidia-smi -L >>"$LOG" 2>&1) || true
"$PY" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', \
flax.__version__, 'optax', optax.__version__, jax.devices())" 2>&1 | tee -a "$LOG"

if [[ "$TINY" == 1 ]]; then
  TP=(--preset throughput --set batch_size=64 throughput_repeats=2
      throughput_steps=2 matmul_size=256)
  EX=(--preset quick --set num_train=1024 num_test=256 batch_size=128
      eval_batch_size=128 sweep_learning_rates=0.5,2 seeds=0 log_every=2
      checkpoint_every=4)
  MIN_STEPS=4 MAX_STEPS=6 SWEEP_STEPS=2
else
  TP=(--preset throughput_gpu)
  EX=(--preset default)
  MIN_STEPS=100 MAX_STEPS=1000 SWEEP_STEPS=40
fi

log "throughput: ${TP[*]}"
"$PY" -m benchmarks.resnet "${TP[@]}" --workdir "$WORK/throughput" \
  2>&1 | tee -a "$LOG"
cp "$WORK/throughput/summary.json" "$OUT_DIR/throughput.json"

# Size the experiment from the measured step time: the experiment's step also
# evaluates the loss after the update (one more forward pass, ~4/3 the cost).
sizing=$("$PY" - "$WORK/throughput/summary.json" "$start" "$BUDGET_S" \
  "$MIN_STEPS" "$MAX_STEPS" "$SWEEP_STEPS" <<'EOF'
import json, sys, time
path, start, budget, lo, hi, sweep_steps = sys.argv[1:]
s = json.load(open(path))
step_s = s["fractal"]["step_time_s_median"] * 4 / 3 + 0.005
compile_s = s["fractal"]["compile_s"] + s["fractal"]["lower_s"]
num_rates = 7  # configs.DEFAULT.sweep_learning_rates
left = float(budget) - (time.time() - float(start))
# Fixed costs: train and eval compiles (the adaptive step, with its
# Hessian-vector products, compiles about three times longer), per-run
# init/eval/checkpoints, margin.
left -= 5.0 * compile_s + 10 * 4.0 + 40.0
# Constant and fractal runs cost a step each; the adaptive run about 1.3.
steps = int((left / step_s - num_rates * int(sweep_steps)) / 3.3)
steps = max(int(lo), min(int(hi), steps))
print(f"num_steps={steps} sweep_steps={sweep_steps} "
      f"checkpoint_every={max(1, steps // 2)}")
EOF
)
log "experiment: ${EX[*]} $sizing"
# shellcheck disable=SC2086
"$PY" -m benchmarks.resnet "${EX[@]}" --set $sizing progress=false \
  --data-dir "$DATA" --workdir "$WORK/experiment" 2>&1 | tee -a "$LOG"

cp "$WORK/experiment/summary.json" "$OUT_DIR/experiment.json"
cp "$WORK/experiment/results.md" "$OUT_DIR/results.md"
cp "$WORK/experiment/figure.png" "$OUT_DIR/figure.png"
for run in constant fractal adaptive; do
  cp "$WORK/experiment/$run/seed_0/metrics.jsonl" "$OUT_DIR/${run}_metrics.jsonl"
done
log "done"
for f in gpu.log throughput.json experiment.json results.md figure.png \
    constant_metrics.jsonl fractal_metrics.jsonl adaptive_metrics.jsonl; do
  cp "$OUT_DIR/$f" "$RESULTS/$f"
done
