"""The published RegNets of pycls's model zoo (Radosavovic et al. 2020), by name.

The one place their numbers live: `dsd export` builds them by name and the complexity
tests check dsd's counts against the published figures. Pure Python: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsd.errors import DsdError
from dsd.model.arch import IMAGENET, Arch, Shape, regnet_arch

# pycls MODEL_ZOO.md: (d, w0, wa, wm, g) and the published flops (B), params (M), acts (M),
# each rounded to one decimal. Every one has b = 1; the Y models add SE (ratio 0.25).
PUBLISHED: dict[str, tuple[tuple[int, int, float, float, int], tuple[float, float, float]]] = {
    "RegNetX-200MF": ((13, 24, 36.44, 2.49, 8), (0.2, 2.7, 2.2)),
    "RegNetX-400MF": ((22, 24, 24.48, 2.54, 16), (0.4, 5.2, 3.1)),
    "RegNetX-600MF": ((16, 48, 36.97, 2.24, 24), (0.6, 6.2, 4.0)),
    "RegNetX-800MF": ((16, 56, 35.73, 2.28, 16), (0.8, 7.3, 5.1)),
    "RegNetX-1.6GF": ((18, 80, 34.01, 2.25, 24), (1.6, 9.2, 7.9)),
    "RegNetX-3.2GF": ((25, 88, 26.31, 2.25, 48), (3.2, 15.3, 11.4)),
    "RegNetX-4.0GF": ((23, 96, 38.65, 2.43, 40), (4.0, 22.1, 12.2)),
    "RegNetX-6.4GF": ((17, 184, 60.83, 2.07, 56), (6.5, 26.2, 16.4)),
    "RegNetX-8.0GF": ((23, 80, 49.56, 2.88, 120), (8.0, 39.6, 14.1)),
    "RegNetX-12GF": ((19, 168, 73.36, 2.37, 112), (12.1, 46.1, 21.4)),
    "RegNetX-16GF": ((22, 216, 55.59, 2.1, 128), (15.9, 54.3, 25.5)),
    "RegNetX-32GF": ((23, 320, 69.86, 2.0, 168), (31.7, 107.8, 36.3)),
    "RegNetY-200MF": ((13, 24, 36.44, 2.49, 8), (0.2, 3.2, 2.2)),
    "RegNetY-400MF": ((16, 48, 27.89, 2.09, 8), (0.4, 4.3, 3.9)),
    "RegNetY-600MF": ((15, 48, 32.54, 2.32, 16), (0.6, 6.1, 4.3)),
    "RegNetY-800MF": ((14, 56, 38.84, 2.4, 16), (0.8, 6.3, 5.2)),
    "RegNetY-1.6GF": ((27, 48, 20.71, 2.65, 24), (1.6, 11.2, 8.0)),
    "RegNetY-3.2GF": ((21, 80, 42.63, 2.66, 24), (3.2, 19.4, 11.3)),
    "RegNetY-4.0GF": ((22, 96, 31.41, 2.24, 64), (4.0, 20.6, 12.3)),
    "RegNetY-6.4GF": ((25, 112, 33.22, 2.27, 72), (6.4, 30.6, 16.4)),
    "RegNetY-8.0GF": ((17, 192, 76.82, 2.19, 56), (8.0, 39.2, 18.0)),
    "RegNetY-12GF": ((19, 168, 73.36, 2.37, 112), (12.1, 51.8, 21.4)),
    "RegNetY-16GF": ((18, 200, 106.23, 2.48, 112), (15.9, 83.6, 23.0)),
    "RegNetY-32GF": ((20, 232, 115.89, 2.53, 232), (32.3, 145.0, 30.3)),
}


@dataclass(frozen=True)
class RegNetParams:
    """The six numbers of a RegNet (d, w0, wa, wm, g, b) and whether it has SE (a Y model)."""

    depth: int
    w0: int
    wa: float
    wm: float
    group_w: int
    b: float = 1.0
    se: bool = False

    def arch(self, shape: Shape = IMAGENET, stem_w: int = 32) -> Arch:
        return regnet_arch(self.depth, self.w0, self.wa, self.wm, self.group_w, self.b, self.se,
                           shape, stem_w)


def find(name: str) -> str:
    """The published name as spelled in `PUBLISHED` ("regnetx-400mf" -> "RegNetX-400MF")."""
    key = {k.lower(): k for k in PUBLISHED}.get(name.lower())
    if key is None:
        raise DsdError(f"no published RegNet named {name!r}; known: {', '.join(PUBLISHED)}")
    return key


def published(name: str) -> RegNetParams:
    """A published RegNet by name ("RegNetX-400MF"; case does not matter)."""
    key = find(name)
    (d, w0, wa, wm, g), _ = PUBLISHED[key]
    return RegNetParams(d, w0, wa, wm, g, 1.0, key.startswith("RegNetY"))
