"""The data sets dsd knows: one `DatasetSpec` each, in one table (no torch).

A spec holds everything the rest of dsd asks of a data set by name: its loader, the shape
its models take (channels, resolution, classes, stem stride), its default recipe, and
where it is read from. Adding a data set is one loader function in `dsd.data.loaders`
and one entry here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from dsd.data import loaders
from dsd.data.recipe import Recipe
from dsd.errors import DsdError
from dsd.model.arch import Shape


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    shape: Shape
    recipe: Recipe
    load: Callable[[str | None], loaders.ImageData | loaders.FolderData]
    where: str
    fixed_shape: bool = True  # False: the classes come from the files (an image folder)
    # The flops window a model of this data set's shape is sampled in when none is given:
    # the spaces' own defaults (the papers' 360M:400M) are meant for 224 px ImageNet.
    flops: str | None = None


def stem_stride_for(resolution: int) -> int:
    """Stem stride 1 below 64 px (CIFAR-style inputs), else 2 (README, Training)."""
    return 1 if resolution < 64 else 2


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> None:
    DATASETS[spec.name] = spec


register(DatasetSpec(
    "fashion-mnist", Shape(in_channels=1, resolution=28, num_classes=10, stem_stride=1),
    Recipe("fashion-mnist", epochs=10, batch_size=128, lr=0.1, wd=5e-4, crop_pad=2,
           mean=(0.286,), std=(0.353,)),
    loaders.load_fashion_mnist, "/usr/share/datasets/fashion-mnist (Debian package), or --data-dir",
    flops="1M:3M"))
register(DatasetSpec(
    "cifar10", Shape(in_channels=3, resolution=32, num_classes=10, stem_stride=1),
    Recipe("cifar10", epochs=10, batch_size=128, lr=0.1, wd=5e-4, crop_pad=4,
           mean=(0.491, 0.482, 0.447), std=(0.247, 0.243, 0.262)),
    loaders.load_cifar10, "--data-dir holding cifar-10-batches-py", flops="2M:6M"))
register(DatasetSpec(
    "digits", Shape(in_channels=1, resolution=8, num_classes=10, stem_stride=1),
    Recipe("digits", epochs=10, batch_size=32, lr=0.05, wd=5e-4, augment="none", crop_pad=0,
           mean=(0.305,), std=(0.376,), zero_init_final_gamma=True, precise_bn=1024),
    lambda data_dir: loaders.load_digits(), "scikit-learn", flops="100K:300K"))
register(DatasetSpec(
    "imagenet-folder", Shape(in_channels=3, resolution=224, num_classes=1000, stem_stride=2),
    Recipe("imagenet-folder", epochs=10, batch_size=128, lr=0.05, wd=5e-5, augment="inception",
           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), precise_bn=8192,
           eval_batch_size=200),
    loaders.load_folder, "--data-dir holding train/ and val/ class folders", fixed_shape=False))


def get(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DsdError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_shape(name: str) -> Shape:
    return get(name).shape


def default_recipe(name: str) -> Recipe:
    return get(name).recipe


def load(name: str, data_dir: str | None = None, download: bool = False):
    """The data set, read once per process (train-batch checks it, then trains on it)."""
    if download and name == "fashion-mnist" and data_dir:
        loaders.download_fashion(data_dir)
    return _load(name, data_dir)


@functools.lru_cache(maxsize=2)
def _load(name: str, data_dir: str | None):
    return get(name).load(data_dir)
