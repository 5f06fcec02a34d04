"""Options shared by several commands."""

from __future__ import annotations

import typer

from dsd.data.registry import DATASETS, dataset_shape, stem_stride_for
from dsd.errors import DsdError
from dsd.model.arch import IMAGENET, Shape

DatasetOpt = typer.Option(None, "--dataset", help="Take channels, resolution and classes from "
                          f"a data set: {', '.join(DATASETS)}.")
ResolutionOpt = typer.Option(None, "--resolution", help="Input side in pixels (default 224).")
ChannelsOpt = typer.Option(None, "--in-channels", help="Input channels (default 3).")
ClassesOpt = typer.Option(None, "--num-classes", help="Classes (default 1000).")
StrideOpt = typer.Option(None, "--stem-stride", help="Stem stride (default: 1 below 64 px, else 2).")


def resolve_shape(dataset: str | None, resolution: int | None, in_channels: int | None,
                  num_classes: int | None, stem_stride: int | None) -> Shape:
    """The data set's shape (or ImageNet's), with explicit flags overriding it."""
    base = dataset_shape(dataset) if dataset else IMAGENET
    res = resolution if resolution is not None else base.resolution
    if stem_stride is None:
        stem_stride = base.stem_stride if resolution is None else stem_stride_for(res)
    shape = Shape(in_channels if in_channels is not None else base.in_channels, res,
                  num_classes if num_classes is not None else base.num_classes, stem_stride)
    for k, v in (("--resolution", shape.resolution), ("--in-channels", shape.in_channels),
                 ("--num-classes", shape.num_classes), ("--stem-stride", shape.stem_stride)):
        if v < 1:
            raise DsdError(f"{k} must be at least 1, got {v}")
    return shape


def int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise DsdError(f"{flag} takes comma-separated integers, e.g. 1,2,7,12; got {text!r}") from None


def float_list(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise DsdError(f"{flag} takes comma-separated numbers, e.g. 1,1,1,1; got {text!r}") from None
