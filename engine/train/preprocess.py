"""`cutscore train preprocess SRC -o DATASET`: a folder of music videos (a video with its own
soundtrack) or of (video, music) pairs (same stem, e.g. clip01.mp4 + clip01.wav) -> a training set.

Per source: optional vocal removal (Demucs, when it and its weights are on the machine; otherwise
skipped with a warning), loudness normalised to -23 LUFS (pyloudnorm), 30 s segments with a 10 s hop;
a segment that overlaps a silence longer than 3 s is dropped (picture and music stay aligned, so
silence is dropped as whole segments, never cut out of the audio). Per segment: the video features
(engine.features; scene onsets from SRC/cuts.json {video stem: [cut seconds]} when the cuts are
known, as in an edited timeline or the synthetic corpus, else from PySceneDetect), the rhythm target (ODF_LR / Mel_LR / Tem_LR) and
the VAE latents, written to one .npz; a manifest.jsonl and dataset.json describe the set. The split
is 8:1:1 by SOURCE, so segments of one source never land in two splits. Re-running skips segments
already written.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import CutscoreError
from core.paths import DEFAULT_CLIP

VIDEO = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
AUDIO = {".wav", ".flac", ".mp3", ".ogg", ".m4a"}
SILENCE_S, SILENCE_DB = 3.0, -50.0


def find_sources(src: Path) -> list[tuple[Path, Path]]:
    """(video, audio) pairs: a video's own soundtrack unless an audio file has the same stem."""
    if not src.is_dir():
        raise CutscoreError(f"{src}: not a folder of videos")
    videos = sorted(p for p in src.rglob("*") if p.suffix.lower() in VIDEO)
    audio = {p.with_suffix("").as_posix(): p for p in src.rglob("*") if p.suffix.lower() in AUDIO}
    pairs = [(v, audio.get(v.with_suffix("").as_posix(), v)) for v in videos]
    if not pairs:
        raise CutscoreError(f"{src}: no videos found ({', '.join(sorted(VIDEO))})")
    return pairs


