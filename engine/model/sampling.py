"""Samplers over the v-objective as plain functions with one signature (k-diffusion style):
`sample_x(denoiser, x, ts, callback=None, inpaint=None)`, where denoiser(x, t) -> v, x starts as
pure noise at ts[0] = 1 and ts is a decreasing schedule ending at 0.

- sample_ddim: the paper's DDIM (eta 0), 250 steps over t = linspace(1, 0, 251).
- sample_dpmpp_2m: DPM-Solver++(2M) (Lu et al. 2022) on the data prediction, for few steps.
Both work on the data prediction x0 (k-diffusion's denoiser interface): `data_prediction` turns
the network's v into x0 = alpha x - sigma v once, so no sampler repeats that conversion.
Both support inpainting: latents where `inpaint.mask` is True are held to the known latents (noised
to the current t with fixed noise, exactly the known values at t = 0), so a region can be
regenerated while its neighbours stay bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from engine.model.diffusion import Denoiser, alpha_sigma

Callback = Callable[[int, int], None]  # (step done, total steps); may raise to cancel


class Inpaint(NamedTuple):
    mask: torch.Tensor  # (B, 1 or C, T) bool, True = keep the known latent
    known: torch.Tensor  # (B, C, T)
    noise: torch.Tensor  # (B, C, T) fixed noise for the known region's forward process


def schedule(steps: int, device=None, start: float = 1.0) -> torch.Tensor:
    """t = linspace(start, 0, steps + 1): the paper's uniform schedule (steps + 1 points); a start
    below 1 is the tail of it that a sampling from a noised reference runs (from_reference)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(start, 0, steps + 1, device=device)


def from_reference(noise: torch.Tensor, reference: torch.Tensor, strength: float, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SDEdit (Meng et al. 2022; stable-audio-tools' init audio and init noise level, diffusers'
    img2img strength): (the starting latents, the schedule) for a sampling that follows `reference`:
    the reference noised to t0 = 1 - strength with the seed's own noise, sampled over the last
    ceil(steps * t0) steps of the schedule. strength 0 starts from the noise alone at t = 1 (as without
    a reference); strength 1 returns the reference (no step)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    t0 = 1.0 - strength
    if t0 <= 0.0:
        return reference.clone(), torch.zeros(1, device=noise.device)
    a, s = alpha_sigma(torch.tensor(t0, dtype=torch.float64))
    x = (float(a) * reference + float(s) * noise) if strength > 0 else noise
    return x, schedule(max(1, math.ceil(steps * t0 - 1e-9)), noise.device, start=t0)


def _hold(x: torch.Tensor, t: torch.Tensor, inpaint: Inpaint | None) -> torch.Tensor:
    if inpaint is None:
        return x
    if float(t) == 0.0:
        return torch.where(inpaint.mask, inpaint.known, x)
    a, s = alpha_sigma(t)
    return torch.where(inpaint.mask, a * inpaint.known + s * inpaint.noise, x)


def data_prediction(denoiser: Denoiser) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """v(x, t) -> x0(x, t) for a scalar t: x0 = alpha(t) x - sigma(t) v."""
    def x0(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = alpha_sigma(t)
        return a * x - s * denoiser(x, t.expand(x.shape[0]).to(x.dtype))

    return x0


def sample_ddim(denoiser: Denoiser, x: torch.Tensor, ts: torch.Tensor, callback: Callback | None = None,
                inpaint: Inpaint | None = None) -> torch.Tensor:
    n = len(ts) - 1
    x0_of = data_prediction(denoiser)
    x = _hold(x, ts[0], inpaint)
    for i in range(n):
        t, t_next = ts[i], ts[i + 1]
        x0 = x0_of(x, t)
        a, s = alpha_sigma(t)
        eps = (x - a * x0) / s  # s > 0: every t evaluated here is ts[i] > 0 (i < n)
        a_n, s_n = alpha_sigma(t_next)
        x = _hold(a_n * x0 + s_n * eps, t_next, inpaint)
        if callback is not None:
            callback(i + 1, n)
    return x


def sample_dpmpp_2m(denoiser: Denoiser, x: torch.Tensor, ts: torch.Tensor, callback: Callback | None = None,
                    inpaint: Inpaint | None = None) -> torch.Tensor:
    n = len(ts) - 1
    x0_of = data_prediction(denoiser)
    x = _hold(x, ts[0], inpaint)
    x0_prev, h_prev = None, None
    for i in range(n):
        t, t_next = ts[i], ts[i + 1]
        x0 = x0_of(x, t)
        a, s = alpha_sigma(t)
        a_n, s_n = alpha_sigma(t_next)
        if float(t_next) == 0.0:
            x = x0  # the last step lands on the data prediction (first order)
        else:
            # lambda = log(alpha / sigma); e^{-h} = (s_n / a_n) / (s / a), safe at t = 1 (a -> 0)
            exp_neg_h = (s_n * a) / (a_n * s)
            h = -torch.log(exp_neg_h)
            d = x0
            if x0_prev is not None and torch.isfinite(h) and h_prev is not None and torch.isfinite(h_prev):
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = (s_n / s) * x + (a_n - s_n * a / s) * d
            h_prev = h
        x0_prev = x0
        x = _hold(x, t_next, inpaint)
        if callback is not None:
            callback(i + 1, n)
    return x


SAMPLERS = {"ddim": sample_ddim, "dpmpp-2m": sample_dpmpp_2m}  # keyed by core.api.SAMPLER_NAMES (a test checks)


def get_sampler(name: str):
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler: {name!r} (choose from {', '.join(SAMPLERS)})")
    return SAMPLERS[name]
