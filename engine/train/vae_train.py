"""Training a small audio VAE (a stable-audio-tools autoencoder config) on a corpus's audio, for
the demo model. Loss: waveform MSE relative to the crop's power (gets the envelope and the
transients right within a few hundred steps, which is what cut-following music needs) + 0.5 x
multi-resolution STFT (spectral convergence + log magnitude L1, stable-audio-tools' recipe without
the adversarial part) + a small penalty keeping the posterior means near unit scale. The decoder is
trained on the posterior MEAN: with a CPU's budget of steps, sampling from the posterior (std
starts near 0.7) drowns the signal and the decoder collapses to a noise floor (seen here: a first
run with sampling reconstructed no onset at all). cutscore encodes with the mean as well.
Random crops, AdamW, plain PyTorch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from engine.model.vae import VAE

RESOLUTIONS = ((2048, 512), (1024, 256), (512, 128), (256, 64), (128, 32))


def stft_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y (B, C, N): multi-resolution spectral convergence + log-magnitude L1."""
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    total = 0.0
    for n_fft, hop in RESOLUTIONS:
        win = torch.hann_window(n_fft, device=x.device)
        X = torch.stft(x, n_fft, hop, window=win, return_complex=True).abs().clamp(min=1e-5)
        Y = torch.stft(y, n_fft, hop, window=win, return_complex=True).abs().clamp(min=1e-5)
        sc = torch.linalg.norm(Y - X) / torch.linalg.norm(Y).clamp(min=1e-5)
        total = total + sc + (X.log() - Y.log()).abs().mean()
    return total / len(RESOLUTIONS)


def new_vae(config: dict, seed: int = 0) -> VAE:
    """A VAE with freshly initialised weights drawn from `seed` (the same weights in every process,
    whatever torch's global random state): a recipe that trains one from nothing is reproducible.
    Torch's global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(config)


def train_vae(vae: VAE, audio: list[np.ndarray], steps: int = 3000, batch: int = 16, crop_s: float = 2.0,
              lr: float = 1e-3, kl_weight: float = 1e-3, seed: int = 0,
              log: Callable[[str], None] = lambda message: None) -> list[float]:
    """audio: a list of (channels, samples) float32 arrays at vae.sample_rate. Torch's global
    random state is left as it was (the training's own draws are seeded inside a fork)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train(vae, audio, steps, batch, crop_s, lr, kl_weight, seed, log)


def _train(vae, audio, steps, batch, crop_s, lr, kl_weight, seed, log) -> list[float]:
    rng = np.random.default_rng(seed)
    model = vae.model
    model.train().requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    n = int(crop_s * vae.sample_rate) // vae.downsampling * vae.downsampling
    losses, t0 = [], time.time()
    for step in range(steps):
        idx = rng.integers(0, len(audio), batch)
        crops = []
        for i in idx:
            a = audio[i]
            s = int(rng.integers(0, max(1, a.shape[1] - n)))
            crops.append(a[:, s:s + n])
        x = torch.from_numpy(np.stack(crops))
        pre = model.pretransform  # e.g. a patched (lossless reshape) pretransform before the encoder
        h = model.encoder(pre.encode(x) if pre is not None else x)  # (B, 2 * latent, frames)
        mean, _ = h.chunk(2, dim=1)
        y = model.decoder(mean)
        if pre is not None:
            y = pre.decode(y)
        rel_mse = ((y - x) ** 2).mean() / (x ** 2).mean().clamp(min=1e-8)
        loss = rel_mse + 0.5 * stft_loss(y, x) + kl_weight * mean.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step}/{steps}: loss {np.mean(losses[-100:]):.4f} ({time.time() - t0:.0f} s)")
    model.eval().requires_grad_(False)
    return losses


