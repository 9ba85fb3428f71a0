"""Generation speed and few-step quality (issue 20), side by side in one run:

    .venv/bin/python bench/bench_gpu.py [--window-s 30] [--seeds 2] [--compile] [--out FILE]

On CUDA it runs the paper-size model (1.38 B DiT + Stable Audio Open's VAE, random weights built on
the GPU: speed only, and sampler distances on an untrained network) and the demo model; on the CPU
the demo model only (the paper DiT takes minutes per step there). Tables, each printed (and
appended to --out) as soon as it is complete:

1. one window's speed for fp32 vs bf16 autocast and batched vs two-pass guidance: per-step time,
   the conditioners, the VAE decode and the WAV writing separately, peak memory, and one DiT
   forward against its FLOP floor at the card's dense bf16 peak (x floor; CUDA only);
2. a whole window the way `cutscore score` runs it, for the few-step default and DDIM-250:
   features (real video, CLIP of the model's architecture), conditioners, sampling, decode, write;
3. the VAE decode whole vs chunked (time, peak memory);
4. several independent windows batched in one sampler run vs one after another;
5. few steps against DDIM-250 with the same seeds: multi-resolution STFT distance to the DDIM-250
   output and the onset F-measure against the cuts (synthetic features: the distances compare
   samplers; bench_demo.py measures the onset F on real edits);
6. with --compile (CUDA): torch.compile of the DiT, its compile time and per-step time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.model_config import load_config  # noqa: E402
from engine.eval.metrics import detect_onsets, onset_f_measure  # noqa: E402
from engine.model.diffusion import null_cond  # noqa: E402
from engine.model.pipeline import Pipeline, WindowFeatures  # noqa: E402
from engine.model.sampling import get_sampler, schedule  # noqa: E402

DENSE_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A10": 125e12, "L4": 121e12,
                   "L40": 181e12, "4090": 165e12}
VIDEO = ROOT / "resources" / "demo" / "testvideo.mp4"
OUT: Path | None = None


def emit(text: str = "") -> None:
    print(text, flush=True)
    if OUT is not None:
        with OUT.open("a") as f:
            f.write(text + "\n")


def table(title: str, header: list[str], rows: list[list]) -> None:
    def cell(v):
        if isinstance(v, float):
            return "-" if math.isnan(v) else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    emit(f"\n{title}\n")
    emit("| " + " | ".join(header) + " |")
    emit("|" + "---|" * len(header))
    for r in rows:
        emit("| " + " | ".join(cell(v) for v in r) + " |")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's high-water mark


def card_peak(device: torch.device) -> float:
    if device.type != "cuda":
        return float("nan")
    name = torch.cuda.get_device_name()
    return next((v for k, v in DENSE_BF16_PEAK.items() if k in name), float("nan"))


def dit_flops(pipe: Pipeline, frames: int, cond_tokens: int) -> float:
    """2 x multiply-adds of one DiT forward for one sequence: the weights over the latent tokens plus
    the attention products (self over the frames, cross over the condition tokens)."""
    cfg = pipe.cfg.dit
    params = sum(p.numel() for p in pipe.model.dit.parameters())
    attn = cfg.depth * (2 * frames * frames * cfg.embed_dim + 3 * 2 * frames * cond_tokens * cfg.embed_dim)
    return 2.0 * (params * frames + attn)


def synthetic_window(pipe: Pipeline, window_s: float, cuts: list[float], seed: int = 0) -> WindowFeatures:
    rng = np.random.default_rng(seed)
    w = WindowFeatures.zeros(int(np.ceil(window_s)), 0.0, window_s, clip_dim=pipe.cfg.encoders.clip_dim)
    w.clip[:] = rng.standard_normal(w.clip.shape)
    w.color[:] = rng.random(w.color.shape)
    for c in cuts:
        w.scene[int(c)] = 1
    return w


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def write_wav(audio: np.ndarray, sr: int) -> float:
    import soundfile as sf

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        sf.write(Path(d) / "w.wav", audio.T, sr, subtype="FLOAT")
    return time.perf_counter() - t0


def run_window(pipe: Pipeline, w: WindowFeatures, sampler: str, steps: int, precision: str = "bf16",
               guidance_mode: str = "batched", seed: int = 0, warmup: int = 0) -> dict:
    """One window split into its stages (the order Pipeline.generate runs them)."""
    device, cfg = pipe.device, pipe.cfg
    g = cfg.diffusion.guidance
    reset_peak(device)
    with torch.no_grad(), autocast(device, precision):
        t0 = time.perf_counter()
        f = pipe._features(w)
        cond, _ = pipe.model.condition(f)
        sync(device)
        t_cond = time.perf_counter() - t0
        if guidance_mode == "batched":
            denoise = pipe.model.denoiser(cond, g)
        else:
            unc = null_cond(cond)

            def denoise(x, t):
                return pipe.model.dit(x, t, unc) * (1 - g) + g * pipe.model.dit(x, t, cond)

        x = torch.randn((1, cfg.dit.latent_dim, cfg.latent_frames), generator=torch.Generator().manual_seed(seed))
        x = x.to(device)
        if warmup:
            get_sampler(sampler)(denoise, x, schedule(warmup, device))
            sync(device)
        t0 = time.perf_counter()
        lat = get_sampler(sampler)(denoise, x, schedule(steps, device))
        sync(device)
        t_sample = time.perf_counter() - t0
    with torch.no_grad():
        t0 = time.perf_counter()
        audio = pipe.decode(lat.float(), w.duration_s)[0].float().cpu().numpy()
        t_decode = time.perf_counter() - t0
    t_write = write_wav(audio, cfg.sample_rate)
    tokens = cond.sem.shape[1] + cond.rhy.shape[1] + cond.emo.shape[1]
    return {"cond": t_cond, "sample": t_sample, "per_step": t_sample / steps, "decode": t_decode, "write": t_write,
            "peak": peak_mb(device), "tokens": tokens, "audio": audio}


def speed_table(name: str, pipe: Pipeline, window_s: float, steps: int) -> None:
    device = pipe.device
    w = synthetic_window(pipe, window_s, [2.0, 5.0])
    peak = card_peak(device)
    rows = []
    for precision in ("fp32", "bf16"):
        for mode in ("batched", "two-pass"):
            r = run_window(pipe, w, "dpmpp-2m", steps, precision, mode, warmup=2)
            floor = 2 * dit_flops(pipe, pipe.cfg.latent_frames, r["tokens"]) / peak  # both guidance branches
            rows.append([name, precision, mode, r["per_step"] * 1000, r["sample"], r["cond"], r["decode"], r["write"],
                         r["peak"], r["per_step"] / floor])
    floor_note = f"a step against 2 DiT forwards at {peak / 1e12:.0f} TFLOP/s" if peak == peak else "CUDA only"
    table(f"1. {name}: one {window_s:g} s window, {steps} DPM-Solver++(2M) steps (x floor: {floor_note})",
          ["model", "precision", "guidance", "ms/step", "sampling s", "cond s", "decode s", "write s", "peak MB",
           "x floor"], rows)


def features_seconds(pipe: Pipeline, window_s: float) -> float:
    """Features of window_s seconds of real video (looping the 24 s demo clip), with a random-init
    CLIP of the model's architecture (the cost of the real one)."""
    from engine.features import FeatureConfig, extract

    cfg = FeatureConfig(clip_model=pipe.cfg.clip_model, clip_pretrained=None)
    extract(VIDEO, 0.0, 2.0, cuts_s=[], config=cfg, use_cache=False)  # load CLIP once, outside the timing
    t0, done = time.perf_counter(), 0.0
    while done < window_s - 1e-6:
        span = min(window_s - done, 24.0)
        extract(VIDEO, 0.0, span, cuts_s=[1.0], config=cfg, use_cache=False)
        done += span
    return time.perf_counter() - t0


