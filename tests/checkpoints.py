"""A scaled-down checkpoint in the authors' layout, for the tests of the converter and of the
weights' download (tests/test_checkpoint.py, tests/test_weights.py)."""

import dataclasses

import torch

from core.model_config import load_config
from engine.model.diffusion import DiffV2M
from engine.model.vae import VAE


def official_debug():
    """The debug size with every semantic of the `official` preset."""
    cfg = load_config("debug")
    off = load_config("official")
    cfg.name = "official-debug"
    cfg.dit = dataclasses.replace(cfg.dit, norm_placement="replace", emotion_source="rhythm")
    cfg.predictor = dataclasses.replace(cfg.predictor, input_norm=off.predictor.input_norm)
    cfg.encoders = dataclasses.replace(cfg.encoders, class_id=off.encoders.class_id, start_time=off.encoders.start_time)
    return cfg


def write_official_ckpt(path, cfg, extra=None, ema=True):
    """A scaled-down checkpoint with the released names: Lightning layout, `diffusion.` prefix,
    the three unused projections, the VAE and an EMA copy (with different values)."""
    torch.manual_seed(0)
    model, vae = DiffV2M(cfg), VAE(cfg.vae)
    sd = {}
    for k, v in model.state_dict().items():
        name = "model.model." + k[len("dit."):] if k.startswith("dit.") else k
        sd["diffusion." + name] = v.clone() + torch.randn_like(v.float()).to(v.dtype) * 0.01
    c = cfg.dit.cond_dim
    sd["diffusion.conditioner.conditioners.color.proj_out.weight"] = torch.randn(c, cfg.encoders.color_dim)
    sd["diffusion.conditioner.conditioners.color.proj_out.bias"] = torch.randn(c)
    sd["diffusion.conditioner.conditioners.rhythm.proj_out.weight"] = torch.randn(c, 1)
    sd["diffusion.conditioner.conditioners.rhythm.proj_out.bias"] = torch.randn(c)
    sd["diffusion.conditioner.conditioners.semantic.proj_out.weight"] = torch.randn(c, 512)  # built, never used
    sd["diffusion.conditioner.conditioners.semantic.proj_out.bias"] = torch.randn(c)
    for k, v in vae.model.state_dict().items():
        sd["diffusion.pretransform.model." + k] = v.clone()
    if ema:
        for k, v in model.dit.state_dict().items():
            sd["diffusion_ema.ema_model.model.model." + k] = v.clone() + 1.0
    sd.update(extra or {})
    ckpt = {"state_dict": sd, "epoch": 49, "global_step": 12345}
    torch.save(ckpt, path)
    return sd
