"""The music lane's waveform as editors' applications draw a long one: from a peaks overview (the
max and min of each channel over every 5 ms) computed once per take WAV, a run of blocks at a time,
and kept beside it (`clip003-v2.peaks.npz`), so opening a scored timeline reads about 6 MB per hour
of music instead of the music (1.4 GB an hour at 48 kHz stereo float). The preview the transport
plays is written the same way, one take at a time.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

PER_S = 200  # overview values per second: 5 ms, finer than a pixel at the panel's zooms
_RUN_BLOCKS = 4096  # blocks read at a time while computing (8 MB of 48 kHz stereo float32)


def block_of(sr: int) -> int:
    """Samples per overview value at a sample rate (240 at 48 kHz, 40 at the demo model's 8 kHz)."""
    return max(1, sr // PER_S)


def _cache(wav: Path) -> Path:
    return wav.with_suffix(".peaks.npz")


def _stereo(run: np.ndarray) -> np.ndarray:
    return run[:, :2] if run.shape[1] > 1 else np.repeat(run, 2, axis=1)


def wav_peaks(wav: Path, phase: int = 0) -> np.ndarray:
    """(2, 2, blocks) float16: [max, min] of [left, right] (a mono WAV twice) over each block_of(its
    rate) samples of the timeline, the WAV starting `phase` samples into its first block (where its
    segment starts between two blocks). Read from the cache beside the WAV when it was made from this
    WAV (its size and modification time) at this phase, else computed a run of blocks at a time and
    written there (a cache that cannot be read or written only costs the reading again)."""
    info = sf.info(str(wav))
    block = block_of(info.samplerate)
    n = -(-(info.frames + phase) // block)
    stat = wav.stat()
    made_from = np.array([stat.st_size, stat.st_mtime_ns, phase], np.int64)
    cache = _cache(wav)
    try:
        with np.load(cache) as kept:
            if np.array_equal(kept["made_from"], made_from) and kept["peaks"].shape == (2, 2, n):
                return kept["peaks"]
    except Exception:  # noqa: BLE001 - absent, truncated or of another version: computed again
        pass
    peaks = np.zeros((2, 2, n), np.float16)
    at, carry = 0, np.zeros((0, 2), np.float32)

    def emit(samples: np.ndarray) -> None:
        nonlocal at
        blocks = np.ascontiguousarray(samples.T).reshape(2, -1, block)  # reduced along memory: 17x faster
        peaks[0, :, at:at + blocks.shape[1]] = blocks.max(axis=2)
        peaks[1, :, at:at + blocks.shape[1]] = blocks.min(axis=2)
        at += blocks.shape[1]

    for run in sf.blocks(str(wav), blocksize=block * _RUN_BLOCKS, dtype="float32", always_2d=True):
        run = _stereo(run)
        if at == 0 and not len(carry):  # the first block's samples before the WAV: its own first sample's
            run = np.concatenate([np.repeat(run[:1], phase, axis=0), run])
        run = np.concatenate([carry, run]) if len(carry) else run
        whole = len(run) // block * block
        emit(run[:whole])
        carry = run[whole:]
    if len(carry):  # the last block's samples past the WAV: its last sample's
        emit(np.concatenate([carry, np.repeat(carry[-1:], block - len(carry), axis=0)]))
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}-{threading.get_ident()}.part")  # two readers, two files
    try:
        with open(tmp, "wb") as f:
            np.savez(f, peaks=peaks, made_from=made_from)
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)
    return peaks


@dataclass
class Overview:
    """The whole score's peaks, per `block` samples from the timeline's start, as the panel plays it
    (ducked where the format's keyframes duck it)."""

    rate: int
    block: int
    highs: np.ndarray  # (2, blocks) float32: each channel's max
    lows: np.ndarray  # (2, blocks): each channel's min
    samples: int  # the music's length

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate

    @property
    def peak(self) -> float:
        return max(float(self.highs.max(initial=0.0)), -float(self.lows.min(initial=0.0)), 1e-6)

    def columns(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Max and min under each pixel column (2, columns), in one pass over the blocks: `starts` is
        each column's first sample (ascending). Zoomed in past a block a pixel, the columns within one
        block share its values (a filled waveform, not one line per block)."""
        n = self.highs.shape[1]
        if n == 0 or len(starts) == 0:
            return np.zeros((2, len(starts)), np.float32), np.zeros((2, len(starts)), np.float32)
        blocks = np.minimum(starts // self.block, n - 1).astype(np.int64)
        first = np.r_[True, np.diff(blocks) > 0]  # the columns that begin a new run of blocks
        run = np.cumsum(first) - 1  # each column's run
        highs = np.maximum.reduceat(self.highs, blocks[first], axis=1)
        lows = np.minimum.reduceat(self.lows, blocks[first], axis=1)
        return highs[:, run], lows[:, run]


def music_overview(side: Path, state) -> Overview:
    """The overview of a scored timeline's current takes (state: the sidecar), each placed at its
    segment's start (to the block: within 5 ms); the ducking applied per block where the WAVs are at
    full level."""
    sr = state.sample_rate
    block = block_of(sr)
    placed = []
    for s in state.segments:
        start = round(s.start / s.rate * sr)
        placed.append((start, wav_peaks(side / s.wav, start % block), sf.info(str(side / s.wav)).frames))
    samples = max((a + frames for a, _, frames in placed), default=0)
    n = -(-samples // block)
    highs, lows = np.full((2, n), -np.inf, np.float32), np.full((2, n), np.inf, np.float32)
    for start, peaks, _ in placed:  # where two takes share a block, it shows both
        a = start // block
        b = min(n, a + peaks.shape[2])
        np.maximum(highs[:, a:b], peaks[0, :, :b - a], out=highs[:, a:b])
        np.minimum(lows[:, a:b], peaks[1, :, :b - a], out=lows[:, a:b])
    highs[np.isinf(highs)], lows[np.isinf(lows)] = 0.0, 0.0  # no take there: silence
    d = state.ducking
    if d is not None and not d.baked:  # the format's keyframes duck it when played
        gains = 10 ** (d.db_at((np.arange(n) * block + block / 2) / sr) / 20)
        highs *= gains
        lows *= gains
    return Overview(sr, block, highs, lows, samples)


def write_preview(side: Path, state, out: Path, chunk: int = 1 << 20) -> None:
    """The whole music as the timeline plays it (ducked where the keyframes duck it), 16-bit, a chunk
    at a time (plugin/commands/state.py MusicReader); written beside and renamed into place."""
    from plugin.commands.state import MusicReader

    music, sr, d = MusicReader(side, state), state.sample_rate, state.ducking
    tmp = out.with_name(out.name + ".part")
    with sf.SoundFile(str(tmp), "w", sr, music.channels, subtype="PCM_16", format="WAV") as f:
        for a in range(0, music.samples, chunk):
            part = music.read(a, min(a + chunk, music.samples))
            if d is not None and not d.baked:
                d.apply(part, a, sr, out=part)
            f.write(part.T)
    os.replace(tmp, out)
