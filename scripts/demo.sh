#!/usr/bin/env bash
# The main job on the embedded default data set (Fashion-MNIST): sample two design
# spaces at a small flops budget and summarise them.
set -euo pipefail
OUT=${1:-runs/demo}
DSD=${DSD:-.venv/bin/dsd}
rm -rf "$OUT"
for space in anynetx_a anynetx_e; do
  $DSD sample --space "$space" --n 16 --dataset fashion-mnist --flops 2M:6M --seed 0 --out "$OUT/$space"
done
