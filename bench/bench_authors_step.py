"""One sampling step of cutscore's `official` preset beside one step of the authors' code, at the
released size, on the CPU, with the same weights and the same inputs (issue 20):

    .venv/bin/python bench/bench_authors_step.py --authors /path/to/Diff-V2M-Code [--frames 645] [--repeats 1]

The authors' repository (Tayjsl97/Diff-V2M-Code, no licence) is not part of cutscore: check it out
locally and point --authors at it; nothing of it is copied. Their DiffusionTransformer is built from
their model_config_odf.json with random weights (seeded), the same tensors are loaded into
cutscore's DiT (the official checkpoint's names, unchanged), and one classifier-free-guided
v-prediction (guidance 3, both branches in one batch, as both codes do it) runs on the same noisy
latents, diffusion time and condition streams. The table: seconds per step for each, and the
largest difference of the outputs relative to their largest magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", type=Path, default=os.environ.get("CUTSCORE_AUTHORS_CODE"),
                    help="a checkout of Tayjsl97/Diff-V2M-Code (default: $CUTSCORE_AUTHORS_CODE)")
    ap.add_argument("--frames", type=int, default=645, help="latent frames (645: a 30 s window)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.authors is None:  # `make bench` on a machine without the authors' code
        print("skipped: pass --authors DIR (a checkout of Tayjsl97/Diff-V2M-Code) or set CUTSCORE_AUTHORS_CODE")
        return
    cfg_path = args.authors / "stable_audio_tools" / "configs" / "model_configs" / "Diff-V2M" / "model_config_odf.json"
    if not cfg_path.exists():
        raise SystemExit(f"{cfg_path}: missing; --authors must point at a checkout of Tayjsl97/Diff-V2M-Code")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from core.model_config import load_config
    from engine.model.diffusion import DiffV2M
    from engine.model.dit import Cond

    sys.path.insert(0, str(args.authors))  # their stable_audio_tools shadows the installed one from here on
    from stable_audio_tools.models.dit import DiffusionTransformer

    theirs_cfg = json.loads(cfg_path.read_text())["model"]["diffusion"]["config"]
    torch.manual_seed(0)
    theirs = DiffusionTransformer(**theirs_cfg).eval()
    # a random init leaves zero-initialised output layers zero: perturb every tensor so each path counts
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ours = DiffV2M(load_config("official")).eval()
    missing, unexpected = ours.dit.load_state_dict(theirs.state_dict(), strict=False)
    if missing or unexpected:
        raise SystemExit(f"names differ: missing {missing[:5]}, unexpected {unexpected[:5]}")

    g = torch.Generator().manual_seed(1)
    d, seconds = theirs_cfg["cond_token_dim"], 30
    x = torch.randn(1, theirs_cfg["io_channels"], args.frames, generator=g)
    t = torch.tensor([0.7])
    sem, rhy, emo = (torch.randn(1, n, d, generator=g) for n in (seconds, seconds + 2, seconds))
    masks = [torch.ones(1, s.shape[1], dtype=torch.bool) for s in (sem, rhy, emo)]
    masks[0][:, 25:] = False  # a 25 s window padded to 30: the padded seconds are masked keys
    glob = torch.randn(1, theirs_cfg["global_cond_dim"], generator=g)
    cond = Cond(emo=emo, emo_mask=masks[2], sem=sem, sem_mask=masks[0], rhy=rhy, rhy_mask=masks[1], global_cond=glob)
    denoise = ours.denoiser(cond, 3.0)

    # their first cross-attention reads the third stream of the list: in the released model that is the
    # rhythm stream (cutscore's official preset says so with emotion_source="rhythm")
    third = (rhy, masks[1]) if ours.cfg.dit.emotion_source == "rhythm" else (emo, masks[2])

    def theirs_step():
        return theirs(x, t, cross_attn_cond=[sem.clone(), rhy.clone(), third[0].clone()],
                      cross_attn_cond_mask=[masks[0], masks[1], third[1]], global_embed=glob, cfg_scale=3.0)

    def ours_step():
        return denoise(x, t)

    rows = {}
    with torch.no_grad():
        for name, fn in (("authors' code", theirs_step), ("cutscore official", ours_step)):
            fn()  # warm
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                out = fn()
            rows[name] = ((time.perf_counter() - t0) / args.repeats, out)
    a, b = rows["authors' code"][1], rows["cutscore official"][1]
    rel = float((a - b).abs().max() / a.abs().max())
    print(f"one guided sampling step, {args.frames} latent frames, {torch.get_num_threads()} CPU threads, fp32")
    print(f"{'code':<20} {'s/step':>8} {'ratio':>7}")
    base = rows["authors' code"][0]
    for name, (secs, _) in rows.items():
        print(f"{name:<20} {secs:>8.2f} {secs / base:>7.2f}")
    print(f"largest output difference relative to the largest output: {rel:.2e}")


if __name__ == "__main__":
    main()