def window_table(name: str, pipe: Pipeline, window_s: float) -> None:
    t_feat = features_seconds(pipe, window_s)
    w = synthetic_window(pipe, window_s, [2.0, 5.0])
    d = pipe.cfg.diffusion
    run_window(pipe, w, d.sampler, 2)  # warm the kernels
    rows = []
    few = (d.sampler, d.steps) if (d.sampler, d.steps) != ("ddim", 250) else ("dpmpp-2m", 25)
    for sampler, steps in (few, ("ddim", 250)):
        r = run_window(pipe, w, sampler, steps)
        total = t_feat + r["cond"] + r["sample"] + r["decode"] + r["write"]
        rows.append([name, f"{sampler}-{steps}", t_feat, r["cond"], r["sample"], r["decode"], r["write"], total,
                     r["peak"]])
    table(f"2. {name}: a whole {window_s:g} s window as `cutscore score` runs it (bf16 autocast on CUDA)",
          ["model", "sampler", "features s", "cond s", "sampling s", "decode s", "write s", "total s", "peak MB"], rows)


def decode_table(name: str, pipe: Pipeline) -> None:
    device, cfg = pipe.device, pipe.cfg
    lat = torch.randn((1, cfg.dit.latent_dim, cfg.latent_frames), generator=torch.Generator().manual_seed(0)).to(device)
    rows = []
    for chunk in (None, 128, 64):
        if chunk and chunk >= cfg.latent_frames:
            continue
        with torch.no_grad():
            pipe.vae.decode(lat[..., :32], chunk_frames=None)
            reset_peak(device)
            t0 = time.perf_counter()
            pipe.vae.decode(lat, chunk_frames=chunk)
            sync(device)
        rows.append([name, "whole" if chunk is None else f"{chunk} frames, overlap 32", time.perf_counter() - t0,
                     peak_mb(device)])
    table(f"3. {name}: VAE decode of {cfg.latent_frames} latent frames", ["model", "decode", "s", "peak MB"], rows)


