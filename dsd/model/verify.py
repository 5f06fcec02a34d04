"""Cross-checks of the analytic complexity against the built torch module and fvcore."""

from __future__ import annotations

from dsd.model.arch import Arch


def verify_arch(arch: Arch) -> dict[str, int]:
    """params_torch (sum of numel), fvcore's total flops and its conv + linear part.

    fvcore skips bias adds, so conv + linear equals our flops minus the biased layers'
    output elements (the classifier's num_classes, plus the SE convs' widths).
    """
    import warnings

    import torch
    from fvcore.nn import FlopCountAnalysis

    warnings.filterwarnings("ignore", category=FutureWarning)  # fvcore's use of torch.jit

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


def bias_adds(model, x) -> int:
    """Output elements of layers with a bias: what fvcore leaves out of its count."""
    import torch

    total = 0

    def hook(mod, _inp, out):
        nonlocal total
        if getattr(mod, "bias", None) is not None and isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            total += out[0].numel()  # per image: the trace runs a batch of one

    hs = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total
