"""A preprocessed dataset: DATASET/manifest.jsonl (one line a segment: id, source, split, file) and
one .npz a segment with the model's inputs and targets:

  latents (C, T)   VAE latents of the segment's audio (posterior mean)
  clip (M, 512), color (M, 3072), scene (M,), beat (M,)   per-second video features
  rhythm (M, R)    the rhythm target (ODF_LR / Mel_LR / Tem_LR, z-scored)
  mask (M,)        real seconds

Batches are (Features, latents, rhythm). The sampler shuffles with a seed and the epoch, so a run
resumed from a checkpoint sees the same order as an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from core.errors import CutscoreError
from engine.model.encoders import Features


def read_manifest(root: str | Path) -> list[dict]:
    p = Path(root) / "manifest.jsonl"
    if not p.exists():
        raise CutscoreError(f"{root}: not a cutscore dataset (no manifest.jsonl); make one with `cutscore train preprocess`")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


class SegmentDataset(Dataset):
    def __init__(self, root: str | Path, split: str = "train", seconds: int = 30):
        self.root = Path(root)
        self.items = [m for m in read_manifest(root) if m["split"] == split]
        if not self.items:
            raise CutscoreError(f"{root}: the dataset has no {split!r} segments")
        self.seconds = seconds
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        if i not in self._cache:
            with np.load(self.root / self.items[i]["file"]) as z:
                self._cache[i] = {k: z[k] for k in z.files}
        d = self._cache[i]
        m = self.seconds

        def pad(a: np.ndarray) -> np.ndarray:
            out = np.zeros((m,) + a.shape[1:], np.float32)
            out[: min(len(a), m)] = a[:m]
            return out

        mask = np.zeros(m, bool)
        mask[: min(len(d["scene"]), m)] = d.get("mask", np.ones(len(d["scene"]), bool))[:m]
        return {"latents": torch.from_numpy(d["latents"].astype(np.float32)), "clip": torch.from_numpy(pad(d["clip"])),
                "color": torch.from_numpy(pad(d["color"])), "scene": torch.from_numpy(pad(d["scene"])).long(),
                "beat": torch.from_numpy(pad(d["beat"])), "rhythm": torch.from_numpy(pad(d["rhythm"])),
                "mask": torch.from_numpy(mask), "start": torch.tensor(float(self.items[i].get("start_s", 0.0))),
                "duration": torch.tensor(float(self.items[i].get("duration_s", m)))}


def collate(items: list[dict]) -> tuple[Features, torch.Tensor, torch.Tensor]:
    b = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    f = Features(clip=b["clip"], color=b["color"], scene=b["scene"], beat=b["beat"], mask=b["mask"],
                 start=b["start"], duration=b["duration"])
    return f, b["latents"], b["rhythm"]


class EpochShuffleSampler(Sampler):
    """A permutation drawn from (seed, epoch): reproducible across restarts."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n
