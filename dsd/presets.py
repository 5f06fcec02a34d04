"""Input/output shapes of the known data sets (pure data, no torch)."""

from __future__ import annotations

from dsd.arch import Shape
from dsd.errors import DsdError

# Stem stride 1 below 64 px, else 2 (DESIGN.md section 1).
DATASET_SHAPES = {
    "fashion-mnist": Shape(in_channels=1, resolution=28, num_classes=10, stem_stride=1),
    "cifar10": Shape(in_channels=3, resolution=32, num_classes=10, stem_stride=1),
    "digits": Shape(in_channels=1, resolution=8, num_classes=10, stem_stride=1),
    "imagenet-folder": Shape(in_channels=3, resolution=224, num_classes=1000, stem_stride=2),
}


def stem_stride_for(resolution: int) -> int:
    return 1 if resolution < 64 else 2


def dataset_shape(name: str) -> Shape:
    if name not in DATASET_SHAPES:
        raise DsdError(f"unknown data set {name!r}; known: {', '.join(DATASET_SHAPES)}")
    return DATASET_SHAPES[name]
