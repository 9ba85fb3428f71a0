"""The embedding networks behind the paper's distribution metrics (docs/MODEL_SPEC.md "Evaluation"),
from their well-kept packages, with weights from a local file (they are never downloaded here):

- FAD: VGGish (the `torchvggish` package; its published state dict `vggish-10086976.pth`, looked
  for in $CUTSCORE_VGGISH or torch's hub cache), 128-d embeddings of 0.96 s log-mel examples at
  16 kHz, before the PCA postprocessing.
- FD and KL: PANNs CNN14 at 16 kHz (the `panns_inference` package; its published checkpoint
  `Cnn14_16k_mAP=0.438.pth`, a dict with the state under "model", in $CUTSCORE_PANNS or
  ~/panns_data): the 2048-d clip embedding (FD) and the 527 AudioSet class probabilities (KL).
- Density and coverage: LAION-CLAP's audio tower (the `laion_clap` package's CLAP, HTSAT-tiny, the
  non-fusion checkpoint `630k-audioset-best.pt`, in $CUTSCORE_CLAP or where laion_clap's own loader
  keeps it, its package folder): 512-d unit embeddings of 10 s chunks at 48 kHz, repeat-padded as
  laion_clap pads them. Its text tower is not built: the metrics compare audio with audio.

`available()` says per network what can be loaded, or what to install or download.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

VGGISH_FILE = "vggish-10086976.pth"
PANNS_FILE = "Cnn14_16k_mAP=0.438.pth"
CLAP_FILE = "630k-audioset-best.pt"
CLAP_SR, CLAP_CLIP_S = 48000, 10
CLAP_TEXT_STUB = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1,
                  "model_type": "transformer"}  # never used nor loaded; the smallest text tower CLAP builds
CNN14_16K = dict(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527)


def vggish_path() -> Path:
    env = os.environ.get("CUTSCORE_VGGISH")
    return Path(env) if env else Path(torch.hub.get_dir()) / "checkpoints" / VGGISH_FILE


def panns_path() -> Path:
    env = os.environ.get("CUTSCORE_PANNS")
    return Path(env) if env else Path.home() / "panns_data" / PANNS_FILE


def clap_path() -> Path:
    import importlib.util

    env = os.environ.get("CUTSCORE_CLAP")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("laion_clap")
    return (Path(spec.origin).parent if spec else Path.home()) / CLAP_FILE


def available() -> dict[str, str | None]:
    """{network: None when it loads here, else what to install or download}."""
    import importlib.util

    nets = {"vggish": ("torchvggish", "torchvggish", "VGGish", VGGISH_FILE, vggish_path, "CUTSCORE_VGGISH"),
            "panns": ("panns_inference", "panns-inference", "PANNs CNN14 16 kHz", PANNS_FILE, panns_path, "CUTSCORE_PANNS"),
            "clap": ("laion_clap", "laion-clap", "LAION-CLAP", CLAP_FILE, clap_path, "CUTSCORE_CLAP")}
    out = {}
    for net, (module, pip, label, file, where, env) in nets.items():
        if importlib.util.find_spec(module) is None:
            out[net] = f"{label}: pip install {pip}"
        elif not where().is_file():
            out[net] = f"{label} weights: put {file} at {where()} (or set {env})"
        else:
            out[net] = None
    return out


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, np.float32)
    return y.mean(0) if y.ndim == 2 else y


class VGGish:
    def __init__(self, path: Path | None = None):
        from torchvggish.torchvggish import _vgg

        self.model = _vgg(postprocess=False).eval()
        state = torch.load(path or vggish_path(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(state, strict=True)

    @torch.no_grad()
    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        """(N examples, 128) for one recording."""
        from torchvggish.vggish_input import waveform_to_examples

        examples = waveform_to_examples(_mono(y), sr, return_tensor=True)  # (N, 1, 96, 64)
        if examples.shape[0] == 0:
            return np.zeros((0, 128), np.float32)
        return self.model(examples.float()).reshape(examples.shape[0], -1).numpy()


def _bare_package(name: str) -> None:
    """Make `name`'s submodules importable without running its __init__."""
    import importlib.util
    import sys
    import types

    if name not in sys.modules:
        spec = importlib.util.find_spec(name)
        pkg = types.ModuleType(name)
        pkg.__path__, pkg.__spec__ = list(spec.submodule_search_locations), spec
        sys.modules[name] = pkg


