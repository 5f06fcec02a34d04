"""What a training failure means for the worker that hit it.

Three kinds, told apart by pure functions of the exception (so CPU tests drive them with
stand-in exceptions):

- out of memory: torch's own OutOfMemoryError, and the libraries' allocation failures
  that torch surfaces as a plain RuntimeError (cuDNN's and cuBLAS's workspaces). The
  worker retries at half the batch, then records `oom`.
- sticky: the CUDA context is lost (an illegal memory access, a device-side assert, ...);
  every later CUDA call in this process fails too, so the worker stops instead of writing
  a `failed` row for each model left in its queue.
- anything else: the model's own failure, recorded as `failed`; the batch goes on.

A failed CUDA graph capture is contained by `CaptureLatch`: PyTorch can leave its
allocator in a capturing state after one, so the process captures no more graphs and
frees no cached memory; later models train eagerly and their rows say why.
"""

from __future__ import annotations

from collections.abc import Callable

# Allocation failures that are not torch.cuda.OutOfMemoryError (messages as torch prints them).
OOM_MARKERS = ("CUDA out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED",
               "CUSOLVER_STATUS_ALLOC_FAILED", "CUDA error: out of memory", "cudaErrorMemoryAllocation")

# CUDA's sticky errors: after one, the context is unusable until the process exits.
STICKY_MARKERS = ("illegal memory access", "device-side assert", "misaligned address",
                  "unspecified launch failure", "illegal instruction", "hardware stack error",
                  "invalid program counter", "launch timed out", "uncorrectable ECC error",
                  "cudaErrorIllegalAddress", "cudaErrorAssert", "cudaErrorLaunchFailure",
                  "CUDA driver shutting down", "no CUDA-capable device")


class DeviceLost(Exception):
    """The device became unusable: the worker stops; `row` is the model in flight's result."""

    def __init__(self, message: str, row: dict | None = None):
        super().__init__(message)
        self.row = row


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def first_line(exc: BaseException, width: int = 160) -> str:
    """'Type: the message's first line', for a result row's message or step column."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0][:width] if lines else ''}".rstrip(": ")


def is_oom(exc: BaseException) -> bool:
    """Out of memory, whichever library ran out."""
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
        return True
    return isinstance(exc, RuntimeError | MemoryError) and any(m in str(exc) for m in OOM_MARKERS)


def is_sticky(exc: BaseException) -> bool:
    """An error CUDA does not recover from in this process, by its message."""
    return any(m in _text(exc) for m in STICKY_MARKERS)


def classify(exc: BaseException, device_usable: Callable[[], bool] | None = None) -> str:
    """'oom', 'sticky' or 'other'. `device_usable` (a probe, for CUDA devices) catches sticky
    errors whose message this module does not know: any failure after which CUDA calls fail."""
    if is_sticky(exc):
        return "sticky"
    if is_oom(exc):
        return "oom"
    if device_usable is not None and not device_usable():
        return "sticky"
    return "other"


def cuda_usable(device) -> bool:
    """Whether CUDA still works here: a tiny kernel and a synchronize, nothing raised."""
    import torch

    try:
        if not torch.cuda.is_available():
            return False
        torch.ones(1, device=device).add_(1)
        torch.cuda.synchronize(device)
        return True
    except Exception:
        return False


class CaptureLatch:
    """Trips on the first failed CUDA graph capture in this process, and stays tripped."""

    def __init__(self):
        self.reason: str | None = None

    def trip(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    @property
    def label(self) -> str:
        """The step column of a model that wanted a graph after the latch tripped."""
        return f"eager (graphs off in this process after a failed capture: {self.reason})"


GRAPHS = CaptureLatch()  # this process's; tests pass their own


def free_cached_memory(device) -> bool:
    """Hand the allocator's cached blocks back before a retry at half the batch; not after a
    failed capture in this process, when the allocator may still think it is capturing.
    Whether it freed them."""
    import torch

    if torch.device(device).type != "cuda" or GRAPHS.reason is not None:
        return False
    torch.cuda.empty_cache()
    return True
