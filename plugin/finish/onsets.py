"""Onset strength of music of any length in bounded memory (torch-free; the finishing chain's beats
and hit sync, issue 47): librosa's onset_strength computed a chunk of frames at a time, the same
numbers as librosa's own over the whole piece (tests/test_finish.py compares them), where librosa's
holds the whole piece's spectrogram (2048-point STFT, complex, every 512 samples: about 100 MB a
minute of 48 kHz music, the largest part of a long score's memory).

What librosa does, and how the chunks keep it: the mel power of each frame (a frame sees only its
own 2048 samples, zeros past either end: `center=True, pad_mode="constant"`), in dB clipped 80 dB
under the piece's loudest bin (a first pass finds it), each frame's rise over the previous frame
(carried across chunks) averaged over the bands, shifted by lag + n_fft / (2 hop) frames."""

from __future__ import annotations

import numpy as np

N_FFT = 2048
CHUNK_FRAMES = 2048  # frames per chunk: 16 MB of spectrogram at any length
AMIN, TOP_DB = 1e-10, 80.0  # librosa.power_to_db's defaults


def onset_strength(y: np.ndarray, sr: int, hop: int, n_mels: int = 128, fmax: float | None = None,
                   below_hz: float | None = None, offset: float = 0.0, chunk: int = CHUNK_FRAMES) -> np.ndarray:
    """librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop) of mono `y` (n_mels, fmax: the mel
    spectrogram's); below_hz / offset: of the mel bands whose centre lies below below_hz only, their
    power plus `offset` (as `onset_strength(S=power_to_db(mel[band] + offset))`)."""
    import librosa

    frames = 1 + len(y) // hop
    basis = librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=n_mels, fmax=fmax)
    if below_hz is not None:
        basis = basis[librosa.mel_frequencies(n_mels=n_mels, fmax=fmax if fmax is not None else sr / 2) < below_hz]

    def power(f0: int, f1: int) -> np.ndarray:
        a, b = f0 * hop - N_FFT // 2, (f1 - 1) * hop + N_FFT // 2
        seg = np.zeros(b - a, np.float32)
        lo, hi = max(a, 0), min(b, len(y))
        if hi > lo:
            seg[lo - a:hi - a] = y[lo:hi]
        spec = np.abs(librosa.stft(seg, n_fft=N_FFT, hop_length=hop, center=False)) ** 2
        mel = np.einsum("...ft,mf->...mt", spec, basis, optimize=True)
        return np.abs(mel) + offset if offset else np.abs(mel)

    spans = [(f0, min(f0 + chunk, frames)) for f0 in range(0, frames, chunk)]
    top = max(float(power(a, b).max()) for a, b in spans)
    floor = np.float32(10.0 * np.log10(max(AMIN, np.float32(top)))) - TOP_DB
    out, prev = [], None
    for a, b in spans:
        db = 10.0 * np.log10(np.maximum(AMIN, power(a, b)))
        db -= 10.0 * np.log10(np.maximum(AMIN, 1.0))
        db = np.maximum(db, floor)
        both = db if prev is None else np.concatenate([prev, db], axis=1)
        out.append(np.maximum(0.0, both[:, 1:] - both[:, :-1]).mean(axis=0))
        prev = db[:, -1:]
    env = np.concatenate(out) if out else np.zeros(0, np.float32)
    return np.pad(env, (1 + N_FFT // (2 * hop), 0))[:frames]


AC_SIZE_S, START_BPM, STD_BPM, MAX_TEMPO = 8.0, 120.0, 1.0, 320.0  # librosa.feature.tempo's defaults


def tempo(env: np.ndarray, sr: int, hop: int, chunk: int = CHUNK_FRAMES) -> float:
    """librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop): the tempogram (an 8 s
    autocorrelation window around every frame) averaged over the piece, a chunk of its columns at a
    time (librosa's holds the whole tempogram: 750 lags by every frame, about 200 MB a minute at
    48 kHz), weighted by its log-normal prior around 120 BPM."""
    import librosa

    win = int(librosa.time_to_frames(AC_SIZE_S, sr=sr, hop_length=hop).item())
    n = len(env)
    if n == 0:
        return START_BPM
    padded = np.pad(env, (win // 2, win // 2), mode="linear_ramp", end_values=[0, 0])
    total = np.zeros(win)
    for c0 in range(0, n, chunk):
        c1 = min(c0 + chunk, n)
        tg = librosa.feature.tempogram(onset_envelope=padded[c0:c1 + win - 1], sr=sr, hop_length=hop,
                                       win_length=win, center=False)
        total += tg.sum(axis=-1)
    bpms = librosa.tempo_frequencies(win, hop_length=hop, sr=sr)
    with np.errstate(divide="ignore", invalid="ignore"):
        logprior = -0.5 * ((np.log2(bpms) - np.log2(START_BPM)) / STD_BPM) ** 2
    logprior[:int(np.argmax(bpms < MAX_TEMPO))] = -np.inf
    return float(bpms[int(np.argmax(np.log1p(1e6 * (total / n)) + logprior))])


def mono_of(music: np.ndarray) -> np.ndarray:
    """The mono mix of (C, N) music (1-D music as it is); one channel's own samples, not a copy."""
    if music.ndim == 1:
        return music
    return music[0] if music.shape[0] == 1 else music.mean(0)  # a mean of one value is that value
