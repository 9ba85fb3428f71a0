"""What this machine has (torch-free at import): the weights found (with the command that gets
each missing one) and the runtime, for `cutscore doctor`. (The engine answering on loopback: core.client.find_server; a model's window
length: core.model_config.model_window_s.)"""

from __future__ import annotations

import platform
import shutil
import sys

from core.errors import CutscoreError
from core.paths import DEMO_MODEL, installed_model


def find_weights() -> dict[str, str]:
    """Where each kind of weights was found on this machine, or the command that gets it."""
    from engine.weights import PARTS, cached

    found = {"demo model": str(DEMO_MODEL) if (DEMO_MODEL / "config.json").exists() else
             "not found (a fresh clone has it: resources/models/demo)"}
    for label, name in (("Stable Audio Open VAE", "sao-vae"), ("CLIP ViT-B/32 (openai)", "clip")):
        paths = [cached(p) for p in PARTS[name]]
        found[label] = (str(paths[-1].parent) if all(paths) else
                        f"not found: get it with `cutscore weights get {name}`")
    model = installed_model("official")
    found["Diff-V2M official checkpoint"] = (str(model) if model else
                                             "not found: get it with `cutscore weights get official`")
    return found


def runtime_info() -> dict:
    import torch

    from engine.device import describe, pick

    try:
        device = describe(pick())
    except CutscoreError as e:
        device = str(e)
    return {"python": platform.python_version() + f" ({sys.executable})", "torch": torch.__version__,
            "device": device, "weights": find_weights(),
            "tools": {t: shutil.which(t) for t in ("ffmpeg", "melt")}}
