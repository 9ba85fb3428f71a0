"""Semantic features of Diff-V2M: one CLIP image embedding a second (docs/MODEL_SPEC.md "Visual
features"), through open_clip. Default `ViT-B-32-quickgelu` with pretrained `openai` (the paper's
CLIP ViT-B/32); any open_clip model name with a pretrained tag or a local checkpoint file works by
config. Batched, under no_grad, on CUDA when there is one. Tests use `cutscore-tiny-clip`
(resources/configs/clip/), a random-init open_clip config that downloads nothing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import CutscoreError
from core.paths import CONFIG_DIR, DEFAULT_CLIP

DEFAULT_MODEL, DEFAULT_PRETRAINED = DEFAULT_CLIP
LOCAL_CONFIGS = CONFIG_DIR / "clip"
TINY = "cutscore-tiny-clip"


@lru_cache(maxsize=2)
def load_clip(model_name: str = DEFAULT_MODEL, pretrained: str | None = DEFAULT_PRETRAINED, device: str | None = None):
    """-> (model, preprocess, device). `pretrained` is an open_clip tag, a local file, or None
    (random init: the tiny test model)."""
    import open_clip
    import torch

    from engine.hub import cached_file, online

    open_clip.add_model_config(LOCAL_CONFIGS)
    from engine.device import pick

    device = pick(device)
    if pretrained and not Path(pretrained).is_file():
        hub = (open_clip.get_pretrained_cfg(model_name, pretrained) or {}).get("hf_hub", "").strip("/")
        if hub:
            local = cached_file(hub, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"])
            if local:
                pretrained = local
            elif not online():
                raise CutscoreError(f"CLIP {model_name} ({pretrained}) is not in the Hugging Face cache and this "
                                    f"machine is offline; run once online, pass a local checkpoint with "
                                    f"--clip-pretrained, or --no-clip")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # a random-init model (the tiny test CLIP) is the same in every process
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained or None,
                                                                         device=device)
    except Exception as e:  # noqa: BLE001 - hub, file and config errors all mean "no usable weights"
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CutscoreError(f"CLIP {model_name} ({pretrained}) could not be loaded ({first}); run once online to "
                            "fill the Hugging Face cache, pass a local checkpoint with --clip-pretrained, "
                            "or --no-clip") from e
    model.eval()
    return model, preprocess, device


def clip_embeddings(frames_rgb: np.ndarray, model_name: str = DEFAULT_MODEL, pretrained: str | None = DEFAULT_PRETRAINED,
                    batch_size: int = 32) -> np.ndarray:
    """(M, H, W, 3) uint8 RGB -> (M, D) float32 image embeddings (not normalised: the rhythm
    predictor z-scores them and the semantic encoder is linear)."""
    import torch
    from PIL import Image

    model, preprocess, device = load_clip(model_name, pretrained)
    out = []
    with torch.no_grad():
        for i in range(0, len(frames_rgb), batch_size):
            batch = torch.stack([preprocess(Image.fromarray(f)) for f in frames_rgb[i:i + batch_size]]).to(device)
            out.append(model.encode_image(batch).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)
