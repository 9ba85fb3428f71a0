"""What this machine has (torch-free at import): the weights found and the runtime, for
`cutscore doctor`. (The engine answering on loopback: core.client.find_server; a model's window
length: core.model_config.model_window_s.)"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

from core.paths import DEMO_MODEL


def _hf_cache() -> Path:
    return Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")


def find_weights() -> dict[str, str]:
    """Where each kind of weights was found on this machine, or 'not found'."""
    hub = _hf_cache()
    found = {}
    candidates = {
        "demo model": [DEMO_MODEL / "config.json"],
        "Stable Audio Open VAE": [hub / "models--stabilityai--stable-audio-open-1.0"],
        "CLIP ViT-B/32 (openai)": [hub / "models--timm--vit_base_patch32_clip_224.openai"],
        "Diff-V2M official checkpoint": [hub / "models--TaylorJi--Diff-V2M"],
    }
    for name, paths in candidates.items():
        hit = next((p for p in paths if p.exists()), None)
        found[name] = str(hit.parent if hit and hit.is_file() else hit) if hit else "not found"
    return found


def runtime_info() -> dict:
    import torch

    if torch.cuda.is_available():
        device = f"CUDA ({torch.cuda.get_device_name(0)})"
    else:
        device = f"CPU ({os.cpu_count()} cores, no GPU found)"
    return {"python": platform.python_version() + f" ({sys.executable})", "torch": torch.__version__,
            "device": device, "weights": find_weights(),
            "tools": {t: shutil.which(t) for t in ("ffmpeg", "melt")}}
