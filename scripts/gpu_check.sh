#!/usr/bin/env bash
# The GPU checks in one prepared run, for a machine with a CUDA GPU and its own PyTorch
# (such as the lent device machine, which has no Debian packages and no network); run
# scripts/gpu_smoke.sh first. Stages:
#   0. the data set: Fashion-MNIST in .data/fashion-mnist (make gpu-data copies it there
#      from the Debian package; carry .data), checked before anything else;
#   1. the CUDA tests (tests/test_cuda.py), verbose, each test under DSD_TEST_TIMEOUT
#      seconds (default 120; tests/conftest.py), all of them under CUDA_TESTS_S (default 300)
#      sent as SIGINT, so pytest still writes its JUnit XML for the tests that ran;
#   2. bench/gpu.py (models per hour against a pycls-style baseline), under BENCH_S
#      (default 240) sent as SIGINT; the bench keeps to BENCH_S - 40 by itself and skips,
#      by name, the variants that would not fit. BENCH_ARGS replace its default arguments.
# DSD_GPU_END (seconds since the epoch), when set, is a deadline for the whole call, shared
# with gpu_smoke.sh: each limit shrinks to what is left, the tests leaving BENCH_MIN_S
# (default 170) to the bench.
# Files in $OUT (the device machine returns 8 at most; with gpu_smoke.sh's smoke.log this is
# 8): device.txt, cuda_tests.log, cuda_tests.xml, bench.log, gpu_bench.jsonl, gpu_bench.md,
# and summary.txt, one line per stage. GPU_CHECK_DRY_RUN=1 runs it all on the CPU (the
# CUDA tests skip, the bench runs --cpu-dry-run).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DSD_FASHION_MNIST=${DSD_FASHION_MNIST:-$PWD/.data/fashion-mnist}
PY=${PY:-python3}
DRY=${GPU_CHECK_DRY_RUN:-0}

limit() {  # WANTED [RESERVE]: WANTED seconds, or what is left before DSD_GPU_END less RESERVE
  local want=$1 left
  if [ -n "${DSD_GPU_END:-}" ]; then
    left=$(( DSD_GPU_END - $(date +%s) - ${2:-0} ))
    [ "$left" -lt "$want" ] && want=$left
  fi
  echo "$want"
}

if ! $PY scripts/gpu_smoke.py data "$DSD_FASHION_MNIST" >"$OUT/device.txt" 2>&1; then
  cat "$OUT/device.txt"
  echo "check data: FAILED, nothing else run" | tee -a "$OUT/summary.txt"
  exit 1
fi
{
  date -u
  [ "$DRY" = 1 ] || nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"
  nproc
} 2>&1 | tee -a "$OUT/device.txt"

T=$(limit "${CUDA_TESTS_S:-300}" "${BENCH_MIN_S:-170}")
if [ "$T" -ge 20 ]; then
  DSD_TEST_TIMEOUT=${DSD_TEST_TIMEOUT:-120} timeout -s INT -k 15 "$T" \
    $PY -m pytest -v -rA --durations=0 -m cuda -p no:cacheprovider -o addopts="" \
    --junitxml="$OUT/cuda_tests.xml" tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log"
  echo "cuda tests: exit ${PIPESTATUS[0]} (limit $T s)" | tee -a "$OUT/cuda_tests.log" "$OUT/summary.txt"
else
  echo "cuda tests: not run, $T s left" | tee -a "$OUT/summary.txt"
fi

B=$(limit "${BENCH_S:-240}" 5)
if [ "$DRY" = 1 ]; then DEFAULT_BENCH="--cpu-dry-run --sections small"
else DEFAULT_BENCH="--small 16 --big 8 --concurrency 2,4,8,16 --big-concurrency 2,4"; fi
if [ "$B" -ge 60 ]; then
  # shellcheck disable=SC2086
  timeout -s INT -k 15 "$B" $PY bench/gpu.py --data-dir "$DSD_FASHION_MNIST" --out "$OUT" \
    --budget-s "${BENCH_BUDGET_S:-$((B - 40))}" ${BENCH_ARGS:-$DEFAULT_BENCH} 2>&1 | tee "$OUT/bench.log"
  echo "bench: exit ${PIPESTATUS[0]} (limit $B s)" | tee -a "$OUT/bench.log" "$OUT/summary.txt"
else
  echo "bench: not run, $B s left" | tee -a "$OUT/summary.txt"
fi
