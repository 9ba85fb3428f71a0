"""The Diff-V2M diffusion transformer (paper, section 3.3 and figure 1b): a DiT over VAE latents
whose blocks hold the hierarchical cross-attention: self-attention, then the emotional stream,
then the semantic and rhythmic streams attended with the same query and fused under the diffusion
time t by one of the paper's fusion strategies. A global token (start time + duration + class +
timestep) is prepended to the latent sequence. docs/MODEL_SPEC.md has every number.

The forward takes tensors only; guidance, dropout and the v-objective live in diffusion.py.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from core.model_config import DiTConfig
from engine.model.layers import Attention, FeedForward, FourierFeatures, LayerNorm, RotaryEmbedding


class Cond(NamedTuple):
    """The DiT's conditioning: three 768-d token streams with key masks (True = real token) and
    the global vector concat(start, duration, class) (B, 3*768)."""

    emo: torch.Tensor  # (B, Se, 768)
    emo_mask: torch.Tensor  # (B, Se) bool
    sem: torch.Tensor  # (B, Ss, 768)
    sem_mask: torch.Tensor  # (B, Ss) bool
    rhy: torch.Tensor  # (B, Sr, 768)
    rhy_mask: torch.Tensor  # (B, Sr) bool
    global_cond: torch.Tensor  # (B, 2304)

    def cat(self, other: Cond) -> Cond:
        return Cond(*(torch.cat([a, b], dim=0) for a, b in zip(self, other)))

def _film_mlp(t_dim: int, hidden: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(t_dim, hidden), nn.ReLU(), nn.Linear(hidden, width))


class HierarchicalBlock(nn.Module):
    """One DiT block with the hierarchical cross-attention and a fusion strategy (cfg.fusion)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d, c = cfg.embed_dim, cfg.cond_dim
        self.cfg = cfg
        self.pre_norm = LayerNorm(d)
        self.self_attn = Attention(d, cfg.num_heads)
        self.cross_attend_norm = LayerNorm(d)
        self.cross_attn0 = Attention(d, cfg.num_heads, kv_dim=c, kv_heads=cfg.cond_heads)  # emotional
        self.color_norm = LayerNorm(d)
        self.cross_attn1 = Attention(d, cfg.num_heads, kv_dim=c, kv_heads=cfg.cond_heads)  # semantic
        self.cross_attn2 = Attention(d, cfg.num_heads, kv_dim=c, kv_heads=cfg.cond_heads)  # rhythmic
        if cfg.fusion in ("film_pre", "film_post", "film_select"):
            width = c if cfg.fusion == "film_pre" else d  # pre: on the context tokens; post: on h
            self.t_linear = nn.Linear(1, cfg.film_t_dim)
            self.FiLM_gamma_sem = _film_mlp(cfg.film_t_dim, cfg.film_hidden, width)
            self.FiLM_gamma_rhy = _film_mlp(cfg.film_t_dim, cfg.film_hidden, width)
            self.FiLM_beta_sem = _film_mlp(cfg.film_t_dim, cfg.film_hidden, width)
            self.FiLM_beta_rhy = _film_mlp(cfg.film_t_dim, cfg.film_hidden, width)
        if cfg.fusion in ("weighted", "film_pre", "film_post"):
            self.gate = nn.Sequential(nn.Linear(1, c), nn.SiLU(), nn.Linear(c, 1))  # alpha = sigmoid(gate(t))
        self.ff_norm = LayerNorm(d)
        self.ff = FeedForward(d, cfg.ff_mult)

    def _film(self, t: torch.Tensor, h_sem: torch.Tensor, h_rhy: torch.Tensor):
        e = self.t_linear(t[:, None])[:, None, :]  # (B, 1, film_t_dim)
        g_sem, g_rhy = torch.sigmoid(self.FiLM_gamma_sem(e)), torch.sigmoid(self.FiLM_gamma_rhy(e))
        return g_sem * h_sem + self.FiLM_beta_sem(e), g_rhy * h_rhy + self.FiLM_beta_rhy(e)

    def _weighted(self, t: torch.Tensor, h_sem: torch.Tensor, h_rhy: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.gate(t[:, None]))[:, None, :]  # (B, 1, 1)
        return alpha * h_sem + (1 - alpha) * h_rhy

    @staticmethod
    def _select(t: torch.Tensor, h_sem: torch.Tensor, h_rhy: torch.Tensor, select_t: float) -> torch.Tensor:
        return torch.where((t > select_t)[:, None, None], h_sem, h_rhy)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Cond, x_mask: torch.Tensor | None,
                rope: torch.Tensor, cross: dict | None = None) -> torch.Tensor:
        """cross: None, or the time-aligned cross-attention RoPE {"q": (T, r), "emo"/"sem"/"rhy": (S, r)}."""
        cfg = self.cfg
        c = cross or {}
        x = x + self.self_attn(self.pre_norm(x), key_mask=x_mask, rope=rope)
        emo_name = "rhy" if cfg.emotion_source == "rhythm" else "emo"
        emo, emo_mask = (cond.rhy, cond.rhy_mask) if emo_name == "rhy" else (cond.emo, cond.emo_mask)
        if cfg.norm_placement == "replace":  # the released code: the stream is replaced by LN(x)
            x = self.cross_attend_norm(x)
            x = x + self.cross_attn0(x, emo, emo_mask, c.get("q"), c.get(emo_name))
            x = self.color_norm(x)
            q = x
        else:  # the paper's figure: pre-norm residual branches
            x = x + self.cross_attn0(self.cross_attend_norm(x), emo, emo_mask, c.get("q"), c.get(emo_name))
            q = self.color_norm(x)
        sem, rhy = cond.sem, cond.rhy
        if cfg.fusion == "film_pre":
            sem, rhy = self._film(t, sem, rhy)
        h_sem = self.cross_attn1(q, sem, cond.sem_mask, c.get("q"), c.get("sem"))  # (B, T, D)
        h_rhy = self.cross_attn2(q, rhy, cond.rhy_mask, c.get("q"), c.get("rhy"))  # (B, T, D)
        if cfg.fusion in ("film_post", "film_select"):
            h_sem, h_rhy = self._film(t, h_sem, h_rhy)
        if cfg.fusion in ("weighted", "film_pre", "film_post"):
            h = self._weighted(t, h_sem, h_rhy)
        elif cfg.fusion == "additive":
            h = 0.5 * h_sem + 0.5 * h_rhy
        elif cfg.fusion in ("select", "film_select"):
            h = self._select(t, h_sem, h_rhy, cfg.select_t)
        else:
            raise ValueError(f"unknown fusion: {cfg.fusion}")
        x = x + h
        return x + self.ff(self.ff_norm(x))


