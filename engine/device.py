"""Where the engine runs: `--device` / CUTSCORE_DEVICE (auto, cuda, mps, cpu), auto picking CUDA, then
Apple's Metal (MPS), then the CPU. On MPS, PyTorch runs an op Metal lacks on the CPU
(PYTORCH_ENABLE_MPS_FALLBACK, set here before the first op) instead of failing. Tested with the
backends faked (tests/test_device.py): cutscore has not been run on Apple hardware."""

from __future__ import annotations

import os

from core.errors import CutscoreError

DEVICES = ("auto", "cuda", "mps", "cpu")
ENV = "CUTSCORE_DEVICE"


def pick(requested: str | None = None) -> str:
    """The device to run on: `requested` (a --device), else CUTSCORE_DEVICE, else auto."""
    import torch

    want = (requested or os.environ.get(ENV) or "auto").strip().lower()
    kind = want.split(":")[0]
    if kind not in DEVICES or (":" in want and kind != "cuda"):
        raise CutscoreError(f"device {want!r}: choose {', '.join(DEVICES)} (--device or {ENV})")
    cuda, mps = torch.cuda.is_available(), _mps_available()
    if kind == "auto":
        kind = want = "cuda" if cuda else "mps" if mps else "cpu"
    if kind == "cuda" and not cuda:
        raise CutscoreError(f"device {want!r}: torch sees no CUDA GPU here; use --device cpu (or auto)")
    if kind == "mps" and not mps:
        raise CutscoreError(f"device {want!r}: Apple's Metal (MPS) is not available here (a Mac with Apple silicon "
                            "and a PyTorch built with MPS); use --device cpu (or auto)")
    if kind == "mps":
        os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")  # an op Metal lacks runs on the CPU
    return want


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"CUDA ({torch.cuda.get_device_name(0)})"
    if device == "mps":
        return "Apple Metal (MPS; untested by cutscore on Apple hardware)"
    return f"CPU ({os.cpu_count()} cores, no GPU found)"
