"""cutscore's checkpoint format and the import of the authors' released Diff-V2M checkpoint.

A model folder holds:
  config.json        {"format_version": 2, "model": <ModelConfig>, "vae": "vae" | null}
  model.safetensors  the DiffV2M state (conditioner.* incl. the rhythm predictor, dit.*)
  vae/               optional: model_config.json + model.safetensors of the autoencoder

`cutscore import-official model_odf.ckpt -o DIR` maps every DiT and conditioner parameter of the
released Lightning checkpoint (names in shared/reference/official_diffv2m_state_dict.tsv) onto the
`official` preset; anything it cannot place is listed in the error, and loading is strict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from engine.errors import CutscoreError
from engine.model.config import ModelConfig, load_config, upgrade_model_dict
from engine.model.diffusion import DiffV2M

FORMAT_VERSION = 2
# Format 1 (cutscore before issue 13) named the semantic projection `proj_out`; format 2 follows the
# released forward (`proj_out1` -> `proj_out2`). Old keys are renamed explicitly on load.
V1_RENAMES = {"conditioner.conditioners.semantic.proj_out.": "conditioner.conditioners.semantic.proj_out2."}

# Parameters the released code builds but its forward never uses (kept in its state dict only).
# They are dropped by name, never silently: anything else unplaced is an error.
OFFICIAL_UNUSED = (
    "conditioner.conditioners.color.proj_out.",  # color goes through proj_out1 -> proj_out2
    "conditioner.conditioners.rhythm.proj_out.",  # rhythm goes through proj_out1 -> proj_out2
    "conditioner.conditioners.semantic.proj_out.",  # semantic goes through proj_out1 (Identity) -> proj_out2
)
OFFICIAL_DIT, OURS_DIT = "model.model.", "dit."
OFFICIAL_COND = "conditioner.conditioners."
OFFICIAL_VAE = "pretransform.model."


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
    _load_strict(model, state, weights)
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


def _load_strict(model: torch.nn.Module, state: dict, source) -> None:
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


# ---- the authors' checkpoint -------------------------------------------------------------------

def map_official(state: dict[str, torch.Tensor], ema: bool = False) -> tuple[dict, dict, list[str]]:
    """Official names (relative to the Lightning module's `diffusion.`) -> (our DiffV2M state,
    VAE state, names left unmapped). With ema, the DiT comes from the EMA copy."""
    ours, vae, unmapped = {}, {}, []
    dit_src = {}
    if ema:
        prefix = _find_ema_prefix(state)
        dit_src = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    for name, tensor in state.items():
        if name.startswith("diffusion_ema."):
            continue  # the EMA copy: used above when asked for, otherwise ignored by design
        if name.startswith(OFFICIAL_DIT):
            if not ema:
                ours[OURS_DIT + name[len(OFFICIAL_DIT):]] = tensor
        elif name.startswith(OFFICIAL_COND):
            if not name.startswith(OFFICIAL_UNUSED):
                ours[name] = tensor  # our conditioner keeps the released module names
        elif name.startswith(OFFICIAL_VAE):
            vae[name[len(OFFICIAL_VAE):]] = tensor
        else:
            unmapped.append(name)
    if ema:
        if not dit_src:
            raise CutscoreError("the checkpoint has no EMA copy of the DiT; convert without --ema")
        for name, tensor in dit_src.items():
            ours[OURS_DIT + name] = tensor
    return ours, vae, unmapped


def _find_ema_prefix(state: dict) -> str:
    probe = "transformer.project_in.weight"
    for k in state:
        if k.startswith("diffusion_ema.") and k.endswith(probe) and "online" not in k:
            return k[: -len(probe)]
    return "diffusion_ema.<none>."


def read_official_checkpoint(path: str | Path, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.exists():
        raise CutscoreError(f"{path}: no such file; download model_odf.ckpt from the Hugging Face repo TaylorJi/Diff-V2M")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - the unpickler raises many types
        if not allow_pickle:
            raise CutscoreError(
                f"{path}: this checkpoint holds pickled Python objects beyond tensors, which can run code "
                f"when loaded ({type(e).__name__}); if you trust its source, run again with --allow-pickle") from e
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CutscoreError(f"{path}: not a Lightning checkpoint (no state_dict)")
    out = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            continue
        out[k[len("diffusion."):] if k.startswith("diffusion.") else k] = v
    return out


def import_official(ckpt: str | Path, out_dir: str | Path, ema: bool = False, allow_pickle: bool = False,
                    config: str | ModelConfig = "official") -> dict:
    """Convert the authors' checkpoint into a cutscore model folder; returns a summary."""
    cfg = config if isinstance(config, ModelConfig) else load_config(config)
    state = read_official_checkpoint(ckpt, allow_pickle)
    ours, vae_state, unmapped = map_official(state, ema=ema)
    if unmapped:
        raise CutscoreError(f"{ckpt}: {len(unmapped)} parameters could not be mapped: "
                            f"{', '.join(unmapped[:10])}{' ...' if len(unmapped) > 10 else ''}")
    model = DiffV2M(cfg)
    _load_strict(model, {k: v.to(torch.float32) for k, v in ours.items()}, ckpt)
    vae = None
    if vae_state:
        from engine.model.config import default_vae_config
        from engine.model.vae import VAE

        vae = VAE(cfg.vae or default_vae_config())
        _load_strict(vae.model, {k: v.to(torch.float32) for k, v in vae_state.items()}, f"{ckpt} (VAE)")
    save_model(out_dir, model, vae)
    dropped = sorted(k for k in state if k.startswith(OFFICIAL_UNUSED))
    return {"out": str(out_dir), "parameters": len(ours), "vae_parameters": len(vae_state),
            "dropped_unused": dropped, "ema": ema}


# ---- parameter counts ----------------------------------------------------------------------------

def model_info(config_or_dir: str | Path) -> dict:
    """Parameter counts by part, built on the meta device (no memory, even for the full model)."""
    from engine.model.config import default_vae_config
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
