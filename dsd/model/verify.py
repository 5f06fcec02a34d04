"""Cross-checks of the analytic complexity against the built torch module and fvcore."""

from __future__ import annotations

from dsd.model.arch import Arch
from dsd.model.layers import ACTS


def verify_arch(arch: Arch) -> dict[str, int]:
    """params_torch (sum of numel), fvcore's total flops and its conv + linear part.

    fvcore skips bias adds, so conv + linear equals our flops minus the biased layers'
    output elements (the classifier's num_classes, plus the SE convs' widths).
    """
    import warnings

    import torch

    # fvcore calls the deprecated torch.jit.script, at import and when it traces
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis

    from dsd.model.net import build, count_params

    model = build(arch).eval()
    sh = arch.shape
    x = torch.zeros(1, sh.in_channels, sh.resolution, sh.resolution)
    fa = FlopCountAnalysis(model, x)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    with torch.no_grad():
        ops = fa.by_operator()
    return {
        "params_torch": count_params(model),
        "flops_fvcore": int(sum(ops.values())),
        "flops_fvcore_conv_linear": int(ops.get("conv", 0) + ops.get("linear", 0)),
        "bias_adds": bias_adds(model, x),
    }


def output_elements(model, x, counts) -> int:
    """Summed output elements, per image, of the modules for which `counts(module)` holds,
    measured by forward hooks on one forward pass of x (a batch of one)."""
    import torch

    total = 0

    def hook(mod, _inp, out):
        nonlocal total
        total += out[0].numel()

    hs = [m.register_forward_hook(hook) for m in model.modules() if counts(m)]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total


def bias_adds(model, x) -> int:
    """Output elements of layers with a bias: what fvcore leaves out of its count."""
    from torch import nn

    return output_elements(model, x, lambda m: isinstance(m, (nn.Conv2d, nn.Linear))
                           and m.bias is not None)


def hooked_acts(model, x) -> int:
    """Output elements of every conv, linear and max pool, per image (pycls's acts)."""
    from torch import nn

    return output_elements(model, x, lambda m: isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d)))


def random_arch(rng, block: str, stem: str, shape) -> Arch:
    """A small random AnyNet of this block type and stem: 1-5 stages, random strides,
    kernels, activation, SE ratio, expansion ratios and head, widths made compatible."""
    from dsd.model.arch import anynet_arch
    from dsd.model.blocks import get_block

    reads = get_block(block).reads
    n = int(rng.integers(1, 6))
    pick = lambda vals: [int(v) for v in rng.choice(vals, n)]  # noqa: E731
    ds, ws = pick([1, 2, 3]), pick([8, 16, 24, 32, 48, 64])
    ratios = [0.25, 0.5, 1] if block == "res_bottleneck_linear" else [1, 2, 4]
    bs = [float(b) for b in rng.choice(ratios, n)] if "b" in reads else [1.0] * n
    gs = pick([1, 2, 4, 8]) if "g" in reads else [1] * n
    ks = tuple(pick([1, 3, 5])) if "k" in reads else ()
    es = tuple(float(e) for e in rng.choice([1, 3, 6], n)) if "e" in reads else ()
    own_se = get_block(block).default_se  # a block with its own SE ratio draws none
    se_ratio = float(rng.choice([0.0, 0.25])) if "se_ratio" in reads and not own_se else 0.0
    return anynet_arch(ds, ws, bs, gs, shape=shape, stem_w=int(rng.choice([8, 16, 32])),
                       block=block, stem=stem, strides=tuple(pick([1, 2])), ks=ks,
                       act=str(rng.choice(ACTS)), se_ratio=se_ratio, es=es,
                       head_w=int(rng.choice([0, 64])))


def check_counts(arch: Arch) -> dict[str, bool]:
    """The analytic counts against the built module: params (numel), flops (fvcore's conv +
    linear plus the bias adds it leaves out) and acts (forward hooks)."""
    import torch

    from dsd.model.complexity import complexity
    from dsd.model.net import build

    cx = complexity(arch)
    v = verify_arch(arch)
    sh = arch.shape
    x = torch.zeros(1, sh.in_channels, sh.resolution, sh.resolution)
    acts = hooked_acts(build(arch).eval(), x)
    return {"params": v["params_torch"] == cx["params"],
            "flops": v["flops_fvcore_conv_linear"] + v["bias_adds"] == cx["flops"],
            "acts": acts == cx["acts"]}


CHECK_SHAPES = {"32 px, 10 classes": (3, 32, 10, 1), "224 px, 1000 classes": (3, 224, 1000, 2)}


def check_all(n: int, seed: int = 0, blocks: list[str] | None = None,
              advance=lambda: None) -> list[dict]:
    """`dsd model check`: for each block type, stem and shape, n random architectures, and
    how many of them have each analytic count equal to the built module's. `advance` is
    called once per architecture (a progress bar)."""
    import numpy as np

    from dsd.errors import DsdError
    from dsd.model.arch import Shape
    from dsd.model.blocks import BLOCKS, STEMS

    blocks = blocks or list(BLOCKS)
    unknown = [b for b in blocks if b not in BLOCKS]
    if unknown or n < 1:
        raise DsdError(f"--block: unknown block {unknown[0]!r}; use {', '.join(BLOCKS)}" if unknown
                       else "--n must be at least 1")
    rng = np.random.default_rng(seed)
    rows = []
    for b in blocks:
        for s in STEMS:
            for label, dims in CHECK_SHAPES.items():
                ok = {"params": 0, "flops": 0, "acts": 0}
                for _ in range(n):
                    for k, v in check_counts(random_arch(rng, b, s, Shape(*dims))).items():
                        ok[k] += v
                    advance()
                rows.append({"block": b, "stem": s, "shape": label, "n": n, **ok})
    return rows
