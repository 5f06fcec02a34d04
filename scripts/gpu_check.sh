#!/usr/bin/env bash
# The GPU checks in one prepared run, for a machine with a CUDA GPU and its own PyTorch
# (such as the lent device machine, which has no Debian packages and no network):
#   1. the CUDA tests (tests/test_cuda.py: training in every step mode, a Fashion-MNIST
#      train-batch with processes and streams, a real out-of-memory, a CPU checkpoint
#      resumed on the GPU, graph replays against eager steps);
#   2. bench/gpu.py (models per hour against a pycls-style baseline).
# Everything it prints also goes to $OUT (default gpu-out/). Fashion-MNIST is read from
# .data/fashion-mnist (make gpu-data copies it there from the Debian package).
# Time limits: CUDA_TESTS_S (default 240) and BENCH_S (default 320) seconds; BENCH_ARGS
# are passed to bench/gpu.py (default: 32 small models, 8 big ones, the slow baseline and
# dsd today on the first 8 of each); the bench itself keeps to
# BENCH_BUDGET_S (default BENCH_S - 40) and skips, by name, the variants that would not fit,
# so that both sections end with their summary before the hard limit.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DSD_FASHION_MNIST=${DSD_FASHION_MNIST:-$PWD/.data/fashion-mnist}
PY=${PY:-python3}
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  nproc
} 2>&1 | tee "$OUT/device.txt"
timeout "${CUDA_TESTS_S:-240}" $PY -m pytest -q -rs --durations=0 -m cuda -p no:cacheprovider -o addopts="" tests/test_cuda.py \
  2>&1 | tee "$OUT/cuda_tests.log"
echo "cuda tests: exit ${PIPESTATUS[0]}" | tee -a "$OUT/cuda_tests.log"
BENCH_S=${BENCH_S:-320}
# shellcheck disable=SC2086
timeout "$BENCH_S" $PY bench/gpu.py --data-dir "$DSD_FASHION_MNIST" --out "$OUT" \
  --budget-s "${BENCH_BUDGET_S:-$((BENCH_S - 40))}" \
  ${BENCH_ARGS:---small 32 --big 8 --reference-models 8 --concurrency 1,2,4,8,16 --big-concurrency 1,2,4} 2>&1 | tee "$OUT/bench.log"
echo "bench: exit ${PIPESTATUS[0]}" | tee -a "$OUT/bench.log"
