"""The recipe of the shipped demo model (resources/models/demo), end to end on a CPU:

    .venv/bin/python scripts/train_demo.py --work /tmp/cutscore-demo --out resources/models/demo

1. a synthetic corpus (`cutscore train synth --music gm`): COUNT training pairs and 20 held-out
   pairs, 30 s each, General MIDI instruments through FluidSynth at 16 kHz;
2. a small VAE (stable-audio-tools: a patched pretransform (8 samples -> 8 channels) before an
   oobleck encoder/decoder, 16 kHz mono, /512, 32 latent channels) trained on the corpus's music
   (engine/train/vae_train.py), or an already trained one copied from --vae; its latent `scale` set
   to the latents' standard deviation on the corpus, so the DiT learns unit-variance latents;
3. preprocessing (`cutscore train preprocess`): 10 s segments with a 5 s hop, the true cuts from
   cuts.json, the tiny random-init CLIP (no download), ODF_LR targets, latents of the new VAE;
4. training (`cutscore train fit`) of the `demo` preset (resources/configs/demo.json): the same
   Diff-V2M code as the paper model, smaller, with its rhythm predictor and scheduled conditioning;
5. export: the EMA weights in half precision with the VAE and the config.
Every step logs to WORK/log.txt; times go to WORK/times.json for the model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: scripts/ is no package


def vae_quality(vae, heldout: Path, n: int = 8) -> dict:
    """How well the VAE keeps the music: on held-out clips, the spectral flatness of originals and
    reconstructions (pitch kept: both near 0), their waveform correlation, and the reconstructions'
    onset F (+-100 ms) against the cuts (the hits kept)."""
    import numpy as np
    import soundfile as sf
    import torch

    from engine.eval.metrics import detect_onsets, onset_f_measure, spectral_flatness

    cuts = json.loads((heldout / "cuts.json").read_text())
    rows = []
    for k in sorted(cuts)[:n]:
        y, sr = sf.read(heldout / f"{k}.wav", dtype="float32")
        r = vae.decode(vae.encode(torch.from_numpy(y)[None, None]), num_samples=len(y))[0, 0].numpy()
        rows.append((spectral_flatness(y, sr), spectral_flatness(r, sr), float(np.corrcoef(y, r)[0, 1]),
                     onset_f_measure(detect_onsets(r, sr), cuts[k])[0]))
    m = np.mean(rows, axis=0)
    return {"vae_flatness_original": float(m[0]), "vae_flatness_recon": float(m[1]), "vae_recon_corr": float(m[2]),
            "vae_recon_onset_f": float(m[3])}


class Recipe:
    """The steps in order; each logs to WORK/log.txt and records its wall time in WORK/times.json,
    and a step already timed there is skipped (a run that stopped goes on where it stopped)."""

    def __init__(self, args):
        from core.model_config import load_config

        self.args, self.cfg, self.work = args, load_config("demo"), Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        times = self.work / "times.json"
        self.times = json.loads(times.read_text()) if times.exists() else {}
        self.logf = (self.work / "log.txt").open("a")

    def log(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        self.logf.write(line + "\n")
        self.logf.flush()

    def step(self, name: str, fn) -> None:
        if name in self.times:
            self.log(f"{name}: done before ({self.times[name]:.0f} s)")
            return
        t0 = time.time()
        fn()
        self.times[name] = time.time() - t0
        (self.work / "times.json").write_text(json.dumps(self.times, indent=2))
        self.log(f"{name}: {self.times[name]:.0f} s")

    def run(self) -> None:
        from engine.train.fit import fit
        from engine.train.preprocess import preprocess
        from engine.train.synth import write_corpus

        a, work = self.args, self.work
        self.step("synth", lambda: (write_corpus(work / "corpus", a.count, a.seed, 30.0, music="gm"),
                                    write_corpus(work / "heldout", 20, a.seed + 1, 30.0, music="gm")))
        self.step("vae", self.vae)
        self.step("preprocess", lambda: preprocess(work / "corpus", work / "dataset", vae_dir=work / "vae", seconds=10,
                                                   hop=5, clip_model="cutscore-tiny-clip", clip_pretrained=None,
                                                   vocals=False, log=self.log))
        tc = self.train_config()
        self.step("fit", lambda: fit(tc))
        self.step("export", self.export)
        self.log(f"done: {a.out}")

    def vae(self) -> None:
        import numpy as np
        import torch

        from engine.features.audio import load_audio
        from engine.model.vae import latent_std, load_vae, save_vae, with_scale
        from engine.train.vae_train import new_vae, train_vae

        a, cfg, work = self.args, self.cfg, self.work
        if a.vae:
            vae = load_vae(a.vae)
            if {k: v for k, v in vae.config.items() if k != "scale"} != cfg.vae:
                raise SystemExit(f"{a.vae}: its VAE config differs from the demo preset's (resources/configs/demo.json)")
            self.log(f"VAE: using the trained one in {a.vae}")
        else:
            vae = new_vae(cfg.vae, a.seed)  # the same initial weights every run: the recipe is reproducible
            audio = [load_audio(p, cfg.sample_rate)[0].mean(0, keepdims=True)
                     for p in sorted((work / "corpus").glob("*.wav"))]
            losses = train_vae(vae, audio, steps=a.vae_steps, batch=8, crop_s=1.024, seed=a.seed,
                               kl_weight=1e-5, log=self.log)
            self.times["vae_final_loss"] = float(np.mean(losses[-100:]))
        clips = [torch.from_numpy(load_audio(p, cfg.sample_rate)[0].mean(0, keepdims=True).astype(np.float32))
                 for p in sorted((work / "corpus").glob("*.wav"))[:16]]
        with_scale(vae, latent_std(vae, clips))  # unit-variance latents for the diffusion model
        self.times["vae_latent_scale"] = vae.scale
        save_vae(vae, work / "vae")
        self.times.update(vae_quality(vae, work / "heldout"))
        self.log("VAE on held-out music: " + ", ".join(f"{k} {v:.3f}" for k, v in self.times.items() if k.startswith("vae_")))

    def train_config(self):
        from engine.train.module import TrainConfig

        a, work = self.args, self.work
        tc = TrainConfig(dataset=str(work / "dataset"), out_dir=str(work / "run"), model="demo", seed=a.seed,
                         batch_size=16, accumulate=1, max_epochs=a.epochs, lr=1e-3, warmup=0.95, ema_decay=0.998,
                         e1=min(6, a.epochs - 1), e2=min(18, a.epochs), log_every=10)  # predicted rhythm: from epoch 6, always from 18
        (work / "train.json").write_text(json.dumps(tc.to_dict(), indent=2))
        return tc

    def export(self) -> None:
        """The EMA weights in half precision, with the VAE, the config, the training config and the times."""
        from safetensors.torch import load_file, save_file

        out = Path(self.args.out)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(self.work / "run" / "model-ema", out)
        state = load_file(str(out / "model.safetensors"))
        save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(out / "model.safetensors"))
        shutil.copy(self.work / "train.json", out / "train.json")
        (out / "times.json").write_text(json.dumps(self.times, indent=2))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Train the demo model (see the module docstring).")
    ap.add_argument("--work", required=True, help="a scratch folder")
    ap.add_argument("--out", default="resources/models/demo", help="the model folder to write")
    ap.add_argument("--count", type=int, default=150, help="training pairs (default 150)")
    ap.add_argument("--vae-steps", type=int, default=4000)
    ap.add_argument("--vae", help="a trained VAE folder to use instead of training one (step 2)")
    ap.add_argument("--epochs", type=int, default=36, help="DiT epochs (default 36, the shipped model: about 38 minutes on two cores, 69 for the whole recipe; see the model card)")
    ap.add_argument("--seed", type=int, default=0)
    Recipe(ap.parse_args(argv)).run()


if __name__ == "__main__":
    main()
