"""A thin wrapper over stable-audio-tools' autoencoder (Stable Audio Open 1.0's "oobleck" VAE in the
paper; docs/MODEL_SPEC.md "Audio and latents"): build it from a config, load only its weights from a
local folder (model_config.json + model.safetensors of Stable Audio Open, or our own vae folder)
or the Hugging Face cache, encode/decode, and pad/trim to an exact sample count.

Latents are divided by the config's `scale` on encoding and multiplied by it on decoding, as
stable-audio-tools' AutoencoderPretransform does: a VAE whose latents are far from unit variance
(the demo's: std 0.24) gives the diffusion model unit-variance data, for which its noise schedule
is made. Stable Audio Open's VAE has no scale (1.0).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from core.errors import CutscoreError

SAO_REPO = "stabilityai/stable-audio-open-1.0"
SAO_PREFIX = "pretransform.model."  # where the VAE sits inside Stable Audio Open's model.safetensors


def _create_autoencoder(vae_cfg: dict) -> nn.Module:
    with contextlib.redirect_stdout(io.StringIO()):  # stable-audio-tools prints on import
        from stable_audio_tools.models.autoencoders import create_autoencoder_from_config
    with warnings.catch_warnings():  # its blocks use the deprecated weight_norm, whose names the weights keep
        warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
        return create_autoencoder_from_config(vae_cfg)


class VAE(nn.Module):
    """Frozen audio autoencoder: audio (B, channels, samples) <-> latents (B, latent_dim, frames)."""

    def __init__(self, vae_cfg: dict):
        super().__init__()
        self.config = vae_cfg
        self.model = _create_autoencoder(vae_cfg)
        self.sample_rate = int(vae_cfg["sample_rate"])
        self.downsampling = int(vae_cfg["model"]["downsampling_ratio"])
        self.latent_dim = int(vae_cfg["model"]["latent_dim"])
        self.channels = int(vae_cfg["model"]["io_channels"])
        self.scale = float(vae_cfg.get("scale", 1.0))
        if not self.scale > 0:
            raise CutscoreError(f"the VAE config's scale must be positive, got {self.scale}")
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """The posterior mean by default; sample=True draws from it (as the released code does)."""
        audio = pad_or_trim(audio, -(-audio.shape[-1] // self.downsampling) * self.downsampling)
        if sample:
            return self.model.encode(audio) / self.scale
        h = self.model.encode(audio, skip_bottleneck=True)  # (B, 2 * latent_dim, frames)
        return h.chunk(2, dim=1)[0] / self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, num_samples: int | None = None, chunk_frames: int | None = None,
               overlap: int = 32) -> torch.Tensor:
        """chunk_frames: decode in chunks of that many latent frames, `overlap` frames shared by
        neighbours (half of it dropped on each side, stable-audio-tools' decode_audio), so memory stays
        bounded for long windows; None or a window no longer than one chunk decodes at once."""
        latents = latents * self.scale
        if chunk_frames and latents.shape[-1] > chunk_frames:
            if not 0 <= overlap < chunk_frames:
                raise ValueError(f"decode overlap must be in [0, {chunk_frames}), got {overlap}")
            audio = self.model.decode_audio(latents, chunked=True, chunk_size=chunk_frames, overlap=overlap)
        else:
            audio = self.model.decode(latents)  # (B, channels, frames * downsampling)
        return audio if num_samples is None else pad_or_trim(audio, num_samples)


def pad_or_trim(audio: torch.Tensor, num_samples: int) -> torch.Tensor:
    n = audio.shape[-1]
    if n == num_samples:
        return audio
    if n > num_samples:
        return audio[..., :num_samples]
    return torch.nn.functional.pad(audio, (0, num_samples - n))


def _state_from_safetensors(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state = load_file(str(path))
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state  # already a bare autoencoder state dict (our own vae folder)


def load_vae(folder: str | Path | None = None) -> VAE:
    """Stable Audio Open's VAE from a local folder (model_config.json + model.safetensors) or, with
    folder None, from the Hugging Face cache (downloaded only when the machine is online)."""
    if folder is None:
        from engine.hub import cached_file, online

        cached = cached_file(SAO_REPO, ["model.safetensors"])
        if cached is None and not online():
            raise CutscoreError(f"Stable Audio Open's VAE is not in the Hugging Face cache and this machine is offline; "
                                f"download {SAO_REPO} on a machine online (it needs a Hugging Face login) and pass its folder")
        try:
            from huggingface_hub import snapshot_download

            folder = snapshot_download(SAO_REPO, allow_patterns=["model_config.json", "model.safetensors"])
        except Exception as e:  # noqa: BLE001 - any hub failure means the same thing to the user
            raise CutscoreError(f"Stable Audio Open's VAE is not on this machine and could not be fetched ({e}); "
                                f"download {SAO_REPO} (it needs a Hugging Face login) and pass its folder") from e
    folder = Path(folder)
    cfg_path, weights = folder / "model_config.json", folder / "model.safetensors"
    for p in (cfg_path, weights):
        if not p.exists():
            raise CutscoreError(f"{p}: missing; a VAE folder holds model_config.json and model.safetensors")
    cfg = json.loads(cfg_path.read_text())
    outer = cfg.get("model", {}).get("pretransform", {})
    # Stable Audio Open's whole-model config holds the VAE as an "autoencoder" pretransform; an
    # autoencoder config of our own may hold a pretransform of its own (e.g. "patched") and is used as is
    vae_cfg = outer["config"] if outer.get("type") == "autoencoder" else cfg
    if "model" not in vae_cfg:  # Stable Audio Open's pretransform block: wrap it as an autoencoder config
        vae_cfg = {"model": vae_cfg, "sample_rate": cfg["sample_rate"], "audio_channels": cfg.get("audio_channels", 2)}
    if outer.get("type") == "autoencoder" and "scale" in outer:  # stable-audio-tools keeps it on the pretransform
        vae_cfg = {**vae_cfg, "scale": outer["scale"]}
    vae = VAE(vae_cfg)
    state = _state_from_safetensors(weights, SAO_PREFIX)
    vae.model.load_state_dict(state, strict=True)
    return vae


def latent_std(vae: VAE, clips: list[torch.Tensor]) -> float:
    """The standard deviation of the VAE's unscaled latents (posterior means) over some audio clips
    (each (channels, samples)): the `scale` that makes them unit-variance."""
    lat = torch.cat([vae.encode(c[None]).flatten() for c in clips]) * vae.scale
    return float(lat.std())


def with_scale(vae: VAE, scale: float) -> VAE:
    """The same VAE with another latent scale (kept in its config, so save_vae writes it)."""
    vae.config = {**vae.config, "scale": float(scale)}
    vae.scale = float(scale)
    return vae


def save_vae(vae: VAE, folder: str | Path) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_config.json").write_text(json.dumps(vae.config, indent=2))
    save_file({k: v.contiguous() for k, v in vae.model.state_dict().items()}, str(folder / "model.safetensors"))