def batch_table(name: str, pipe: Pipeline, window_s: float, n: int) -> None:
    d = pipe.cfg.diffusion
    ws = [synthetic_window(pipe, window_s, [2.0, 5.0], seed=i) for i in range(n)]
    pipe.generate_batch(ws[:1], [0], steps=2)  # warm
    t0 = time.perf_counter()
    for i, w in enumerate(ws):
        pipe.generate(w, seed=i)
    t_seq = time.perf_counter() - t0
    reset_peak(pipe.device)
    t0 = time.perf_counter()
    pipe.generate_batch(ws, list(range(n)))
    t_batch = time.perf_counter() - t0
    table(f"4. {name}: {n} independent {window_s:g} s windows, {d.sampler}-{d.steps}",
          ["model", "one after another s/window", "batched s/window", "speed-up", "batched peak MB"],
          [[name, t_seq / n, t_batch / n, t_seq / t_batch, peak_mb(pipe.device)]])


def mrstft(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-resolution STFT distance (spectral convergence + log-magnitude L1, 3 resolutions)."""
    total = 0.0
    ta, tb = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
    for n_fft in (2048, 1024, 512):
        win = torch.hann_window(n_fft)
        A = torch.stft(ta, n_fft, n_fft // 4, window=win, return_complex=True).abs()
        B = torch.stft(tb, n_fft, n_fft // 4, window=win, return_complex=True).abs()
        total += float(torch.linalg.norm(A - B) / torch.linalg.norm(B).clamp(min=1e-9))
        total += float((torch.log(A + 1e-5) - torch.log(B + 1e-5)).abs().mean())
    return total / 3


def quality_table(name: str, pipe: Pipeline, window_s: float, seeds: int) -> None:
    cuts = [c for c in (2.0, 5.0, 8.0, 13.0, 17.0, 22.0, 26.0) if c < window_s - 1]
    w = synthetic_window(pipe, window_s, cuts)
    sr = pipe.cfg.sample_rate

    def timed(**kw):
        sync(pipe.device)
        t0 = time.perf_counter()
        y = pipe.generate(w, **kw).audio.mean(0)
        sync(pipe.device)
        return y, time.perf_counter() - t0

    pipe.generate(w, seed=0, steps=2)  # warm
    ref, t_ref = {}, []
    for s in range(seeds):
        ref[s], t = timed(seed=s, steps=250, sampler="ddim")
        t_ref.append(t)
    rows = [[name, "ddim-250", 0.0, float(np.mean([onset_f_measure(detect_onsets(ref[s], sr), cuts)[0]
                                                     for s in range(seeds)])), float(np.mean(t_ref))]]
    for sampler, steps in (("ddim", 50), ("dpmpp-2m", 10), ("dpmpp-2m", 20), ("dpmpp-2m", 25), ("dpmpp-2m", 50)):
        dists, fs, ts = [], [], []
        for s in range(seeds):
            y, t = timed(seed=s, steps=steps, sampler=sampler)
            dists.append(mrstft(y, ref[s]))
            fs.append(onset_f_measure(detect_onsets(y, sr), cuts)[0])
            ts.append(t)
        rows.append([name, f"{sampler}-{steps}", float(np.mean(dists)), float(np.mean(fs)), float(np.mean(ts))])
    table(f"5. {name}: few steps vs DDIM-250, {seeds} seeds, {window_s:g} s window, cuts at {cuts}",
          ["model", "sampler", "MR-STFT dist to DDIM-250", "onset F", "s/window"], rows)


def compile_table(name: str, pipe: Pipeline, window_s: float, steps: int) -> None:
    w = synthetic_window(pipe, window_s, [2.0, 5.0])
    eager = run_window(pipe, w, "dpmpp-2m", steps, warmup=2)["per_step"]
    rows = [[name, "eager", float("nan"), eager * 1000, 1.0]]
    for mode in ("default", "reduce-overhead"):
        torch._dynamo.reset()
        cp = Pipeline(pipe.model, pipe.vae, pipe.device, name=name, compile=mode)
        t0 = time.perf_counter()
        run_window(cp, w, "dpmpp-2m", 2)
        t_compile = time.perf_counter() - t0
        r = run_window(cp, w, "dpmpp-2m", steps, warmup=2)["per_step"]
        rows.append([name, f"torch.compile {mode}", t_compile, r * 1000, eager / r])
        cp.model.dit = cp.model.dit._orig_mod  # back to the eager module for whatever runs next
    table(f"6. {name}: torch.compile of the DiT (bf16, batched guidance, {steps} steps)",
          ["model", "mode", "first window s (compiling)", "ms/step", "speed-up"], rows)


def paper_pipeline(device: torch.device) -> Pipeline:
    """The paper-size model with random weights, built directly on the device (seconds instead of
    minutes of CPU initialisation)."""
    from core.model_config import default_vae_config
    from engine.model.diffusion import DiffV2M
    from engine.model.vae import VAE

    cfg = load_config("paper")
    torch.manual_seed(0)
    with torch.device(device):
        model, vae = DiffV2M(cfg).eval(), VAE(cfg.vae or default_vae_config())
    return Pipeline(model, vae, device, name="paper")


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window-s", type=float, default=30.0, help="window seconds (each model caps it at its own)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--speed-steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4, help="windows in the batching table")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA)")
    ap.add_argument("--tables", default="1,2,3,4,5,6", help="which tables, e.g. 1,5")
    ap.add_argument("--out", type=Path, help="also append the tables (markdown) to this file")
    args = ap.parse_args()
    OUT = args.out
    wanted = {int(t) for t in args.tables.split(",")}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    emit(f"device: {card}; torch {torch.__version__}")
    with contextlib.redirect_stderr(io.StringIO()):
        models = [("demo", Pipeline.load(ROOT / "resources" / "models" / "demo", device=str(device)))]
    if device.type == "cuda":
        t0 = time.perf_counter()
        models.append(("paper (random)", paper_pipeline(device)))
        emit(f"paper-size model built on the GPU in {time.perf_counter() - t0:.1f} s: "
             f"{sum(p.numel() for p in models[-1][1].model.dit.parameters()) / 1e9:.2f} B DiT parameters")
    tables = {1: lambda name, pipe, window: speed_table(name, pipe, window, args.speed_steps),
              2: window_table,
              3: lambda name, pipe, window: decode_table(name, pipe),
              4: lambda name, pipe, window: batch_table(name, pipe, window, args.batch),
              5: lambda name, pipe, window: quality_table(name, pipe, window, args.seeds),
              6: lambda name, pipe, window: compile_table(name, pipe, window, args.speed_steps)}
    if not (args.compile and device.type == "cuda"):
        wanted.discard(6)
    for k in (1, 5, 2, 3, 4, 6):  # the most wanted first: a run cut short keeps them
        for name, pipe in models:
            if k in wanted:
                t0 = time.perf_counter()
                try:
                    tables[k](name, pipe, min(args.window_s, pipe.cfg.window_seconds))
                except Exception as e:  # noqa: BLE001 - one table failing must not lose the others
                    emit(f"\ntable {k} for {name} failed: {type(e).__name__}: {str(e)[:300]}")
                print(f"[table {k} {name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
