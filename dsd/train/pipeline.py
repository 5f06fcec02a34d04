"""Batches for training and evaluation.

`TensorPipeline` keeps a small data set resident on the device as uint8 and does the
augmentation there (random pad-crop and flip as batched tensor ops), so a GPU run makes
no host-device copy per batch; the CPU runs the same code. `FolderPipeline` streams an
ImageNet-style folder through torchvision's transforms and a DataLoader.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dsd.data.loaders import FolderData, ImageData, subset
from dsd.data.recipe import Recipe
from dsd.errors import DsdError

Batch = tuple[torch.Tensor, torch.Tensor]


class TensorPipeline:
    def __init__(self, data: ImageData, recipe: Recipe, device: torch.device, resolution: int):
        tr = subset(data.train_y, recipe.train_subset or None, recipe.subset_seed)
        te = subset(data.test_y, recipe.test_subset or None, recipe.subset_seed)
        self.device, self.recipe = device, recipe
        self.train_x = _resident(data.train_x[tr], resolution, device)
        self.train_y = torch.from_numpy(data.train_y[tr]).to(device)
        self.test_x = _resident(data.test_x[te], resolution, device)
        self.test_y = torch.from_numpy(data.test_y[te]).to(device)
        c = self.train_x.shape[1]
        if len(recipe.mean) not in (1, c):
            raise DsdError(f"the recipe's mean has {len(recipe.mean)} values for {c} channels")
        self.mean = torch.tensor(recipe.mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(recipe.std, device=device).view(1, -1, 1, 1) * 255
        _settle(device)

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    def generator(self, seed: int) -> torch.Generator:
        """Random numbers made where the data lives: no host-device copy per batch."""
        return torch.Generator(device=self.device).manual_seed(seed)

    @property
    def n_test(self) -> int:
        return len(self.test_y)

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.n_train // batch_size

    def train_batches(self, batch_size: int, gen: torch.Generator) -> Iterator[Batch]:
        """Shuffled, augmented batches; the last partial batch is dropped (BatchNorm)."""
        order = torch.randperm(self.n_train, generator=gen, device=self.device)
        for i in range(self.steps_per_epoch(batch_size)):
            idx = order[i * batch_size:(i + 1) * batch_size]
            x = self._augment(self.train_x[idx], gen)
            yield self._normalize(x), self.train_y[idx]

    def test_batches(self) -> Iterator[Batch]:
        size = self.recipe.eval_batch_size
        for i in range(0, self.n_test, size):
            yield self._normalize(self.test_x[i:i + size]), self.test_y[i:i + size]

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last)

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.recipe.augment == "none":
            return x
        n = x.shape[0]
        flip = (torch.rand(n, generator=gen, device=self.device) < 0.5).view(-1, 1, 1, 1)
        x = torch.where(flip, x.flip(3), x)
        p = self.recipe.crop_pad
        if p > 0:
            x = _random_crop(x, p, gen)
        return x


def _settle(device: torch.device) -> None:
    """Wait once for the uploads above: models stepped in turn read these tensors from their
    own streams (dsd.train.streams), which do not wait for this one by themselves."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def _resident(x: np.ndarray, resolution: int, device: torch.device) -> torch.Tensor:
    """uint8 images on the device, resized once if the model wants another size."""
    t = torch.from_numpy(x)
    if t.shape[-1] != resolution:
        t = F.interpolate(t.float(), size=(resolution, resolution), mode="bilinear",
                          antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
    return t.to(device)


def _random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad`, then crop back at a random offset per image (one gather)."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # [n, h]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # [n, w]
    bidx = torch.arange(n, device=x.device)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]]  # [n, h, w, c]
    return out.permute(0, 3, 1, 2)


class FolderPipeline:
    """ImageNet-style folder: Inception crop + flip for training, resize + center crop for test."""

    def __init__(self, data: FolderData, recipe: Recipe, device: torch.device, resolution: int,
                 workers: int | None = None):
        from torchvision import datasets, transforms

        norm = transforms.Normalize(recipe.mean, recipe.std)
        train_tf = transforms.Compose([
            transforms.RandomResizedCrop(resolution), transforms.RandomHorizontalFlip(),
            transforms.ToTensor(), norm])
        test_tf = transforms.Compose([
            transforms.Resize(int(round(resolution * 256 / 224))),
            transforms.CenterCrop(resolution), transforms.ToTensor(), norm])
        self.train_set = datasets.ImageFolder(str(data.root / "train"), train_tf)
        self.test_set = datasets.ImageFolder(str(data.root / "val"), test_tf)
        if recipe.train_subset:
            targets = np.array(self.train_set.targets)
            self.train_set = torch.utils.data.Subset(
                self.train_set, subset(targets, recipe.train_subset, recipe.subset_seed).tolist())
        if recipe.test_subset:
            targets = np.array(self.test_set.targets)
            self.test_set = torch.utils.data.Subset(
                self.test_set, subset(targets, recipe.test_subset, recipe.subset_seed).tolist())
        self.device, self.recipe = device, recipe
        self.workers = workers if workers is not None else min(8, len(os.sched_getaffinity(0)))

    @property
    def n_train(self) -> int:
        return len(self.train_set)

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)  # DataLoader shuffles on the host

    @property
    def n_test(self) -> int:
        return len(self.test_set)

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.n_train // batch_size

    def train_batches(self, batch_size: int, gen: torch.Generator) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=batch_size, shuffle=True, drop_last=True, generator=gen,
            num_workers=self.workers, pin_memory=self.device.type == "cuda", persistent_workers=False,
            multiprocessing_context=self._mp_context())
        for x, y in loader:
            yield self._to(x), y.to(self.device, non_blocking=True)

    def test_batches(self) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(self.test_set, batch_size=self.recipe.eval_batch_size,
                                             num_workers=self.workers,
                                             multiprocessing_context=self._mp_context())
        for x, y in loader:
            yield self._to(x), y.to(self.device, non_blocking=True)

    def _mp_context(self) -> str | None:
        """Fork the loader's workers where the platform can. A training worker is itself
        spawned (CUDA cannot be forked), and spawn is then every child's default: each
        loader worker would re-import torch, several seconds per epoch (15x slower on a
        small folder, measured). The loader workers only decode images on the host, the
        case PyTorch's own Linux default (fork) serves."""
        import multiprocessing as mp

        return "fork" if self.workers and "fork" in mp.get_all_start_methods() else None

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)


def make_pipeline(data, recipe: Recipe, device: torch.device, resolution: int):
    if isinstance(data, ImageData):
        return TensorPipeline(data, recipe, device, resolution)
    return FolderPipeline(data, recipe, device, resolution)
