"""Explicit rhythm in Diff-V2M (paper, section 3.2): the rhythm predictor that estimates ODF_LR
from the video's per-second features (the audio rhythm targets it learns are computed in
engine/features/audio.py).

Predictor input: X = zscore(CLIP) + Embed(scene onset) + MLP(beat strength), a class token
prepended, a 12-layer pre-norm transformer (512 wide, 8 heads, RoPE on 32 dims), Linear(512 -> 1).
The z-score is the authors' by default (over the whole zero-padded window, unbiased std + 1e-6, no
key mask: `input_norm="window"`), or over the valid seconds with a key mask (`"valid"`).
"""

from __future__ import annotations

import torch
from torch import nn

from core.model_config import RhythmPredictorConfig
from engine.model.layers import Transformer


def masked_zscore(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """z-score each sample of x (B, M, C) over its valid seconds (mask (B, M)) and channels."""
    m = mask[..., None].to(x.dtype)  # (B, M, 1)
    n = (m.sum(dim=(1, 2)) * x.shape[-1]).clamp(min=1)  # (B,)
    mean = (x * m).sum(dim=(1, 2)) / n
    var = (((x - mean[:, None, None]) * m) ** 2).sum(dim=(1, 2)) / n
    return (x - mean[:, None, None]) / var.clamp(min=1e-10).sqrt()[:, None, None] * m


def window_zscore(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The released code's normalisation: each sample of x (B, M, C) z-scored over all its rows
    and channels, padding included, with the unbiased std plus eps (so padded rows become
    -mean/std, not 0)."""
    mean = x.mean(dim=(1, 2), keepdim=True)
    std = x.std(dim=(1, 2), keepdim=True) + eps  # unbiased (n - 1), as torch.std defaults
    return (x - mean) / std


class RhythmPredictor(nn.Module):
    """Video features -> predicted per-second rhythm (B, M, out_channels)."""

    def __init__(self, cfg: RhythmPredictorConfig):
        super().__init__()
        self.input_norm = cfg.input_norm
        # the inputs are summed in CLIP space (clip_dim), then projected to the transformer's width
        self.transformer = Transformer(cfg.clip_dim, cfg.dim, cfg.out_channels, cfg.depth, cfg.num_heads,
                                       cfg.ff_mult, cfg.rope_dim)
        self.class_embedding = nn.Embedding(cfg.num_classes, cfg.clip_dim)
        self.scene_embedding = nn.Embedding(2, cfg.clip_dim)
        self.pseudo_linear = nn.Sequential(nn.Linear(1, cfg.beat_hidden), nn.ReLU(),
                                           nn.Linear(cfg.beat_hidden, cfg.clip_dim))

    def forward(self, clip: torch.Tensor, scene: torch.Tensor, beat: torch.Tensor, mask: torch.Tensor,
                class_id: torch.Tensor) -> torch.Tensor:
        if self.input_norm == "window":
            x, key_mask = window_zscore(clip), None  # (B, M, 512); every key attended, as released
        else:
            x = masked_zscore(clip, mask)  # (B, M, 512)
            key_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)  # (B, 1+M)
        x = x + self.scene_embedding(scene.long()) + self.pseudo_linear(beat[..., None].to(x.dtype))
        x = torch.cat([self.class_embedding(class_id)[:, None, :], x], dim=1)  # (B, 1+M, 512)
        return self.transformer(x, key_mask)[:, 1:]  # (B, M, out_channels)