class TransformerStack(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.project_in = nn.Linear(cfg.latent_dim, cfg.embed_dim, bias=False)
        self.project_out = nn.Linear(cfg.embed_dim, cfg.latent_dim, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(cfg.rope_dim)
        self.layers = nn.ModuleList(HierarchicalBlock(cfg) for _ in range(cfg.depth))


def _token_positions(n_tokens: int, n_seconds: int, fps: float, device) -> torch.Tensor:
    """Second m at 1 + (m + 0.5) * fps; tokens after the per-second ones (start, duration) at 0."""
    pos = torch.zeros(n_tokens, device=device)
    m = min(n_seconds, n_tokens)
    pos[:m] = 1 + (torch.arange(m, device=device) + 0.5) * fps
    return pos


class DiT(nn.Module):
    """v-prediction network: (latents (B, C, T), diffusion time t (B,), Cond) -> v (B, C, T)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d, c = cfg.embed_dim, cfg.cond_dim
        self.timestep_features = FourierFeatures(1, cfg.timestep_features)
        self.to_timestep_embed = nn.Sequential(nn.Linear(cfg.timestep_features, d), nn.SiLU(), nn.Linear(d, d))
        self.to_cond_embed = nn.Sequential(nn.Linear(c, c, bias=False), nn.SiLU(), nn.Linear(c, c, bias=False))
        self.to_global_embed = nn.Sequential(nn.Linear(3 * c, d, bias=False), nn.SiLU(), nn.Linear(d, d, bias=False))
        self.preprocess_conv = nn.Conv1d(cfg.latent_dim, cfg.latent_dim, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(cfg.latent_dim, cfg.latent_dim, 1, bias=False)
        nn.init.zeros_(self.preprocess_conv.weight)
        nn.init.zeros_(self.postprocess_conv.weight)
        self.transformer = TransformerStack(cfg)
        if cfg.init_scale != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(cfg.init_scale)

    def _cross_rope(self, cond: Cond, T: int) -> dict:
        rot, fps, dev = self.transformer.rotary_pos_emb, self.cfg.cross_rope_fps, cond.emo.device
        seconds = cond.emo.shape[1]  # the emotional stream has exactly one token a second
        return {"q": rot(T + 1),
                "emo": rot.at(_token_positions(cond.emo.shape[1], seconds, fps, dev)),
                "sem": rot.at(_token_positions(cond.sem.shape[1], seconds, fps, dev)),
                "rhy": rot.at(_token_positions(cond.rhy.shape[1], seconds, fps, dev))}

    def embed_cond(self, cond: Cond) -> Cond:
        """The condition streams through to_cond_embed and the global vector through
        to_global_embed: what every step of a window shares, so a sampler computes it once
        (forward(..., embedded=True)) instead of at every step."""
        return cond._replace(emo=self.to_cond_embed(cond.emo), sem=self.to_cond_embed(cond.sem),
                             rhy=self.to_cond_embed(cond.rhy), global_cond=self.to_global_embed(cond.global_cond))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Cond,
                x_mask: torch.Tensor | None = None, embedded: bool = False) -> torch.Tensor:
        B, C, T = x.shape
        t_embed = self.to_timestep_embed(self.timestep_features(t[:, None].to(x.dtype)))  # (B, D)
        if not embedded:
            cond = self.embed_cond(cond)
        global_embed = cond.global_cond + t_embed  # (B, D)
        x = self.preprocess_conv(x) + x
        h = self.transformer.project_in(x.transpose(1, 2))  # (B, T, D)
        h = torch.cat([global_embed[:, None, :], h], dim=1)  # (B, 1+T, D): the prepended global token
        mask = None
        if x_mask is not None:
            mask = torch.cat([torch.ones_like(x_mask[:, :1]), x_mask], dim=1)  # (B, 1+T)
        rope = self.transformer.rotary_pos_emb(T + 1)
        cross = self._cross_rope(cond, T) if self.cfg.cross_rope_fps > 0 else None
        for layer in self.transformer.layers:
            h = layer(h, t, cond, mask, rope, cross)
        out = self.transformer.project_out(h[:, 1:]).transpose(1, 2)  # (B, C, T)
        return self.postprocess_conv(out) + out