def cnn14_class():
    """panns_inference's Cnn14. Its package __init__ fetches a label CSV with wget on import (it
    would touch the network, and fails offline), so the network's own module is imported alone."""
    _bare_package("panns_inference")
    from panns_inference.models import Cnn14 as Net

    return Net


class Cnn14:
    def __init__(self, path: Path | None = None):
        self.model = cnn14_class()(**CNN14_16K).eval()
        ckpt = torch.load(path or panns_path(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(ckpt["model"], strict=True)

    @torch.no_grad()
    def embed(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """(2048-d embedding, 527 class probabilities) for one recording, at 16 kHz."""
        import soxr

        x = _mono(y)
        if sr != CNN14_16K["sample_rate"]:
            x = soxr.resample(x, sr, CNN14_16K["sample_rate"]).astype(np.float32)
        out = self.model(torch.from_numpy(x)[None], None)
        return out["embedding"][0].numpy(), out["clipwise_output"][0].numpy()


def clap_model():
    """laion_clap's CLAP with HTSAT-tiny's audio config (its model_configs/HTSAT-tiny.json), random
    weights. laion_clap's package __init__ (through training/data.py) fetches three text tokenizers
    from the Hugging Face hub on import, so its clap_module is imported alone."""
    import json
    import sys

    _bare_package("laion_clap")
    from laion_clap.clap_module.model import CLAP

    cfg = json.loads((Path(sys.modules["laion_clap"].__path__[0]) / "clap_module" / "model_configs"
                      / "HTSAT-tiny.json").read_text())
    return CLAP(embed_dim=cfg["embed_dim"], audio_cfg=cfg["audio_cfg"], text_cfg=CLAP_TEXT_STUB)


class Clap:
    AUDIO_PARTS = ("audio_branch", "audio_projection")

    def __init__(self, path: Path | None = None):
        from core.errors import CutscoreError

        path = Path(path or clap_path())
        self.model = clap_model().eval()
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = ckpt.get("state_dict", ckpt)
        state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DistributedDataParallel
        for part in self.AUDIO_PARTS:
            sub = {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".")}
            try:
                getattr(self.model, part).load_state_dict(sub, strict=True)
            except RuntimeError as e:
                raise CutscoreError(f"{path}: not a LAION-CLAP HTSAT-tiny non-fusion checkpoint ({part}: "
                                    f"{str(e).splitlines()[0]}); use {CLAP_FILE}") from e

    @torch.no_grad()
    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        """(N chunks of 10 s, 512) unit embeddings for one recording: 48 kHz, quantised to 16 bits as
        laion_clap's loader does, each chunk repeated then zero-padded to 10 s; a last chunk under 1 s
        of a longer recording is left out (repeated ten times over it would weigh as much as a whole one)."""
        import soxr

        x = _mono(y)
        if sr != CLAP_SR:
            x = soxr.resample(x, sr, CLAP_SR).astype(np.float32)
        x = (np.clip(x, -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32767
        n = CLAP_SR * CLAP_CLIP_S
        chunks = []
        for a in range(0, max(len(x), 1), n):
            c = torch.from_numpy(x[a:a + n])
            if a > 0 and len(c) < CLAP_SR:
                break
            if len(c) < n:
                c = c.repeat(n // max(len(c), 1)) if len(c) else c
                c = torch.nn.functional.pad(c, (0, n - len(c)))
            chunks.append({"waveform": c})
        return self.model.get_audio_embedding(chunks).numpy()
