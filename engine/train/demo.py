"""The recipe of the shipped demo model (resources/models/demo), end to end on a CPU:

    .venv/bin/python -m engine.train.demo --work /tmp/cutscore-demo --out resources/models/demo

1. a synthetic corpus (`cutscore train synth`): COUNT training pairs and 20 held-out pairs, 30 s each;
2. a small VAE (stable-audio-tools oobleck, 8 kHz mono, /512, 16 latent channels) trained on the
   corpus's music (engine/train/vae_train.py);
3. preprocessing (`cutscore train preprocess`): 10 s segments with a 5 s hop, the true cuts from
   cuts.json, the tiny random-init CLIP (no download), ODF_LR targets, latents of the new VAE;
4. training (`cutscore train fit`) of the `demo` preset (resources/configs/demo.json): the same
   Diff-V2M code as the paper model, smaller, with its rhythm predictor and scheduled conditioning;
5. export: the EMA weights in half precision (under 30 MB) with the VAE and the config.
Every step logs to WORK/log.txt; times go to WORK/times.json for the model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def vae_onset_f(vae, heldout: Path, n: int = 8) -> float:
    """How well the VAE keeps the hits: onset F (+-100 ms) of its reconstructions against the cuts."""
    import numpy as np
    import soundfile as sf
    import torch

    from engine.metrics import detect_onsets, onset_f_measure

    cuts = json.loads((heldout / "cuts.json").read_text())
    fs = []
    for k in sorted(cuts)[:n]:
        y, sr = sf.read(heldout / f"{k}.wav", dtype="float32")
        r = vae.decode(vae.encode(torch.from_numpy(y)[None, None]), num_samples=len(y))[0, 0].numpy()
        fs.append(onset_f_measure(detect_onsets(r, sr), cuts[k])[0])
    return float(np.mean(fs))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Train the demo model (see the module docstring).")
    ap.add_argument("--work", required=True, help="a scratch folder")
    ap.add_argument("--out", default="resources/models/demo", help="the model folder to write")
    ap.add_argument("--count", type=int, default=150, help="training pairs (default 150)")
    ap.add_argument("--vae-steps", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np

    from engine.config import load_config
    from engine.features import load_audio
    from engine.train.fit import fit
    from engine.train.module import TrainConfig
    from engine.train.preprocess import preprocess
    from engine.train.synth import write_corpus
    from engine.train.vae_train import train_vae
    from engine.vae import VAE, save_vae

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    times = json.loads((work / "times.json").read_text()) if (work / "times.json").exists() else {}
    logf = (work / "log.txt").open("a")

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    def step(name: str, fn):
        if name in times:
            log(f"{name}: done before ({times[name]:.0f} s)")
            return
        t0 = time.time()
        fn()
        times[name] = time.time() - t0
        (work / "times.json").write_text(json.dumps(times, indent=2))
        log(f"{name}: {times[name]:.0f} s")

    cfg = load_config("demo")
    step("synth", lambda: (write_corpus(work / "corpus", args.count, args.seed, 30.0),
                           write_corpus(work / "heldout", 20, args.seed + 1, 30.0)))

    def vae_step():
        vae = VAE(cfg.vae)
        audio = [load_audio(p, cfg.sample_rate)[0].mean(0, keepdims=True) for p in sorted((work / "corpus").glob("*.wav"))]
        losses = train_vae(vae, audio, steps=args.vae_steps, batch=8, crop_s=1.024, seed=args.seed,
                           kl_weight=1e-5, log=log)
        save_vae(vae, work / "vae")
        times["vae_final_loss"] = float(np.mean(losses[-100:]))
        times["vae_recon_onset_f"] = vae_onset_f(vae, work / "heldout")
        log(f"VAE reconstructions of held-out music: onset F against the cuts {times['vae_recon_onset_f']:.3f}")

    step("vae", vae_step)
    step("preprocess", lambda: preprocess(work / "corpus", work / "dataset", vae_dir=work / "vae", seconds=10, hop=5,
                                          clip_model="cutscore-tiny-clip", clip_pretrained=None, vocals=False, log=log))
    tc = TrainConfig(dataset=str(work / "dataset"), out_dir=str(work / "run"), model="demo", seed=args.seed,
                     batch_size=16, accumulate=1, max_epochs=args.epochs, lr=1e-3, warmup=0.95, ema_decay=0.998,
                     e1=max(1, args.epochs // 6), e2=max(2, args.epochs // 2), log_every=10)
    (work / "train.json").write_text(json.dumps(tc.to_dict(), indent=2))
    step("fit", lambda: fit(tc))

    def export():
        from safetensors.torch import load_file, save_file

        out = Path(args.out)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(work / "run" / "model-ema", out)
        state = load_file(str(out / "model.safetensors"))
        save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(out / "model.safetensors"))
        shutil.copy(work / "train.json", out / "train.json")
        (out / "times.json").write_text(json.dumps(times, indent=2))

    step("export", export)
    log(f"done: {args.out}")


if __name__ == "__main__":
    main()
