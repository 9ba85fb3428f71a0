"""The import of the authors' released Diff-V2M checkpoint (Tayjsl97/Diff-V2M-Code, model_odf.ckpt).

`cutscore import-official model_odf.ckpt -o DIR` maps every DiT and conditioner parameter of the
released Lightning checkpoint (names in shared/reference/official_diffv2m_state_dict.tsv) onto the
`official` preset and writes a cutscore model folder (checkpoint.py); anything it cannot place is
listed in the error, and loading is strict.
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.errors import CutscoreError
from core.model_config import ModelConfig, load_config
from engine.model.checkpoint import load_strict, save_model
from engine.model.diffusion import DiffV2M

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
    load_strict(model, {k: v.to(torch.float32) for k, v in ours.items()}, ckpt)
    vae = None
    if vae_state:
        from core.model_config import default_vae_config
        from engine.model.vae import VAE

        vae = VAE(cfg.vae or default_vae_config())
        load_strict(vae.model, {k: v.to(torch.float32) for k, v in vae_state.items()}, f"{ckpt} (VAE)")
    save_model(out_dir, model, vae)
    dropped = sorted(k for k in state if k.startswith(OFFICIAL_UNUSED))
    return {"out": str(out_dir), "parameters": len(ours), "vae_parameters": len(vae_state),
            "dropped_unused": dropped, "ema": ema}
