#!/usr/bin/env bash
# The demo's comparison at a size that can separate spaces: 100 models per space,
# 5 epochs on 20,000 Fashion-MNIST training images, the full 10,000-image test set,
# EDFs plain and flops-normalised. Resumable: rerun the same command after a stop.
# Duration: about 50 s per model on 2 CPU cores (about 3 h for the 200 models,
# estimated from the demo's measured cost per model); on a GPU
# the workers share the device (8 by default).
set -euo pipefail
OUT=${1:-runs/study}
N=${N:-100}
DSD=${DSD:-.venv/bin/dsd}
PY=${PY:-.venv/bin/python}
WORKERS=${WORKERS:-$($PY -c 'import torch; print(8 if torch.cuda.is_available() else 2)')}
TRAIN=(--epochs 5 --train-subset 20000 --zero-init-final-gamma --workers "$WORKERS")
for space in anynetx_a regnetx; do
  if [ ! -f "$OUT/$space/samples.parquet" ]; then
    $DSD sample --space "$space" --n "$N" --dataset fashion-mnist --flops 2M:6M --seed 0 --out "$OUT/$space"
  fi
  $DSD train-batch "$OUT/$space" "${TRAIN[@]}"
done
$DSD edf compare "$OUT/anynetx_a" "$OUT/regnetx" --plot "$OUT/edf.png"
$DSD edf compare "$OUT/anynetx_a" "$OUT/regnetx" --normalize flops --bins 5 --plot "$OUT/edf-flops.png"
$DSD report "$OUT/anynetx_a" "$OUT/regnetx" --out "$OUT/report.html"
