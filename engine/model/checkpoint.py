"""cutscore's checkpoint format (the authors' released checkpoint is converted by official.py).

A model folder holds:
  config.json        {"format_version": 2, "model": <ModelConfig>, "vae": "vae" | null}
  model.safetensors  the DiffV2M state (conditioner.* incl. the rhythm predictor, dit.*)
  vae/               optional: model_config.json + model.safetensors of the autoencoder
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from core.errors import CutscoreError
from core.model_config import ModelConfig, load_config, upgrade_model_dict
from engine.model.diffusion import DiffV2M

FORMAT_VERSION = 2
# Format 1 (cutscore before issue 13) named the semantic projection `proj_out`; format 2 follows the
# released forward (`proj_out1` -> `proj_out2`). Old keys are renamed explicitly on load.
V1_RENAMES = {"conditioner.conditioners.semantic.proj_out.": "conditioner.conditioners.semantic.proj_out2."}


def save_model(folder: str | Path, model: DiffV2M, vae=None) -> Path:
    """Write model.safetensors + config.json (+ vae/) atomically enough: files go to a temp folder
    that is renamed into place."""
    from safetensors.torch import save_file

    from engine.model.vae import save_vae

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    if vae is not None:
        save_vae(vae, tmp / "vae")
    meta = {"format_version": FORMAT_VERSION, "model": model.cfg.to_dict(), "vae": "vae" if vae is not None else None}
    (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def read_meta(folder: str | Path) -> dict:
    p = Path(folder) / "config.json"
    if not p.exists():
        raise CutscoreError(f"{folder}: not a cutscore model folder (no config.json); "
                            "train one or convert the official checkpoint with `cutscore import-official`")
    meta = json.loads(p.read_text())
    version = meta.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise CutscoreError(f"{p}: checkpoint format {version} is not supported (this cutscore reads "
                            f"{FORMAT_VERSION}); re-export it with a matching cutscore")
    return meta


def load_model(folder: str | Path, device: str | torch.device = "cpu"):
    """-> (DiffV2M in eval mode, VAE or None). Strict: every key must match."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_meta(folder)
    cfg = ModelConfig.from_dict(upgrade_model_dict(meta["model"], meta["format_version"]))
    model = DiffV2M(cfg)
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise CutscoreError(f"{weights}: missing; the model folder is incomplete")
    state = load_file(str(weights))
    if meta["format_version"] == 1:
        state = {_renamed(k, V1_RENAMES): v for k, v in state.items()}
    load_strict(model, state, weights)
    vae = None
    if meta.get("vae"):
        from engine.model.vae import load_vae

        vae = load_vae(folder / meta["vae"]).to(device)
    return model.to(device).eval(), vae


def _renamed(key: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def load_strict(model: torch.nn.Module, state: dict, source) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad_shape:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape)):
            if keys:
                parts.append(f"{label}: {', '.join(keys[:8])}" + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else ""))
        raise CutscoreError(f"{source}: weights do not fit the model config ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)


# ---- parameter counts ----------------------------------------------------------------------------

def model_info(config_or_dir: str | Path) -> dict:
    """Parameter counts by part, built on the meta device (no memory, even for the full model)."""
    from core.model_config import default_vae_config
    from engine.model.vae import VAE

    p = Path(config_or_dir)
    cfg = ModelConfig.from_dict(read_meta(p)["model"]) if p.is_dir() else load_config(config_or_dir)
    with torch.device("meta"):
        model = DiffV2M(cfg)
        vae = VAE(cfg.vae or default_vae_config())

    def count(module) -> int:
        return sum(math.prod(t.shape) for t in module.parameters())

    pred = count(model.conditioner.predictor)
    info = {"dit": count(model.dit), "rhythm_predictor": pred,
            "encoders": count(model.conditioner) - pred, "vae": count(vae.model)}
    info["total"] = sum(info.values())
    return info
