#!/usr/bin/env bash
# The first minutes on a GPU machine, before scripts/gpu_check.sh: about 90 s that say
# whether anything longer can work. Stages, each under its own `timeout -s INT` and logged
# as it goes, so a run cut short keeps what it reached:
#   1. data: Fashion-MNIST in .data/fashion-mnist (make gpu-data puts it there; carry .data),
#      checked before anything else; without it the script stops here;
#   2. imports: torch, CUDA, the device, dsd and what it needs, the data set read;
#   3. graph-step: one captured training step against eager steps;
#   4. end-to-end: `dsd sample` and `dsd train-batch --step graph` on one model.
# Writes $OUT/smoke.log (everything) and one line per stage to $OUT/summary.txt, which
# scripts/gpu_check.sh appends to. Exit 0 when every stage passed.
# SMOKE_DRY_RUN=1 runs the same stages on the CPU (eager steps, tiny): the test suite does.
# DSD_GPU_END (seconds since the epoch) is a deadline shared with gpu_check.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DSD_FASHION_MNIST=${DSD_FASHION_MNIST:-$PWD/.data/fashion-mnist}
PY=${PY:-python3}
DEVICE=cuda
[ "${SMOKE_DRY_RUN:-0}" = 1 ] && DEVICE=cpu
LOG=$OUT/smoke.log
failed=0

stage() {  # NAME SECONDS COMMAND...: run it, log it, record its exit in summary.txt
  local name=$1 limit=$2 rc
  shift 2
  echo "== $name: $(date -u +%T), limit ${limit} s" | tee -a "$LOG"
  timeout -s INT -k 5 "$limit" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  echo "smoke $name: exit $rc" | tee -a "$LOG" >>"$OUT/summary.txt"
  [ "$rc" = 0 ] || failed=1
  return "$rc"
}

: >"$LOG"
: >"$OUT/summary.txt"
echo "gpu_smoke.sh on $(hostname), device $DEVICE, $(date -u)" | tee -a "$LOG"
stage data 20 $PY scripts/gpu_smoke.py data "$DSD_FASHION_MNIST" || exit 1
[ "$DEVICE" = cuda ] && { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$LOG"; }
stage imports 60 $PY scripts/gpu_smoke.py imports --device "$DEVICE" || exit 1
stage graph-step 45 $PY scripts/gpu_smoke.py graph-step --device "$DEVICE"
stage end-to-end 90 $PY scripts/gpu_smoke.py end-to-end --device "$DEVICE"
echo "smoke: $([ $failed = 0 ] && echo passed || echo FAILED)" | tee -a "$LOG" "$OUT/summary.txt"
exit $failed
