"""Sampler cost of Diff-V2M on this machine, side by side in one run.

    .venv/bin/python bench/bench_model.py [--skip-paper]

Rows: seconds per sampler step (classifier-free guidance, one 30 s window) for the debug config,
a mid-size config (embed 512, depth 8, 8 heads) and the paper config (one step: it is 1.38 B
parameters); batched vs two-pass guidance; DDIM-250 vs DPM-Solver++(2M)-25 total for debug.
On a CUDA device the paper config also runs 250 and 25 steps in bf16.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.model_config import load_config  # noqa: E402
from engine.model.diffusion import DiffV2M, null_cond  # noqa: E402
from engine.model.encoders import Features  # noqa: E402
from engine.model.sampling import get_sampler, schedule  # noqa: E402


def build(cfg, device, dtype=torch.float32):
    torch.manual_seed(0)
    m = DiffV2M(cfg).to(device, dtype).eval()
    M = cfg.seconds
    f = Features(torch.randn(1, M, 512, device=device, dtype=dtype), torch.rand(1, M, 3072, device=device, dtype=dtype),
                 torch.zeros(1, M, dtype=torch.long, device=device), torch.rand(1, M, device=device, dtype=dtype),
                 torch.ones(1, M, dtype=torch.bool, device=device), torch.zeros(1, device=device),
                 torch.full((1,), 30.0, device=device))
    with torch.no_grad():
        cond, _ = m.condition(f)
    x = torch.randn(1, cfg.dit.latent_dim, cfg.latent_frames, device=device, dtype=dtype)
    return m, cond, x


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def per_step(m, cond, x, device, reps):
    den = m.denoiser(cond, 3.0)
    t = torch.full((1,), 0.5, device=device, dtype=x.dtype)
    den(x, t)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        den(x, t)
    sync(device)
    return (time.perf_counter() - t0) / reps


@torch.no_grad()
def two_pass(m, cond, x, device, reps):
    t = torch.full((1,), 0.5, device=device, dtype=x.dtype)
    unc = null_cond(cond)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        v_c, v_u = m.dit(x, t, cond), m.dit(x, t, unc)
        _ = v_u + 3.0 * (v_c - v_u)
    sync(device)
    return (time.perf_counter() - t0) / reps


@torch.no_grad()
def total(m, cond, x, sampler, steps, device):
    sync(device)
    t0 = time.perf_counter()
    get_sampler(sampler)(m.denoiser(cond, 3.0), x, schedule(steps, device))
    sync(device)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-paper", action="store_true", help="leave out the 1.38 B-parameter config on the CPU")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    debug = load_config("debug")
    mid = load_config("paper")
    mid.dit = dataclasses.replace(mid.dit, embed_dim=512, depth=8, num_heads=8, cond_heads=4)
    rows = []
    print(f"device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    m, cond, x = build(debug, device)
    rows.append(("debug: s / step (batched CFG)", per_step(m, cond, x, device, 10)))
    rows.append(("debug: s / step (two-pass CFG)", two_pass(m, cond, x, device, 10)))
    rows.append(("debug: DDIM-250 total s", total(m, cond, x, "ddim", 250, device)))
    rows.append(("debug: DPM-Solver++(2M)-25 total s", total(m, cond, x, "dpmpp-2m", 25, device)))
    m, cond, x = build(mid, device)
    rows.append(("mid 512/8/8: s / step (batched CFG)", per_step(m, cond, x, device, 3)))
    rows.append(("mid 512/8/8: s / step (two-pass CFG)", two_pass(m, cond, x, device, 3)))
    del m
    if not args.skip_paper or device.type == "cuda":
        paper = load_config("paper")
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        t0 = time.perf_counter()
        m, cond, x = build(paper, device, dtype)
        rows.append(("paper: build + init s", time.perf_counter() - t0))
        rows.append((f"paper: s / step (batched CFG, {str(dtype)[6:]})", per_step(m, cond, x, device, 1)))
        if device.type == "cuda":
            rows.append(("paper: 30 s of music, DDIM-250 s (bf16)", total(m, cond, x, "ddim", 250, device)))
            rows.append(("paper: 30 s of music, DPM++-25 s (bf16)", total(m, cond, x, "dpmpp-2m", 25, device)))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'seconds':>10}")
    for name, v in rows:
        print(f"{name:<{width}}  {v:>10.4f}")
    d = dict(rows)
    print(f"\nratios: two-pass / batched CFG (debug) = {d['debug: s / step (two-pass CFG)'] / d['debug: s / step (batched CFG)']:.2f}, "
          f"(mid) = {d['mid 512/8/8: s / step (two-pass CFG)'] / d['mid 512/8/8: s / step (batched CFG)']:.2f}; "
          f"DDIM-250 / DPM++-25 (debug) = {d['debug: DDIM-250 total s'] / d['debug: DPM-Solver++(2M)-25 total s']:.2f}")


if __name__ == "__main__":
    main()
