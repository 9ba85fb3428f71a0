"""Building blocks shared by the DiT (dit.py) and the rhythm predictor (rhythm.py): LayerNorm with
a fixed zero bias, partial rotary position embeddings, multi-head self/cross attention with key
masks, the GLU-SiLU feed-forward, Fourier time features, and a plain pre-norm transformer.

Parameter names follow the released Diff-V2M checkpoint (a stable-audio-tools fork), so importing
it is a rename of prefixes only (official.py). docs/MODEL_SPEC.md, "DiT" and "Rhythm predictor".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """LayerNorm with a learned gain and a constant zero bias (a buffer, as in the released code)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], weight=self.gamma, bias=self.beta)


class RotaryEmbedding(nn.Module):
    """Rotary position frequencies for the first `dim` channels of each head (rotate-half layout)."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, seq_len: int) -> torch.Tensor:
        t = torch.arange(seq_len, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        return self.at(t)

    def at(self, positions: torch.Tensor) -> torch.Tensor:
        """Frequencies at arbitrary (also fractional) positions (T,) -> (T, dim)."""
        freqs = torch.einsum("i,j->ij", positions.to(self.inv_freq.dtype), self.inv_freq)  # (T, dim/2)
        return torch.cat((freqs, freqs), dim=-1)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate the first freqs.shape[-1] channels of t (B, H, T, Dh); the rest pass through."""
    rot = freqs.shape[-1]
    freqs = freqs[-t.shape[-2]:].to(t.dtype)
    t_rot, t_pass = t[..., :rot], t[..., rot:]
    t_rot = t_rot * freqs.cos() + _rotate_half(t_rot) * freqs.sin()
    return torch.cat((t_rot, t_pass), dim=-1)


class Attention(nn.Module):
    """Multi-head attention. Self-attention when kv_dim is None (fused to_qkv), else cross-attention
    whose K/V come from kv_dim-wide tokens with kv_heads heads, repeated to match the query heads."""

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None, kv_heads: int | None = None,
                 zero_init_out: bool = True):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.cross = kv_dim is not None
        if self.cross:
            self.kv_heads = kv_heads or num_heads
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(kv_dim, 2 * self.kv_heads * self.head_dim, bias=False)
        else:
            self.kv_heads = num_heads
            self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        if zero_init_out:
            nn.init.zeros_(self.to_out.weight)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None, rope: torch.Tensor | None = None,
                rope_kv: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, Dh = self.num_heads, self.head_dim
        if self.cross:
            q = self.to_q(x).view(B, T, H, Dh).transpose(1, 2)  # (B, H, T, Dh)
            S = context.shape[1]
            k, v = self.to_kv(context).view(B, S, 2, self.kv_heads, Dh).unbind(2)  # (B, S, Hkv, Dh)
            k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, Hkv, S, Dh)
            if self.kv_heads != H:
                k = k.repeat_interleave(H // self.kv_heads, dim=1)  # (B, H, S, Dh)
                v = v.repeat_interleave(H // self.kv_heads, dim=1)
            if rope is not None and rope_kv is not None:  # time-aligned cross-attention (DiTConfig.cross_rope_fps)
                q, k = apply_rope(q, rope), apply_rope(k, rope_kv)
        else:
            q, k, v = self.to_qkv(x).view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
            if rope is not None:
                q, k = apply_rope(q, rope), apply_rope(k, rope)
        attn_mask, any_key = None, None
        if key_mask is not None:
            # A query whose keys are all masked out gets a zero output instead of NaN.
            any_key = key_mask.any(dim=-1)  # (B,)
            km = key_mask | ~any_key[:, None]
            attn_mask = km[:, None, None, :]  # (B, 1, 1, S)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, T, Dh)
        out = out.transpose(1, 2).reshape(B, T, H * Dh)
        out = self.to_out(out)
        if any_key is not None:
            out = out * any_key[:, None, None].to(out.dtype)
        return out


class GLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.silu(gate)


class FeedForward(nn.Module):
    """GLU-SiLU feed-forward; `ff.1` is a parameter-free slot kept so the indices match the
    released checkpoint (ff.0 = GLU projection, ff.2 = output)."""

    def __init__(self, dim: int, mult: int = 4, zero_init_out: bool = True):
        super().__init__()
        inner = dim * mult
        self.ff = nn.Sequential(GLU(dim, inner), nn.Identity(), nn.Linear(inner, dim))
        if zero_init_out:
            nn.init.zeros_(self.ff[2].weight)
            nn.init.zeros_(self.ff[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class FourierFeatures(nn.Module):
    """Random Fourier features of a scalar (diffusion time): (B, 1) -> (B, out) as [cos, sin]."""

    def __init__(self, in_features: int, out_features: int, std: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


class LearnedFourier(nn.Module):
    """Learned Fourier features of a scalar in [0, 1]: (B,) -> (B, 2*half + 1) = [x, sin, cos]."""

    def __init__(self, half: int):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, None]  # (B, 1)
        f = x * self.weights[None, :] * 2 * math.pi  # (B, half)
        return torch.cat([x, f.sin(), f.cos()], dim=-1)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: self-attention with RoPE, then the GLU feed-forward."""

    def __init__(self, dim: int, num_heads: int, ff_mult: int):
        super().__init__()
        self.pre_norm = LayerNorm(dim)
        self.self_attn = Attention(dim, num_heads)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None, rope: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.pre_norm(x), key_mask=key_mask, rope=rope)
        return x + self.ff(self.ff_norm(x))


class Transformer(nn.Module):
    """project_in -> pre-norm blocks -> project_out, non-causal, RoPE over all positions."""

    def __init__(self, dim_in: int, dim: int, dim_out: int, depth: int, num_heads: int, ff_mult: int,
                 rope_dim: int):
        super().__init__()
        self.project_in = nn.Linear(dim_in, dim, bias=False)
        self.project_out = nn.Linear(dim, dim_out, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(rope_dim)
        self.layers = nn.ModuleList(EncoderBlock(dim, num_heads, ff_mult) for _ in range(depth))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.project_in(x)  # (B, T, dim)
        rope = self.rotary_pos_emb(x.shape[1])
        for layer in self.layers:
            x = layer(x, key_mask, rope)
        return self.project_out(x)  # (B, T, dim_out)
