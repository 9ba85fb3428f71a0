"""Audio in and out of the engine (torch-free): reading any file's audio, the rhythm targets
Diff-V2M learns (ODF_LR, Mel_LR, Tem_LR, computed from a waveform exactly as docs/MODEL_SPEC.md says) and
the one loudness normaliser (ITU-R BS.1770 integrated loudness via pyloudnorm, peak-limited)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from core.errors import CutscoreError
from core.signal import loudness_gain_db, normalise_loudness  # noqa: F401 - the engine's audio helpers


def load_audio(path: str | Path, sr: int | None = None, start_s: float = 0.0, end_s: float | None = None):
    """Audio of a file as (channels, samples) float32: soundfile for audio files, ffmpeg for the
    soundtrack of a video. Returns (audio, sample_rate)."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise CutscoreError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
        rate = info.samplerate
        a = int(start_s * rate)
        b = None if end_s is None else int(end_s * rate)
        y, rate = sf.read(str(path), start=a, stop=b, dtype="float32", always_2d=True)
        y = y.T
    except sf.LibsndfileError:
        rate = sr or 44100
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-ss", str(start_s), "-i", str(path)]
        if end_s is not None:
            cmd += ["-t", str(end_s - start_s)]
        cmd += ["-vn", "-ac", "2", "-ar", str(rate), "-f", "f32le", "-"]
        try:
            r = subprocess.run(cmd, capture_output=True, check=False)
        except FileNotFoundError as e:
            raise CutscoreError("ffmpeg is not installed (apt-get install ffmpeg); it reads video soundtracks") from e
        if r.returncode != 0 or not r.stdout:
            msg = r.stderr.decode(errors="replace").strip().splitlines()
            raise CutscoreError(f"{path}: no audio could be read ({msg[-1] if msg else 'no audio stream'})") from None
        y = np.frombuffer(r.stdout, np.float32).reshape(-1, 2).T.copy()
    if sr is not None and rate != sr:
        import librosa

        y = librosa.resample(y, orig_sr=rate, target_sr=sr)
        rate = sr
    return y, rate


def audio_rhythm_target(path: str | Path, representation: str = "odf", start_s: float = 0.0,
                        end_s: float | None = None, seconds: int | None = None) -> np.ndarray:
    """The rhythm target (ODF_LR, Mel_LR or Tem_LR, z-scored) of an audio file or a video's own
    soundtrack, for training and evaluation."""
    y, rate = load_audio(path, 44100, start_s, end_s)
    return rhythm_target(y, rate, representation, seconds)


REF_SR, REF_HOP = 44100, 512  # the paper's onset hop at 44.1 kHz; other rates keep the same hop time


def zscore(x: np.ndarray, axis=None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=axis, keepdims=axis is not None)
    return (x - x.mean(axis=axis, keepdims=axis is not None)) / np.maximum(std, 1e-8)


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    return y.mean(axis=0) if y.ndim == 2 else y  # (channels, samples) -> (samples,)


def _hop(sr: int, hop_at_ref: int = REF_HOP) -> int:
    return max(1, int(round(hop_at_ref * sr / REF_SR)))


def odf_lr(y: np.ndarray, sr: int, seconds: int | None = None) -> np.ndarray:
    """ODF_LR (M, 1): onset strength (hop 512 at 44.1 kHz) z-scored over the clip; peaks with
    prominence 0.05; each peak goes to second round(t); a second keeps its largest positive peak."""
    import librosa
    from scipy.signal import find_peaks

    y = _mono(y)
    hop = _hop(sr)
    m = seconds if seconds is not None else int(np.ceil(len(y) / sr))
    odf = zscore(librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop))
    peaks, _ = find_peaks(odf, prominence=0.05)
    out = np.zeros((m, 1), dtype=np.float32)
    for p in peaks:
        sec = min(int(round(p * hop / sr)), m - 1)
        if odf[p] > 0 and odf[p] > out[sec, 0]:
            out[sec, 0] = odf[p]
    return out


def _block_mean(feat: np.ndarray, frames_per_s: float, m: int, channels: int) -> np.ndarray:
    """(F, N) feature over N frames -> (m, channels): mean over each second and each band group."""
    f, n = feat.shape
    out = np.zeros((m, channels), dtype=np.float32)
    groups = np.array_split(np.arange(f), channels)
    for s in range(m):
        a, b = int(round(s * frames_per_s)), int(round((s + 1) * frames_per_s))
        block = feat[:, a:max(b, a + 1)] if a < n else feat[:, -1:]
        out[s] = [block[g].mean() for g in groups]
    return out


def mel_lr(y: np.ndarray, sr: int, seconds: int | None = None, channels: int = 16) -> np.ndarray:
    """Mel_LR (M, 16): 128-band mel (n_fft 2048, hop 512) in dB, block-averaged, z-scored."""
    import librosa

    y = _mono(y)
    hop = _hop(sr)
    m = seconds if seconds is not None else int(np.ceil(len(y) / sr))
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=_hop(sr, 2048), hop_length=hop,
                                                             n_mels=128))
    return zscore(_block_mean(mel, sr / hop, m, channels)).astype(np.float32)


def tem_lr(y: np.ndarray, sr: int, seconds: int | None = None, channels: int = 16) -> np.ndarray:
    """Tem_LR (M, 16): librosa tempogram (hop 128, window 384), block-averaged, z-scored."""
    import librosa

    y = _mono(y)
    hop = _hop(sr, 128)
    m = seconds if seconds is not None else int(np.ceil(len(y) / sr))
    tg = librosa.feature.tempogram(y=y, sr=sr, hop_length=hop, win_length=384)
    return zscore(_block_mean(tg, sr / hop, m, channels)).astype(np.float32)


def rhythm_target(y: np.ndarray, sr: int, representation: str = "odf", seconds: int | None = None) -> np.ndarray:
    """The per-second rhythm target used as condition and loss target: the representation,
    z-scored again per sample (padding included), as docs/MODEL_SPEC.md says."""
    fns = {"odf": odf_lr, "mel": mel_lr, "tem": tem_lr}
    if representation not in fns:
        raise ValueError(f"unknown rhythm representation: {representation}")
    return zscore(fns[representation](y, sr, seconds)).astype(np.float32)
