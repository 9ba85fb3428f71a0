"""Diff-V2M inference for one window (paper, section 3; docs/MODEL_SPEC.md "Inference"), as a numbered
recipe: per-second features of the window (+ its continuous start time and duration) -> predicted
rhythm -> conditions -> sampled latents (guidance in one batched forward) -> decoded waveform.
Regeneration of a time region re-samples only that region's latents by inpainting, holding the
rest bit-identical.

    pipe = Pipeline.load("debug")            # a preset name (random init, for tests) or a model folder
    out = pipe.generate(window, seed=1, steps=25, sampler="dpmpp-2m")
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import CutscoreError
from core.model_config import ModelConfig, default_vae_config, load_config
from core.paths import installed_model
from engine.model.diffusion import DiffV2M
from engine.model.encoders import Features
from engine.model.sampling import Callback, Inpaint, from_reference, get_sampler, schedule
from engine.model.vae import VAE


@dataclass
class WindowFeatures:
    """Per-second features of one window; arrays have one row per second (M <= window seconds)."""

    clip: np.ndarray  # (M, 512)
    color: np.ndarray  # (M, 3072)
    scene: np.ndarray  # (M,) 0/1
    beat: np.ndarray  # (M,)
    start_s: float  # continuous start time of the window within the piece
    duration_s: float  # seconds of music wanted from this window
    rhythm: np.ndarray | None = None  # (M,) the editor's rhythm, NaN where the prediction stands

    @classmethod
    def zeros(cls, seconds: int, start_s: float, duration_s: float, clip_dim: int = 512, color_dim: int = 3072):
        return cls(np.zeros((seconds, clip_dim), np.float32), np.zeros((seconds, color_dim), np.float32),
                   np.zeros(seconds, np.float32), np.zeros(seconds, np.float32), start_s, duration_s)


@dataclass
class Generation:
    audio: np.ndarray  # (channels, samples) float32 at the model's sample rate, exactly duration_s long
    latents: torch.Tensor  # (1, C, frames) the full window's latents (kept for regeneration)
    rhythm: np.ndarray  # (M, C) the predicted per-second rhythm
    sample_rate: int


def _random_init(cfg: ModelConfig, seed: int = 0) -> tuple[DiffV2M, VAE]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DiffV2M(cfg).eval(), VAE(cfg.vae or default_vae_config())


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
DECODE_CHUNK_CUDA = 128  # latent frames per VAE decode chunk on CUDA (stable-audio-tools' default)


class Pipeline:
    """compile: None, or a torch.compile mode for the DiT ("reduce-overhead" adds CUDA graphs);
    the first windows then pay the compilation. decode_chunk: latent frames per VAE decode chunk
    ("auto": chunked on CUDA so a long window's memory stays bounded, whole on the CPU)."""

    def __init__(self, model: DiffV2M, vae: VAE, device: str | torch.device = "cpu", name: str = "",
                 compile: str | None = None, decode_chunk: int | str | None = "auto"):
        self.model, self.vae, self.cfg = model.to(device).eval(), vae.to(device), model.cfg
        self.device, self.name = torch.device(device), name or model.cfg.name
        if vae.sample_rate != self.cfg.sample_rate or vae.downsampling != self.cfg.downsampling:
            raise CutscoreError(f"model {self.name}: its VAE ({vae.sample_rate} Hz, /{vae.downsampling}) does not "
                                f"match the model config ({self.cfg.sample_rate} Hz, /{self.cfg.downsampling})")
        if decode_chunk == "auto":
            decode_chunk = DECODE_CHUNK_CUDA if self.device.type == "cuda" else None
        self.decode_chunk = decode_chunk
        self.compile = compile
        if compile:
            if compile not in COMPILE_MODES:
                raise CutscoreError(f"unknown compile mode {compile!r} (choose from {', '.join(COMPILE_MODES)})")
            self.model.dit = torch.compile(self.model.dit, mode=compile)

    @classmethod
    def load(cls, name_or_dir: str | Path, device: str | None = None, vae_dir: str | Path | None = None,
             **options) -> Pipeline:
        """A model folder (ours, see checkpoint.py), or a preset name: `debug` builds a random-init
        model for tests (seeded, so every process builds the same one). options: compile, decode_chunk."""
        from engine.device import pick
        from engine.model.checkpoint import load_model

        device = pick(device)
        p = installed_model(str(name_or_dir)) or Path(name_or_dir)  # `cutscore weights get official` made it
        if p.is_dir():
            model, vae = load_model(p, device)
            if vae is None:
                from engine.model.vae import load_vae

                vae = load_vae(vae_dir)  # Stable Audio Open's VAE: a folder, or the HF cache
            return cls(model, vae, device, name=str(p), **options)
        cfg = load_config(name_or_dir)
        if cfg.name != "debug":
            hint = ("run `cutscore weights get official` to fetch and convert the released checkpoint"
                    if cfg.name == "official" else "pass a model folder (`cutscore weights get official` fetches "
                    "the released one)")
            raise CutscoreError(f"{name_or_dir}: a full-size preset has no weights; {hint}")
        model, vae = _random_init(cfg)
        return cls(model, vae, device, name="debug", **options)

    def _autocast(self):
        """The conditioners and the DiT under CUDA autocast, as the authors run them (bf16 where the
        GPU supports it, else fp16); fp32 on the CPU, where nothing changes."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _sampling(self, steps, guidance, sampler, windows: list[WindowFeatures]):
        """The model's defaults for what was not asked for; each window's duration checked."""
        d = self.cfg.diffusion
        for w in windows:
            if w.duration_s <= 0 or w.duration_s > self.cfg.window_seconds + 1e-6:
                raise CutscoreError(f"window duration must be in (0, {self.cfg.window_seconds}] s, got {w.duration_s}")
        return steps or d.steps, d.guidance if guidance is None else guidance, sampler or d.sampler

    # 1. features -> tensors ------------------------------------------------------------------------
    def _features(self, w: WindowFeatures) -> Features:
        m_max = self.cfg.seconds
        m = len(w.scene)
        if m > m_max or m < 1:
            raise CutscoreError(f"a window holds 1..{m_max} seconds of features, got {m}")
        mask = np.zeros(m_max, bool)
        mask[:m] = True

        def pad(a: np.ndarray, width: int | None = None) -> torch.Tensor:
            shape = (m_max,) if width is None else (m_max, width)
            out = np.zeros(shape, np.float32)
            out[:m] = a
            return torch.from_numpy(out)[None].to(self.device)

        enc = self.cfg.encoders
        return Features(clip=pad(w.clip, enc.clip_dim), color=pad(w.color, enc.color_dim),
                        scene=pad(w.scene).long(), beat=pad(w.beat), mask=torch.from_numpy(mask)[None].to(self.device),
                        start=torch.tensor([w.start_s], device=self.device),
                        duration=torch.tensor([w.duration_s], device=self.device))

    def _edit(self, w: WindowFeatures) -> torch.Tensor | None:
        """The editor's rhythm padded to the model's seconds (NaN: the prediction), or None."""
        if w.rhythm is None or np.isnan(w.rhythm).all():
            return None
        out = np.full(self.cfg.seconds, np.nan, np.float32)
        out[:len(w.rhythm)] = w.rhythm
        return torch.from_numpy(out)[None]

    def _frames(self, frames: int, spans) -> torch.Tensor:
        """(frames,) bool: the latent frames of the seconds [t0, t1) of each span (a frame partly in
        a span counts as in it)."""
        fps = self.cfg.sample_rate / self.cfg.downsampling
        out = torch.zeros(frames, dtype=torch.bool)
        for t0, t1 in spans:
            out[max(int(np.floor(t0 * fps)), 0):min(int(np.ceil(t1 * fps)), frames)] = True
        return out

    @staticmethod
    def _edited_seconds(w: WindowFeatures) -> list[tuple[float, float]]:
        """The window's seconds [s, s + 1) that the editor's curve sets (not NaN)."""
        if w.rhythm is None:
            return []
        return [(float(k), float(k + 1)) for k in np.flatnonzero(~np.isnan(w.rhythm))]

    @torch.no_grad()
    def generate(self, w: WindowFeatures, seed: int = 0, steps: int | None = None, guidance: float | None = None,
                 sampler: str | None = None, callback: Callback | None = None,
                 inpaint: tuple[torch.Tensor, float, float] | None = None, ablate: frozenset = frozenset(),
                 trim: bool = False, like: tuple[torch.Tensor, float] | None = None) -> Generation:
        """Music for one window. inpaint=(latents, t0, t1) regenerates only seconds [t0, t1) of the
        window and holds every other latent frame of `latents` fixed. ablate may hold "rhythm"
        (condition on zeros instead of the predicted rhythm) and "scene" (no scene onsets), for
        measuring what those conditions contribute. like=(reference latents, strength): the sampling
        starts from the reference noised to the strength's level (sampling.from_reference).

        The editor's rhythm (w.rhythm) changes only the seconds it edits: where they are part of
        what is sampled, the window is sampled on the prediction first, then the edited seconds are
        sampled again on the editor's curve with every other frame held (the same noise; twice the
        steps). So the music outside the edited seconds is the prediction's music for this seed,
        bit-identical latents, and an edit the sampled region does not reach changes nothing."""
        steps, guidance, sampler = self._sampling(steps, guidance, sampler, [w])
        # 2. predict the rhythm from the video features; 3. build the conditions
        f = self._features(w)
        if "scene" in ablate:
            f = f._replace(scene=torch.zeros_like(f.scene))
        with self._autocast():
            cond, pred = self.model.condition(f, zero_rhythm="rhythm" in ablate)
        # 4. seeded noise; 5. sample with classifier-free guidance (one batched forward)
        start = self._start(w, seed, inpaint, trim)
        latents = self._sample(f, w, cond, start, steps, guidance, sampler, callback, "rhythm" in ablate, like).float()
        # 6. decode and cut to the exact duration
        audio = self.decode(latents, w.duration_s)[0]
        return Generation(audio=audio.float().cpu().numpy(), latents=latents.cpu(),
                          rhythm=pred[0, : len(w.scene)].float().cpu().numpy(), sample_rate=self.cfg.sample_rate)

    def _start(self, w: WindowFeatures, seed: int, inpaint, trim: bool):
        """(x, free, known, held noise): the seeded starting noise (drawn on the CPU, so CPU and GPU
        runs start alike), the latent frames sampled (the rest held at `known`), and the fixed noise
        of the held frames' forward process. trim: only the frames a shorter window needs."""
        cfg = self.cfg
        g = torch.Generator().manual_seed(int(seed))
        frames = cfg.latent_frames
        if trim:
            frames = min(frames, int(np.ceil(w.duration_s * cfg.sample_rate / cfg.downsampling)) + 1)
        shape = (1, cfg.dit.latent_dim, frames)
        x, held_noise = (torch.randn(shape, generator=g).to(self.device) for _ in range(2))
        if inpaint is None:
            return x, torch.ones(frames, dtype=torch.bool), None, held_noise
        known, t0, t1 = inpaint
        return x, self._frames(frames, [(t0, t1)]), known[..., :frames].to(self.device), held_noise

    def _sample(self, f: Features, w: WindowFeatures, cond, start, steps: int, guidance: float, sampler: str,
                callback: Callback | None, no_edit: bool, like: tuple[torch.Tensor, float] | None = None) -> torch.Tensor:
        """The sampled latents: one pass, or, where the editor's curve covers part of what is
        sampled, a pass on the prediction and one of the edited frames on the curve, the rest held."""
        x, free, known, held_noise = start
        sample_fn = get_sampler(sampler)
        ts = schedule(steps, self.device)
        if like is not None:
            ref = torch.zeros_like(x)
            n = min(x.shape[-1], like[0].shape[-1])
            ref[..., :n] = like[0][..., :n].to(x)
            x, ts = from_reference(x, ref, like[1], steps)

        def sample(c, sampled: torch.Tensor, held, cb):
            hold = None if sampled.all() else Inpaint((~sampled).to(self.device)[None, None], held, held_noise)
            with self._autocast():
                return sample_fn(self.model.denoiser(c, guidance), x, ts, cb, hold)

        edited = self._frames(len(free), self._edited_seconds(w)) & free
        if no_edit or not edited.any():
            return sample(cond, free, known, callback)
        with self._autocast():
            cond_edit, _ = self.model.condition(f, edit=self._edit(w))
        if torch.equal(edited, free):  # all that is sampled is edited: one pass on the curve
            return sample(cond_edit, free, known, callback)
        base = sample(cond, free, known, None if callback is None else lambda k, n: callback(k, 2 * n))
        return sample(cond_edit, edited, base, None if callback is None else lambda k, n: callback(n + k, 2 * n))

    @torch.no_grad()
    def encode(self, audio: np.ndarray) -> torch.Tensor:
        """Audio at the model's rate (channels, samples) -> latents (1, C, frames): the VAE's
        posterior mean, the audio mixed to the VAE's channels first."""
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        if x.shape[1] != self.vae.channels:
            x = x.mean(1, keepdim=True).expand(-1, self.vae.channels, -1)
        return self.vae.encode(x.to(self.device, next(self.vae.parameters()).dtype)).float()

    def decode(self, latents: torch.Tensor, duration_s: float) -> torch.Tensor:
        """6. latents (B, C, frames) -> audio (B, channels, samples) cut to the exact duration."""
        n = int(round(duration_s * self.cfg.sample_rate))
        return self.vae.decode(latents.to(next(self.vae.parameters()).dtype), num_samples=n,
                               chunk_frames=self.decode_chunk)

    @torch.no_grad()
    def generate_batch(self, windows: list[WindowFeatures], seeds: list[int], steps: int | None = None,
                       guidance: float | None = None, sampler: str | None = None,
                       callback: Callback | None = None) -> list[Generation]:
        """Independent windows sampled together in one batch (same results as generate() for
        each, up to floating-point order): the GPU's throughput for timelines whose windows do not
        continue each other. Each window keeps its own seeded noise."""
        if len(windows) != len(seeds) or not windows:
            raise CutscoreError("generate_batch needs one seed per window, and at least one window")
        cfg = self.cfg
        steps, guidance, sampler = self._sampling(steps, guidance, sampler, windows)
        if any(self._edited_seconds(w) for w in windows):
            raise CutscoreError("windows with the editor's rhythm are sampled in two passes (generate), not batched")
        feats = [self._features(w) for w in windows]
        f = Features(*(torch.cat(parts) for parts in zip(*feats)))
        with self._autocast():
            cond, pred = self.model.condition(f)
        shape = (1, cfg.dit.latent_dim, cfg.latent_frames)
        x = torch.cat([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]).to(self.device)
        with self._autocast():
            latents = get_sampler(sampler)(self.model.denoiser(cond, guidance), x, schedule(steps, self.device), callback)
        latents = latents.float()
        out = []
        for i, w in enumerate(windows):
            audio = self.decode(latents[i:i + 1], w.duration_s)[0]
            out.append(Generation(audio=audio.float().cpu().numpy(), latents=latents[i:i + 1].cpu(),
                                  rhythm=pred[i, : len(w.scene)].float().cpu().numpy(), sample_rate=cfg.sample_rate))
        return out

    def regenerate(self, w: WindowFeatures, latents: torch.Tensor, t0: float, t1: float, seed: int, **kw) -> Generation:
        """Re-sample seconds [t0, t1) of a window (relative to its start) by inpainting."""
        if not 0 <= t0 < t1:
            raise CutscoreError(f"regeneration region must satisfy 0 <= start < end, got [{t0}, {t1})")
        return self.generate(w, seed=seed, inpaint=(latents, t0, t1), **kw)
