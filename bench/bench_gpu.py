"""Generation speed and few-step quality (issue 20), side by side in one run:

    .venv/bin/python bench/bench_gpu.py [--size demo|paper] [--window-s 10] [--seeds 2]

On CUDA it runs the paper-size model (random weights: speed only) and the demo model; on the CPU
the demo model only (the 1.38 B paper DiT takes minutes per step there). Table 1, speed of one
window: per-step time, sampling wall time, the conditioners, the VAE decode and the writing
separately, peak memory, and the ratio of one DiT forward to its FLOP floor at the device's peak
(only on CUDA: an H100's dense bf16 peak, 989 TFLOP/s), for fp32 vs bf16 autocast and batched vs
two-pass guidance. Table 2, few steps against DDIM-250 with the same seeds on the demo model:
multi-resolution STFT distance to the DDIM-250 output and the onset F-measure against the cuts.
The window's features are synthetic (random CLIP, colour; scene onsets at the cuts): the distances
compare samplers; the onset F is only meaningful with real features (bench_demo.py).
"""

import argparse
import contextlib
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.config import load_config  # noqa: E402
from engine.diffusion import null_cond  # noqa: E402
from engine.metrics import detect_onsets, onset_f_measure  # noqa: E402
from engine.pipeline import Pipeline, WindowFeatures  # noqa: E402
from engine.sampling import get_sampler, schedule  # noqa: E402

H100_BF16_PEAK = 989e12


def dit_flops(model, frames: int, cond_tokens: int) -> float:
    """2 x multiply-adds of one DiT forward: the linear layers over the latent tokens plus the
    attention products (self over frames, cross over the condition tokens)."""
    cfg = model.cfg.dit
    params = sum(p.numel() for p in model.dit.parameters())
    d = cfg.embed_dim
    attn = cfg.depth * (2 * frames * frames * d + 3 * 2 * frames * cond_tokens * d)
    return 2.0 * (params * frames + attn)


def features(pipe, window_s: float, cuts: list[float]) -> WindowFeatures:
    rng = np.random.default_rng(0)
    m = int(np.ceil(window_s))
    w = WindowFeatures.zeros(m, 0.0, window_s, clip_dim=pipe.cfg.encoders.clip_dim)
    w.clip[:] = rng.standard_normal(w.clip.shape)
    w.color[:] = rng.random(w.color.shape)
    for c in cuts:
        w.scene[int(c)] = 1
    return w


def peak_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed_rows(pipe, window_s, steps, device):
    cfg = pipe.cfg
    w = features(pipe, window_s, [2.0, 5.0])
    f = pipe._features(w)
    rows = []
    for precision in ("fp32", "bf16"):
        ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
               else contextlib.nullcontext())
        for guidance_mode in ("batched", "two-pass"):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            with torch.no_grad(), ctx:
                t0 = time.perf_counter()
                cond, _ = pipe.model.condition(f)
                t_cond = time.perf_counter() - t0
                g = 3.0
                if guidance_mode == "batched":
                    denoise = pipe.model.denoiser(cond, g)
                else:
                    unc = null_cond(cond)

                    def denoise(x, t, cond=cond, unc=unc, g=g):
                        return (pipe.model.dit(x, t, unc) * (1 - g) + g * pipe.model.dit(x, t, cond))
                x = torch.randn((1, cfg.dit.latent_dim, cfg.latent_frames), generator=torch.Generator().manual_seed(0))
                x = x.to(device)
                t0 = time.perf_counter()
                lat = get_sampler("dpmpp-2m")(denoise, x, schedule(steps, device))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t_sample = time.perf_counter() - t0
                t0 = time.perf_counter()
                audio = pipe.vae.decode(lat.float(), num_samples=int(window_s * cfg.sample_rate))[0]
                t_decode = time.perf_counter() - t0
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as d:
                import soundfile as sf

                sf.write(Path(d) / "w.wav", audio.float().cpu().numpy().T, cfg.sample_rate, subtype="FLOAT")
            t_write = time.perf_counter() - t0
            per_step = t_sample / steps
            flops = dit_flops(pipe.model, cfg.latent_frames, cond.sem.shape[1] + cond.rhy.shape[1] + cond.emo.shape[1])
            flops *= 2  # both guidance branches
            floor = flops / H100_BF16_PEAK if device.type == "cuda" else float("nan")
            rows.append((precision, guidance_mode, per_step * 1000, t_sample, t_cond, t_decode, t_write,
                         peak_mb(device), per_step / floor if floor == floor else float("nan")))
    return rows


