"""The embedding networks behind the paper's distribution metrics (MODEL_SPEC.md "Evaluation"),
from their well-kept packages, with weights from a local file (they are never downloaded here):

- FAD: VGGish (the `torchvggish` package; its published state dict `vggish-10086976.pth`, looked
  for in $CUTSCORE_VGGISH or torch's hub cache), 128-d embeddings of 0.96 s log-mel examples at
  16 kHz, before the PCA postprocessing.
- FD and KL: PANNs CNN14 at 16 kHz (the `panns_inference` package; its published checkpoint
  `Cnn14_16k_mAP=0.438.pth`, a dict with the state under "model", in $CUTSCORE_PANNS or
  ~/panns_data): the 2048-d clip embedding (FD) and the 527 AudioSet class probabilities (KL).
- Density and coverage: LAION-CLAP (`laion_clap`) when installed with a checkpoint; otherwise the
  columns say what is missing.

`available()` says per network what can be loaded, or what to install or download.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

VGGISH_FILE = "vggish-10086976.pth"
PANNS_FILE = "Cnn14_16k_mAP=0.438.pth"
CNN14_16K = dict(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527)


def vggish_path() -> Path:
    env = os.environ.get("CUTSCORE_VGGISH")
    return Path(env) if env else Path(torch.hub.get_dir()) / "checkpoints" / VGGISH_FILE


def panns_path() -> Path:
    env = os.environ.get("CUTSCORE_PANNS")
    return Path(env) if env else Path.home() / "panns_data" / PANNS_FILE


def available() -> dict[str, str | None]:
    """{network: None when it loads here, else what to install or download}."""
    import importlib.util

    out = {}
    if importlib.util.find_spec("torchvggish") is None:
        out["vggish"] = "VGGish: pip install torchvggish"
    elif not vggish_path().is_file():
        out["vggish"] = f"VGGish weights: put {VGGISH_FILE} at {vggish_path()} (or set CUTSCORE_VGGISH)"
    else:
        out["vggish"] = None
    if importlib.util.find_spec("panns_inference") is None:
        out["panns"] = "PANNs CNN14: pip install panns-inference"
    elif not panns_path().is_file():
        out["panns"] = f"PANNs CNN14 16 kHz weights: put {PANNS_FILE} at {panns_path()} (or set CUTSCORE_PANNS)"
    else:
        out["panns"] = None
    # not wired: laion_clap builds its text tower from the Hugging Face hub at construction
    out["clap"] = "LAION-CLAP is not wired into cutscore yet (its text tower downloads at construction)"
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


def cnn14_class():
    """panns_inference's Cnn14. Its package __init__ fetches a label CSV with wget on import (it
    would touch the network, and fails offline), so the network's own module is imported alone."""
    import importlib.util
    import sys
    import types

    if "panns_inference" not in sys.modules:
        spec = importlib.util.find_spec("panns_inference")
        pkg = types.ModuleType("panns_inference")
        pkg.__path__, pkg.__spec__ = list(spec.submodule_search_locations), spec
        sys.modules["panns_inference"] = pkg
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
