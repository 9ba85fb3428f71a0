"""What this machine has (torch-free at import): weights found, the engine answering on loopback,
the runtime, a model's window length. For `cutscore doctor`, `plan` and the panel."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

from engine.paths import DEFAULT_PORT, DEMO_MODEL


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


def model_window_s(model: str) -> float:
    """The generation window of a model (a folder or a preset), read from its config without torch."""
    from engine.model.config import load_config

    p = Path(model)
    if p.is_dir() and (p / "config.json").exists():
        meta = json.loads((p / "config.json").read_text())
        return float(meta.get("model", meta).get("window_seconds", 30.0))
    try:
        return load_config(model).window_seconds
    except Exception:  # noqa: BLE001 - an unknown name fails later, in the engine, with its own message
        return 30.0


def find_server(port: int = DEFAULT_PORT) -> str | None:
    """The URL of a cutscore engine answering /health on loopback, or None."""
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as r:
            info = json.loads(r.read())
        return f"{url} (model {info.get('model', '?')})"
    except Exception:  # noqa: BLE001 - no server is the normal case
        return None


def runtime_info() -> dict:
    import torch

    if torch.cuda.is_available():
        device = f"CUDA ({torch.cuda.get_device_name(0)})"
    else:
        device = f"CPU ({os.cpu_count()} cores, no GPU found)"
    return {"python": platform.python_version() + f" ({sys.executable})", "torch": torch.__version__,
            "device": device, "weights": find_weights(),
            "tools": {t: shutil.which(t) for t in ("ffmpeg", "melt")}}


def model_info(config_or_dir: str) -> dict:
    from engine.model.checkpoint import model_info as _info

    return _info(config_or_dir)


def import_official(checkpoint: str, out_dir, ema: bool = False, allow_pickle: bool = False,
                    config: str = "official") -> dict:
    from engine.model.official import import_official as _import

    return _import(checkpoint, out_dir, ema=ema, allow_pickle=allow_pickle, config=config)


def extract_features(video: str, start_s: float = 0.0, end_s: float | None = None, cuts_s=None,
                     clip_model: str | None = "ViT-B-32-quickgelu", clip_pretrained: str | None = "openai") -> dict:
    from engine.features import FeatureConfig, extract_report

    cfg = FeatureConfig(clip_model=clip_model, clip_pretrained=clip_pretrained or None)
    return extract_report(video, start_s=start_s, end_s=end_s, cuts_s=cuts_s, config=cfg)
