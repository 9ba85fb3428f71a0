"""Condition encoders of Diff-V2M (paper, section 3.3; docs/MODEL_SPEC.md "Conditioning"): per-second
video features and the window's start time and duration -> the DiT's three token streams
(emotional, semantic, rhythmic) and its global vector. Every encoder returns (tokens, mask).

Module names mirror the released checkpoint (`conditioner.conditioners.<name>`), so importing it is
a prefix rename (official.py). The rhythm predictor lives inside the semantic conditioner there
(`semantic.extractor`), and so it does here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from core.model_config import ModelConfig
from engine.model.dit import Cond
from engine.model.layers import LearnedFourier
from engine.model.rhythm import RhythmPredictor


class Features(NamedTuple):
    """One batch of windows, per second (M seconds, mask True where the second is real)."""

    clip: torch.Tensor  # (B, M, 512) CLIP image embeddings
    color: torch.Tensor  # (B, M, 3072) colour histograms
    scene: torch.Tensor  # (B, M) 0/1 scene onsets (a cut starts a new scene in that second)
    beat: torch.Tensor  # (B, M) visual beat strength, 0 where no peak
    mask: torch.Tensor  # (B, M) bool
    start: torch.Tensor  # (B,) seconds from the start of the piece
    duration: torch.Tensor  # (B,) seconds of music in this window


class NumberEmbedder(nn.Module):
    def __init__(self, freqs: int, dim: int):
        super().__init__()
        self.embedding = nn.Sequential(LearnedFourier(freqs), nn.Linear(2 * freqs + 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


class NumberConditioner(nn.Module):
    """A continuous number (start time, duration) clamped to [0, max], divided by max, embedded."""

    def __init__(self, freqs: int, dim: int, max_value: float):
        super().__init__()
        self.max_value = max_value
        self.embedder = NumberEmbedder(freqs, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().clamp(0, self.max_value) / self.max_value
        return self.embedder(x.to(self.embedder.embedding[1].weight.dtype))  # (B, 768)


SEMANTIC_MID = 512  # the released SemanticConditioner's mid_dim


class SemanticConditioner(nn.Module):
    """CLIP tokens -> proj_out1 (Identity when CLIP is 512 wide) -> proj_out2 (Linear 512 -> 768),
    the path the released forward takes (its base class's `proj_out` is built but never used)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        clip_dim = cfg.encoders.clip_dim
        self.proj_out1 = nn.Identity() if clip_dim == SEMANTIC_MID else nn.Linear(clip_dim, SEMANTIC_MID)
        self.proj_out2 = nn.Linear(SEMANTIC_MID, cfg.dit.cond_dim)
        self.extractor = RhythmPredictor(cfg.predictor)

    def forward(self, f: Features) -> tuple[torch.Tensor, torch.Tensor]:
        return self.proj_out2(self.proj_out1(f.clip)), f.mask  # (B, M, 768), (B, M)


class TwoLayerConditioner(nn.Module):
    """Two linear layers, no activation between (the rhythmic and emotional encoders)."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int):
        super().__init__()
        self.proj_out1 = nn.Linear(dim_in, hidden)
        self.proj_out2 = nn.Linear(hidden, dim_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.proj_out2(self.proj_out1(x)), mask


class ClassConditioner(nn.Module):
    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.int_embedder = nn.Embedding(num_classes, dim)

    def forward(self, class_id: torch.Tensor) -> torch.Tensor:
        return self.int_embedder(class_id)


class ConditionEncoders(nn.Module):
    """Features (+ a rhythm to condition on) -> Cond for the DiT, and the predicted rhythm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        e, c = cfg.encoders, cfg.dit.cond_dim
        self.cfg = cfg
        self.conditioners = nn.ModuleDict({
            "semantic": SemanticConditioner(cfg),
            "rhythm": TwoLayerConditioner(cfg.predictor.out_channels, e.rhythm_hidden, c),
            "color": TwoLayerConditioner(e.color_dim, e.color_hidden, c),
            "class": ClassConditioner(e.num_classes, c),
            "seconds_start": NumberConditioner(e.number_freqs, c, e.max_seconds),
            "seconds_total": NumberConditioner(e.number_freqs, c, e.max_seconds),
        })

    @property
    def predictor(self) -> RhythmPredictor:
        return self.conditioners["semantic"].extractor

    def numbers(self, f: Features) -> tuple[torch.Tensor, torch.Tensor]:
        """(start, total) as the number embedders see them (EncoderConfig.start_time)."""
        if self.cfg.encoders.start_time == "zero":
            return torch.zeros_like(f.start), torch.ceil(f.duration - 1e-6)
        return f.start, f.duration

    def class_ids(self, f: Features) -> torch.Tensor:
        return torch.full((f.clip.shape[0],), self.cfg.encoders.class_id, dtype=torch.long, device=f.clip.device)

    def predict_rhythm(self, f: Features) -> torch.Tensor:
        return self.predictor(f.clip, f.scene, f.beat, f.mask, self.class_ids(f))  # (B, M, C)

    def forward(self, f: Features, rhythm: torch.Tensor) -> Cond:
        """rhythm (B, M, C): the per-second rhythm to condition on (predicted or ground truth).
        The predictor's gradient never flows from here: callers pass a detached prediction."""
        k = self.conditioners
        start_s, total_s = self.numbers(f)
        start, total = k["seconds_start"](start_s), k["seconds_total"](total_s)  # (B, 768) each
        cls = k["class"](self.class_ids(f))  # (B, 768)
        extra = torch.stack([start, total], dim=1)  # (B, 2, 768): appended to sem and rhy streams
        extra_mask = torch.ones(extra.shape[:2], dtype=torch.bool, device=extra.device)
        sem, sem_mask = k["semantic"](f)
        rhy, rhy_mask = k["rhythm"](rhythm.to(sem.dtype), f.mask)
        emo, emo_mask = k["color"](f.color.to(sem.dtype), f.mask)
        return Cond(
            emo=emo, emo_mask=emo_mask,
            sem=torch.cat([sem, extra], 1), sem_mask=torch.cat([sem_mask, extra_mask], 1),
            rhy=torch.cat([rhy, extra], 1), rhy_mask=torch.cat([rhy_mask, extra_mask], 1),
            global_cond=torch.cat([start, total, cls], dim=-1),  # (B, 2304)
        )
