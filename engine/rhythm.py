"""Explicit rhythm in Diff-V2M (paper, section 3.2): the audio rhythm representations used as
targets (ODF_LR, Mel_LR, Tem_LR, computed from a waveform exactly as MODEL_SPEC.md says) and the
rhythm predictor that estimates ODF_LR from the video's per-second features.

Predictor input: X = zscore(CLIP) + Embed(scene onset) + MLP(beat strength), a class token
prepended, a 12-layer pre-norm transformer (512 wide, 8 heads, RoPE on 32 dims), Linear(512 -> 1).
The z-score is the authors' by default (over the whole zero-padded window, unbiased std + 1e-6, no
key mask: `input_norm="window"`), or over the valid seconds with a key mask (`"valid"`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.config import RhythmPredictorConfig
from engine.layers import Transformer

REF_SR, REF_HOP = 44100, 512  # the paper's onset hop at 44.1 kHz; other rates keep the same hop time


def zscore(x: np.ndarray, axis=None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=axis, keepdims=axis is not None)
    return (x - x.mean(axis=axis, keepdims=axis is not None)) / np.maximum(std, 1e-8)


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    return y.mean(axis=0) if y.ndim == 2 else y  # (channels, samples) -> (samples,)


def _hop(sr: int, hop_at_ref: int = REF_HOP) -> int:
    return max(1, int(round(hop_at_ref * sr / REF_SR)))


def odf_lr(y: np.ndarray, sr: int, seconds: int | None = None) -> np.ndarray:
    """ODF_LR (M, 1): onset strength (hop 512 at 44.1 kHz) z-scored over the clip; peaks with
    prominence 0.05; each peak goes to second round(t); a second keeps its largest positive peak."""
    import librosa
    from scipy.signal import find_peaks

    y = _mono(y)
    hop = _hop(sr)
    m = seconds if seconds is not None else int(np.ceil(len(y) / sr))
    odf = zscore(librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop))
    peaks, _ = find_peaks(odf, prominence=0.05)
    out = np.zeros((m, 1), dtype=np.float32)
    for p in peaks:
        sec = min(int(round(p * hop / sr)), m - 1)
        if odf[p] > 0 and odf[p] > out[sec, 0]:
            out[sec, 0] = odf[p]
    return out


def _block_mean(feat: np.ndarray, frames_per_s: float, m: int, channels: int) -> np.ndarray:
    """(F, N) feature over N frames -> (m, channels): mean over each second and each band group."""
    f, n = feat.shape
    out = np.zeros((m, channels), dtype=np.float32)
    groups = np.array_split(np.arange(f), channels)
    for s in range(m):
        a, b = int(round(s * frames_per_s)), int(round((s + 1) * frames_per_s))
        block = feat[:, a:max(b, a + 1)] if a < n else feat[:, -1:]
        out[s] = [block[g].mean() for g in groups]
    return out


def mel_lr(y: np.ndarray, sr: int, seconds: int | None = None, channels: int = 16) -> np.ndarray:
    """Mel_LR (M, 16): 128-band mel (n_fft 2048, hop 512) in dB, block-averaged, z-scored."""
    import librosa

    y = _mono(y)
    hop = _hop(sr)
    m = seconds if seconds is not None else int(np.ceil(len(y) / sr))
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=_hop(sr, 2048), hop_length=hop,
                                                             n_mels=128))
    return zscore(_block_mean(mel, sr / hop, m, channels)).astype(np.float32)


def tem_lr(y: np.ndarray, sr: int, seconds: int | None = None, channels: int = 16) -> np.ndarray:
    """Tem_LR (M, 16): librosa tempogram (hop 128, window 384), block-averaged, z-scored."""
    import librosa

    y = _mono(y)
    hop = _hop(sr, 128)
    m = seconds if seconds is not None else int(np.ceil(len(y) / sr))
    tg = librosa.feature.tempogram(y=y, sr=sr, hop_length=hop, win_length=384)
    return zscore(_block_mean(tg, sr / hop, m, channels)).astype(np.float32)


def rhythm_target(y: np.ndarray, sr: int, representation: str = "odf", seconds: int | None = None) -> np.ndarray:
    """The per-second rhythm target used as condition and loss target: the representation,
    z-scored again per sample (padding included), as MODEL_SPEC.md says."""
    fns = {"odf": odf_lr, "mel": mel_lr, "tem": tem_lr}
    if representation not in fns:
        raise ValueError(f"unknown rhythm representation: {representation}")
    return zscore(fns[representation](y, sr, seconds)).astype(np.float32)


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
