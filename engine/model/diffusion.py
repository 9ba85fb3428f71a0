"""The v-objective around the Diff-V2M network (paper, section 3.1; docs/MODEL_SPEC.md "Training",
"Inference"): cosine alpha/sigma, the training loss (v-MSE + masked rhythm MSE), classifier-free
guidance dropout per cross-attention stream, the unconditional branch (all three streams zeroed,
the global condition kept) and guidance computed in one batched forward.

The network (dit.py) never sees a guidance scale or a dropout probability; this wrapper does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from core.model_config import ModelConfig
from engine.model.dit import Cond, DiT
from engine.model.encoders import ConditionEncoders, Features

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B,C,T), t (B,)) -> v


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)


def null_cond(cond: Cond) -> Cond:
    """The unconditional branch: every cross-attention stream zeroed (its extra tokens too),
    masks and the global condition kept."""
    return cond._replace(emo=torch.zeros_like(cond.emo), sem=torch.zeros_like(cond.sem),
                         rhy=torch.zeros_like(cond.rhy))


def drop_streams(cond: Cond, p: float, generator: torch.Generator | None = None) -> Cond:
    """CFG dropout: each stream of each sample independently replaced by zeros with probability p."""
    out = {}
    for name in ("emo", "sem", "rhy"):
        tokens = getattr(cond, name)
        keep = torch.rand(tokens.shape[0], generator=generator, device="cpu").to(tokens.device) >= p
        out[name] = tokens * keep[:, None, None].to(tokens.dtype)
    return cond._replace(**out)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE over the valid seconds of every batch item (the intended masking; the released code's
    integer mask trained only batch item 1)."""
    m = mask[..., None].to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp(min=1)


class DiffV2M(nn.Module):
    """Condition encoders + rhythm predictor + DiT. The VAE is separate (vae.py), frozen."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.conditioner = ConditionEncoders(cfg)
        self.dit = DiT(cfg.dit)

    def condition(self, f: Features, rhythm: torch.Tensor | None = None,
                  use_pred: torch.Tensor | None = None, zero_rhythm: bool = False,
                  edit: torch.Tensor | None = None) -> tuple[Cond, torch.Tensor]:
        """Predict the rhythm and build the DiT's conditions. rhythm (B, M, C) is a ground-truth
        rhythm; use_pred (B,) bool picks the prediction per sample (scheduled conditioning).
        Without rhythm the prediction is used; zero_rhythm conditions on zeros (the "w/o rhythm"
        ablation); edit (B, M) is the editor's curve, NaN where the prediction stands (every channel
        of an edited second takes the editor's value). The DiT never backpropagates into the predictor."""
        pred = self.conditioner.predict_rhythm(f)  # (B, M, C)
        chosen = pred.detach()
        if rhythm is not None:
            if use_pred is None:
                use_pred = torch.zeros(pred.shape[0], dtype=torch.bool, device=pred.device)
            chosen = torch.where(use_pred[:, None, None], chosen, rhythm.to(pred.dtype))
        if edit is not None:
            e = edit.to(chosen.device, chosen.dtype)[..., None].expand_as(chosen)
            chosen = torch.where(torch.isnan(e), chosen, e)
        if zero_rhythm:
            chosen = torch.zeros_like(chosen)
        chosen = chosen * f.mask[..., None].to(chosen.dtype)
        return self.conditioner(f, chosen), pred

    def loss(self, latents: torch.Tensor, f: Features, rhythm: torch.Tensor, use_pred: torch.Tensor,
             latent_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
             zero_rhythm: bool = False) -> dict:
        """loss = MSE(v) + w * masked MSE(predicted rhythm, target); t ~ U[0, 1]."""
        B = latents.shape[0]
        cond, pred = self.condition(f, rhythm, use_pred, zero_rhythm)
        cond = drop_streams(cond, self.cfg.diffusion.cfg_dropout, generator)
        t = torch.rand(B, generator=generator).to(latents.device, latents.dtype)
        noise = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
        a, s = alpha_sigma(t)
        a, s = a[:, None, None], s[:, None, None]
        x_t = a * latents + s * noise
        v_target = a * noise - s * latents
        v = self.dit(x_t, t, cond, latent_mask)
        if latent_mask is None:
            v_loss = ((v - v_target) ** 2).mean()
        else:
            v_loss = masked_mse(v.transpose(1, 2), v_target.transpose(1, 2), latent_mask)
        r_loss = masked_mse(pred, rhythm.to(pred.dtype), f.mask)
        total = v_loss + self.cfg.diffusion.rhythm_loss_weight * r_loss
        return {"loss": total, "v_loss": v_loss.detach(), "rhythm_loss": r_loss.detach()}

    def denoiser(self, cond: Cond, guidance: float, x_mask: torch.Tensor | None = None) -> Denoiser:
        """v(x, t) with classifier-free guidance: conditional and unconditional stacked in ONE
        forward; v = v_u + g (v_c - v_u). guidance 1 runs the conditional branch only."""
        if guidance == 1.0:
            once = self.dit.embed_cond(cond)  # the conditions' projections: once per window, not per step
            return lambda x, t: self.dit(x, t, once, x_mask, embedded=True)
        both = self.dit.embed_cond(cond.cat(null_cond(cond)))
        mask2 = None if x_mask is None else torch.cat([x_mask, x_mask])

        def v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            out = self.dit(torch.cat([x, x]), torch.cat([t, t]), both, mask2, embedded=True)
            v_c, v_u = out.chunk(2)
            return v_u + guidance * (v_c - v_u)

        return v
