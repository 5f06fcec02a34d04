"""run.toml, parsed once into a typed, frozen `Manifest`.

run.toml records how a run was sampled: its name and size, the sampling seed and where
the random stream stopped, the input shape, the complexity windows, the data set, the
space as resolved, and (for a run holding another run's models trained again) where it
derives from. Readers take attributes; nothing else reads run.toml by key. Keys this
version does not know are kept and written back, so a newer version's file survives an
older one's rewrite.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dsd import tomlw
from dsd.errors import DsdError
from dsd.model.arch import Shape
from dsd.version import __version__

# run.toml's scalar keys, in the order they are written; tables (stream, space, derived) follow
_SCALARS = ("name", "n", "seed", "resolution", "in_channels", "num_classes", "stem_stride",
            "flops", "params", "acts", "dsd_version", "created", "dataset")
_TABLES = ("stream", "space", "derived")
_DEFAULT_SHAPE = Shape(3, 224, 1000, 2)  # what a manifest without shape keys meant: ImageNet


@dataclass(frozen=True)
class Stream:
    """Where the sampler's random stream stopped: `sample --extend` continues from here."""
    block: int
    offset: int


@dataclass(frozen=True)
class Derived:
    """A run holding the first `models` models of the run at `of` (relative to this run's
    directory), trained again for `purpose` (replicate: with `train_seed`; fidelity: with
    its own train.toml)."""
    of: str
    purpose: str
    models: int
    train_seed: int | None = None


@dataclass(frozen=True)
class Manifest:
    name: str | None = None
    n: int | None = None
    seed: int | None = None
    resolution: int | None = None
    in_channels: int | None = None
    num_classes: int | None = None
    stem_stride: int | None = None
    flops: str | None = None
    params: str | None = None
    acts: str | None = None
    dsd_version: str | None = None
    created: str | None = None
    dataset: str | None = None
    stream: Stream | None = None
    space: MappingProxyType | None = None   # the space's table as resolved (read-only)
    derived: Derived | None = None
    extra: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def exists(self) -> bool:
        """False for a directory another tool made without a run.toml."""
        return self.space is not None or self.n is not None

    @property
    def space_name(self) -> str | None:
        return None if self.space is None else self.space.get("name")

    def shape(self) -> Shape:
        d = _DEFAULT_SHAPE
        return Shape(self.in_channels or d.in_channels, self.resolution or d.resolution,
                     self.num_classes or d.num_classes, self.stem_stride or d.stem_stride)

    def window(self, metric: str) -> str | None:
        """The sampling window of flops, params or acts ('lo:hi'), or None where unset."""
        return getattr(self, metric) or None

    def space_table(self) -> dict:
        """A mutable deep copy of the space's table (for `dsd.space.spec.from_table`)."""
        return _thaw(self.space) if self.space is not None else {}

    def with_(self, **changes) -> Manifest:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {k: getattr(self, k) for k in _SCALARS if getattr(self, k) is not None}
        extra = _thaw(self.extra)
        out.update({k: v for k, v in extra.items() if not isinstance(v, dict)})
        if self.stream is not None:
            out["stream"] = {"block": self.stream.block, "offset": self.stream.offset}
        if self.space is not None:
            out["space"] = _thaw(self.space)
        if self.derived is not None:
            d = self.derived
            out["derived"] = {"of": d.of, "purpose": d.purpose, "models": d.models}
            if d.train_seed is not None:
                out["derived"]["train_seed"] = d.train_seed
        out.update({k: v for k, v in extra.items() if isinstance(v, dict)})
        return out

    def __reduce__(self):
        # mappingproxy does not pickle; runs travel to spawned training workers with theirs
        return (Manifest.from_dict, (self.to_dict(),))

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        s, dv = d.get("stream"), d.get("derived")
        known = {k: d[k] for k in _SCALARS if k in d}
        for k in ("n", "seed", "resolution", "in_channels", "num_classes", "stem_stride"):
            if k in known:
                known[k] = int(known[k])
        return cls(
            **known,
            stream=Stream(int(s["block"]), int(s["offset"])) if s else None,
            space=freeze(d["space"]) if "space" in d else None,
            derived=None if not dv else Derived(
                dv["of"], dv["purpose"], int(dv["models"]),
                None if dv.get("train_seed") is None else int(dv["train_seed"])),
            extra=freeze({k: v for k, v in d.items() if k not in _SCALARS + _TABLES}))


def new_manifest(name: str, space_table: dict, n: int, seed: int, shape: Shape,
                 windows: dict[str, str], dataset: str | None, stream: tuple[int, int]) -> Manifest:
    return Manifest(
        name=name, n=n, seed=seed, resolution=shape.resolution, in_channels=shape.in_channels,
        num_classes=shape.num_classes, stem_stride=shape.stem_stride,
        flops=windows.get("flops", ""), params=windows.get("params", ""), acts=windows.get("acts", ""),
        dsd_version=__version__, created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        dataset=dataset or None, stream=Stream(*stream), space=freeze(space_table))


def read_manifest(path: Path) -> Manifest:
    """The manifest at `path`, or an empty one where there is none."""
    if not path.exists():
        return Manifest()
    try:
        return Manifest.from_dict(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as e:
        raise DsdError(f"{path}: not valid TOML ({e}); restore it or sample a new run") from None
    except (KeyError, TypeError, ValueError) as e:
        raise DsdError(f"{path}: malformed run manifest ({type(e).__name__}: {e}); restore it "
                       "or sample a new run") from None


def write_manifest_file(path: Path, m: Manifest) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_text(tomlw.dumps(m.to_dict()))
    os.replace(tmp, path)


def freeze(v):
    if isinstance(v, dict):
        return MappingProxyType({k: freeze(x) for k, x in v.items()})
    if isinstance(v, list):
        return tuple(freeze(x) for x in v)
    return v


def _thaw(v):
    if isinstance(v, MappingProxyType | dict):
        return {k: _thaw(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v