def mrstft(a: np.ndarray, b: np.ndarray) -> float:
    import librosa

    total = 0.0
    for n_fft in (2048, 1024, 512):
        A = np.abs(librosa.stft(a, n_fft=n_fft, hop_length=n_fft // 4))
        B = np.abs(librosa.stft(b, n_fft=n_fft, hop_length=n_fft // 4))
        total += np.linalg.norm(A - B) / max(np.linalg.norm(B), 1e-9) + np.abs(np.log(A + 1e-5) - np.log(B + 1e-5)).mean()
    return total / 3


def quality_rows(pipe, window_s, seeds):
    cuts = [2.0, 5.0, 8.0] if window_s >= 9 else [2.0]
    w = features(pipe, window_s, cuts)
    t0 = time.perf_counter()
    ref = {s: pipe.generate(w, seed=s, steps=250, sampler="ddim").audio.mean(0) for s in range(seeds)}
    t_ref = (time.perf_counter() - t0) / seeds
    rows = []
    for sampler, steps in (("ddim", 250), ("ddim", 50), ("dpmpp-2m", 10), ("dpmpp-2m", 20), ("dpmpp-2m", 25),
                           ("dpmpp-2m", 50)):
        dists, fs, t0 = [], [], time.perf_counter()
        for s in range(seeds):
            if (sampler, steps) == ("ddim", 250):
                y = ref[s]
            else:
                y = pipe.generate(w, seed=s, steps=steps, sampler=sampler).audio.mean(0)
            dists.append(mrstft(y, ref[s]))
            fs.append(onset_f_measure(detect_onsets(y, pipe.cfg.sample_rate), cuts)[0])
        secs = t_ref if (sampler, steps) == ("ddim", 250) else (time.perf_counter() - t0) / seeds
        rows.append((f"{sampler}-{steps}", float(np.mean(dists)), float(np.mean(fs)), secs))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window-s", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--speed-steps", type=int, default=10)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    demo = Pipeline.load(ROOT / "resources" / "models" / "demo", device=str(device))
    models = [("demo", demo)]
    if device.type == "cuda":
        from engine.pipeline import _random_init

        model, vae = _random_init(load_config("paper"))
        models.append(("paper (random)", Pipeline(model, vae, str(device), name="paper")))
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}; "
          f"{args.speed_steps} DPM-Solver++(2M) steps per window for the speed table")
    print(f"{'model':<15} {'precision':<9} {'guidance':<9} {'ms/step':>8} {'sample s':>9} {'cond s':>7} "
          f"{'decode s':>9} {'write s':>8} {'peak MB':>8} {'x floor':>8}")
    for name, pipe in models:
        window = min(args.window_s, pipe.cfg.window_seconds)
        for r in speed_rows(pipe, window, args.speed_steps, device):
            print(f"{name:<15} {r[0]:<9} {r[1]:<9} {r[2]:>8.1f} {r[3]:>9.2f} {r[4]:>7.3f} {r[5]:>9.3f} {r[6]:>8.3f} "
                  f"{r[7]:>8.0f} {r[8]:>8.1f}")
    print()
    print(f"few steps vs DDIM-250 on the demo model ({args.seeds} seeds, {min(args.window_s, demo.cfg.window_seconds):g} s)")
    print(f"{'sampler':<15} {'MR-STFT dist':>13} {'onset F':>8} {'s/window':>9}")
    for name, d, f, t in quality_rows(demo, min(args.window_s, demo.cfg.window_seconds), args.seeds):
        print(f"{name:<15} {d:>13.3f} {f:>8.3f} {t:>9.2f}")


if __name__ == "__main__":
    main()
