"""Data sets, each a real loader with the split the papers use.

Small data sets (fashion-mnist, cifar10, digits) load whole into uint8 tensors
[N, C, H, W] so that training can keep them resident on the device. imagenet-folder
stays on disk and streams through a DataLoader.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsd.errors import DsdError

FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass
class ImageData:
    """A small data set in memory: uint8 images [N, C, H, W] and int64 labels."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    source: str

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def resolution(self) -> int:
        return self.train_x.shape[2]


@dataclass
class FolderData:
    """An ImageNet-style tree: ROOT/train/CLASS/*.jpeg and ROOT/val/CLASS/*.jpeg."""

    name: str
    root: Path
    classes: list[str]
    num_classes: int
    source: str
    in_channels: int = 3


def subset(y: np.ndarray, k: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded, stratified subset of k examples (all of them if k is None)."""
    if k is None or k >= len(y):
        return np.arange(len(y))
    if k < 1:
        raise DsdError(f"a subset needs at least one example per run, got {k}")
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=k, stratify=y, random_state=seed)
    return np.sort(idx)


# --- fashion-mnist ------------------------------------------------------------------


def _fashion_candidates(data_dir: str | None) -> list[Path]:
    if data_dir:
        d = Path(data_dir)
        return [d, d / "FashionMNIST" / "raw", d / "fashion-mnist"]
    return [Path(p) for p in FASHION_DIRS]


def _find_idx(folder: Path, stem: str) -> Path | None:
    for suffix in ("", ".gz"):
        p = folder / (stem + suffix)
        if p.is_file():
            return p
    return None


def load_fashion_mnist(data_dir: str | None = None) -> ImageData:
    for folder in _fashion_candidates(data_dir):
        files = {k: _find_idx(folder, v) for k, v in FASHION_FILES.items()}
        if all(files.values()):
            arrays = {k: _read_idx(p) for k, p in files.items()}
            x_tr, x_te = arrays["train_x"][:, None], arrays["test_x"][:, None]
            return ImageData("fashion-mnist", x_tr, arrays["train_y"].astype(np.int64), x_te,
                             arrays["test_y"].astype(np.int64), 10, str(folder))
    looked = ", ".join(str(p) for p in _fashion_candidates(data_dir))
    raise DsdError(f"Fashion-MNIST not found (looked for {FASHION_FILES['train_x']}[.gz] and "
                   f"the other three idx files in {looked}); install it with `apt-get install "
                   "dataset-fashion-mnist` (or `make fashion-mnist`), pass --data-dir, or add "
                   "--download with --data-dir to fetch it through torchvision")


def download_fashion(data_dir: str) -> None:
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(data_dir, train=True, download=True)
        FashionMNIST(data_dir, train=False, download=True)
    except Exception as e:  # no network, typically
        raise DsdError(f"could not download Fashion-MNIST into {data_dir} ({e}); install "
                       "the Debian package dataset-fashion-mnist instead") from None


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's format): magic, dims, then raw uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        magic = int.from_bytes(raw[0:4], "big")
        if magic >> 8 != 0x08:
            raise ValueError(f"magic {magic:#x} is not an unsigned-byte idx file")
        ndim = magic & 0xFF
        dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(dims).copy()
    except (OSError, ValueError, EOFError) as e:
        raise DsdError(f"{path}: not a readable idx file ({e}); reinstall the data set") from None


# --- cifar10 ------------------------------------------------------------------------


def load_cifar10(data_dir: str | None) -> ImageData:
    if not data_dir:
        raise DsdError("cifar10 needs --data-dir: the folder holding cifar-10-batches-py "
                       "(torchvision's CIFAR-10 format, from https://www.cs.toronto.edu/~kriz/cifar.html)")
    root = Path(data_dir)
    folder = root if root.name == "cifar-10-batches-py" else root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in names + ["test_batch"] if not (folder / n).is_file()]
    if missing:
        raise DsdError(f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}; download and "
                       "extract cifar-10-python.tar.gz there (torchvision's CIFAR10 format)")
    train = [_cifar_batch(folder / n) for n in names]
    test_x, test_y = _cifar_batch(folder / "test_batch")
    return ImageData("cifar10", np.concatenate([x for x, _ in train]),
                     np.concatenate([y for _, y in train]), test_x, test_y, 10, str(folder))


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as e:  # a damaged pickle raises many types
        raise DsdError(f"{path}: not a CIFAR-10 batch ({type(e).__name__}: {e}); re-extract "
                       "cifar-10-python.tar.gz") from None
    if len(x) != len(y):
        raise DsdError(f"{path}: {len(x)} images but {len(y)} labels; re-extract the archive")
    return x, y


# --- digits -------------------------------------------------------------------------


def load_digits() -> ImageData:
    """scikit-learn's 8x8 digits, a fixed stratified 80/20 split (seed 0)."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    return ImageData("digits", x[tr], y[tr], x[te], y[te], 10, "sklearn.datasets.load_digits")


# --- imagenet-folder ----------------------------------------------------------------


def load_folder(data_dir: str | None) -> FolderData:
    if not data_dir:
        raise DsdError("imagenet-folder needs --data-dir: a folder with train/CLASS/*.jpeg and "
                       "val/CLASS/*.jpeg (the ImageNet layout)")
    root = Path(data_dir)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DsdError(f"imagenet-folder: {root / split} is missing; --data-dir must hold "
                           "train/ and val/ with one sub-folder per class")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    val_classes = sorted(p.name for p in (root / "val").iterdir() if p.is_dir())
    if not classes or classes != val_classes:
        raise DsdError(f"imagenet-folder: {root}/train and {root}/val must hold the same, "
                       "non-empty set of class folders")
    return FolderData("imagenet-folder", root, classes, len(classes), str(root))