def split_of(source: str, seed: int = 0) -> str:
    """8:1:1 by a hash of the source's name: stable, and independent of the other sources."""
    h = int(hashlib.sha256(f"{seed}:{source}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "train" if h < 0.8 else ("val" if h < 0.9 else "test")


def silent_spans(y: np.ndarray, sr: int, min_s: float = SILENCE_S, db: float = SILENCE_DB) -> list[tuple[float, float]]:
    """Stretches longer than min_s whose 100 ms RMS stays under db dBFS."""
    hop = sr // 10
    mono = y.mean(axis=0)
    n = len(mono) // hop
    rms = np.sqrt((mono[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12)
    quiet = 20 * np.log10(rms) < db
    spans, start = [], None
    for i, q in enumerate(list(quiet) + [False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) * 0.1 >= min_s:
                spans.append((start * 0.1, i * 0.1))
            start = None
    return spans


def remove_vocals(y: np.ndarray, sr: int, warn: Callable[[str], None]) -> np.ndarray:
    try:
        import demucs.pretrained  # noqa: F401
    except ImportError:
        warn("Demucs is not installed: vocals are kept (pip install demucs, with its weights, to remove them)")
        return y
    import torch
    from demucs.apply import apply_model
    from demucs.pretrained import get_model

    try:
        model = get_model("htdemucs")
    except Exception as e:  # noqa: BLE001 - missing weights offline
        warn(f"Demucs weights are not on this machine ({type(e).__name__}): vocals are kept")
        return y
    import librosa

    x = torch.from_numpy(librosa.resample(y, orig_sr=sr, target_sr=model.samplerate))[None]
    stems = apply_model(model, x)[0]  # (sources, channels, samples)
    keep = [i for i, s in enumerate(model.sources) if s != "vocals"]
    return librosa.resample(stems[keep].sum(0).numpy(), orig_sr=model.samplerate, target_sr=sr)


def _source_audio(path: Path, sr: int, channels: int, vocals: bool, warn) -> np.ndarray:
    """A source's music as the VAE takes it: resampled, vocals removed (when asked), loudness
    normalised, mono or stereo."""
    from engine.features.audio import load_audio, normalise_loudness

    y, _ = load_audio(path, sr)
    if vocals:
        y = remove_vocals(y, sr, warn)
    y = normalise_loudness(y, sr)
    if channels == 1:
        return y.mean(axis=0, keepdims=True)
    return np.repeat(y, 2, axis=0) if y.shape[0] == 1 else y[:2]


def _write_segment(path: Path, video: Path, seg: np.ndarray, start: float, end: float, vae, window: int, rhythm: str,
                   cuts_s, fcfg) -> None:
    """One training segment: the video's per-second features, the music's rhythm target and latents."""
    import torch

    from engine.features import extract
    from engine.features.audio import rhythm_target
    from engine.model.vae import pad_or_trim

    m = int(math.ceil(end - start - 1e-9))
    f = extract(video, float(start), float(min(end, start + m)), cuts_s=cuts_s, config=fcfg)
    target = rhythm_target(seg, vae.sample_rate, rhythm, seconds=m)
    latents = vae.encode(pad_or_trim(torch.from_numpy(seg)[None], window))[0].numpy()
    path.parent.mkdir(exist_ok=True)
    np.savez(path, latents=latents.astype(np.float32), clip=f.clip[:m], color=f.color[:m], scene=f.scene[:m],
             beat=f.beat[:m], rhythm=target, mask=np.ones(m, bool))


def _segments_of(out: Path, source: str, split: str, y: np.ndarray, sr: int, seconds: int, hop: int,
                 write: Callable[[Path, float, float], None]) -> tuple[list[dict], int]:
    """The manifest entries of one source's segments (every `hop` s, `seconds` long; any holding a
    silence dropped), each written once by `write(path, start_s, end_s)`; and how many were dropped."""
    dur = y.shape[1] / sr
    silences = silent_spans(y, sr)
    starts = list(range(0, max(int(math.floor(dur - seconds)), 0) + 1, hop)) if dur >= seconds else [0]
    entries, dropped = [], 0
    for start in starts:
        end = min(start + seconds, dur)
        if any(a < end and b > start for a, b in silences):
            dropped += 1
            continue
        seg_id = f"{source.replace('/', '__')}__{start:05d}"
        rel = f"segments/{seg_id}.npz"
        if not (out / rel).exists():
            write(out / rel, start, end)
        entries.append({"id": seg_id, "source": source, "split": split, "file": rel, "start_s": float(start),
                        "duration_s": float(end - start)})
    return entries, dropped


def preprocess(src: str | Path, out: str | Path, vae_dir: str | Path | None = None, rhythm: str = "odf",
               seconds: int = 30, hop: int = 10, clip_model: str | None = DEFAULT_CLIP[0],
               clip_pretrained: str | None = DEFAULT_CLIP[1], seed: int = 0, vocals: bool = True,
               log: Callable[[str], None] = lambda s: None) -> dict:
    from engine.features import FeatureConfig
    from engine.model.vae import load_vae

    src, out = Path(src), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vae = load_vae(vae_dir)
    sr, ch = vae.sample_rate, vae.channels
    frames = (seconds * sr) // vae.downsampling
    window = frames * vae.downsampling
    fcfg = FeatureConfig(clip_model=clip_model, clip_pretrained=clip_pretrained)
    warned: set[str] = set()

    def warn(msg: str) -> None:
        if msg not in warned:
            warned.add(msg)
            log(f"warning: {msg}")

    known_cuts = json.loads((src / "cuts.json").read_text()) if (src / "cuts.json").exists() else {}
    manifest, dropped = [], 0
    for video, audio_path in find_sources(src):
        source = video.relative_to(src).with_suffix("").as_posix()
        y = _source_audio(audio_path, sr, ch, vocals, warn)
        write = lambda path, a, b, video=video, y=y: _write_segment(  # noqa: E731
            path, video, y[:, int(a * sr):int(b * sr)], a, b, vae, window, rhythm, known_cuts.get(video.stem), fcfg)
        entries, n_dropped = _segments_of(out, source, split_of(source, seed), y, sr, seconds, hop, write)
        manifest += entries
        dropped += n_dropped
        log(f"{source}: {len(entries) + n_dropped} segment(s), split {split_of(source, seed)}")
    (out / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    vae_folder = Path(vae_dir) if vae_dir else None
    meta = {"sample_rate": sr, "audio_channels": ch, "latent_dim": vae.latent_dim, "downsampling": vae.downsampling,
            "latent_frames": frames, "seconds": seconds, "hop": hop, "rhythm": rhythm, "clip_model": clip_model,
            "clip_pretrained": clip_pretrained, "vae_config": vae.config,
            "vae": str(vae_folder.resolve()) if vae_folder else None,
            "splits": {s: sum(m["split"] == s for m in manifest) for s in ("train", "val", "test")},
            "dropped_for_silence": dropped, "warnings": sorted(warned)}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2))
    return meta
