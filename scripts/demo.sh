#!/usr/bin/env bash
# The main job on the embedded default data set, the real Fashion-MNIST: sample two
# design spaces under one flops budget, train every model briefly, compare the spaces by
# their error EDFs, and write a plot and an HTML report. About 9 minutes of training on 2 CPU
# cores (measured 2026-12-02; README).
set -euo pipefail
OUT=${1:-runs/demo}
N=${N:-8}
DSD=${DSD:-.venv/bin/dsd}
# Zeroing the last BN gamma of each block (pycls's ZERO_INIT_FINAL_GAMMA) keeps deep, narrow
# models stable in a 3-epoch run; it is recorded in train.toml like every recipe field.
TRAIN=(--epochs 3 --train-subset 10000 --test-subset 2000 --zero-init-final-gamma --workers 2)
if [ -e "$OUT" ]; then
  echo "demo: removing the previous demo in $OUT (make demo DEMO=runs/other keeps it)"
  rm -rf "$OUT"
fi
for space in anynetx_a regnetx; do
  $DSD sample --space "$space" --n "$N" --dataset fashion-mnist --flops 2M:6M --seed 0 --out "$OUT/$space"
  $DSD train-batch "$OUT/$space" "${TRAIN[@]}"
done
$DSD edf compare "$OUT/anynetx_a" "$OUT/regnetx" --plot "$OUT/edf.png"
$DSD report "$OUT/anynetx_a" "$OUT/regnetx" --out "$OUT/report.html" --fit-top 4
# The refinement step: how close are the best AnyNetX_A models to a quantized linear
# (RegNet) width rule, and which RegNet space covers them?
$DSD fit "$OUT/anynetx_a" --top 4 --plot "$OUT/fit.png" --to-space "$OUT/refined.toml"
echo "demo: with $N models per space the bands are wide: a large difference between two"
echo "      spaces is still detected (the KS p-value above), a small one is not, and the"
echo "      medians and best models are rough. \`dsd plan $OUT/anynetx_a $OUT/regnetx\` says"
echo "      how many models a given difference needs; \`make study\` runs seven spaces at 64."
