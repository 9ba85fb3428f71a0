"""ui/panel/peaks.py: the music lane's peaks overview, kept beside each take, and the preview the
transport plays, both one take at a time. (The panel's own test, tests/test_panel.py, checks the
overview of a real score against its music.)"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import soundfile as sf

from plugin.finish.ducking import Ducking
from ui.panel.peaks import block_of, music_overview, wav_peaks, write_preview

SR = 8000
BLOCK = block_of(SR)  # 40 samples: 5 ms


def _wav(path, seconds: float, seed: int, channels: int = 2):
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((int(seconds * SR), channels)) * 0.1).astype(np.float32)
    audio[1234] = 0.9  # a spike in one block
    sf.write(str(path), audio, SR, subtype="FLOAT")
    return audio


def _truth(audio: np.ndarray) -> np.ndarray:
    """[max, min] per BLOCK samples, by the definition (the last block padded with its last sample)."""
    stereo = audio if audio.shape[1] == 2 else np.repeat(audio, 2, axis=1)
    n = -(-len(stereo) // BLOCK)
    padded = np.concatenate([stereo, np.repeat(stereo[-1:], n * BLOCK - len(stereo), axis=0)])
    blocks = padded.reshape(n, BLOCK, 2)
    return np.stack([blocks.max(axis=1).T, blocks.min(axis=1).T])


def test_a_takes_peaks_are_its_blocks_max_and_min_and_are_kept_until_the_take_changes(tmp_path):
    wav = tmp_path / "clip000-v1.wav"
    audio = _wav(wav, 20.01, 1)  # not a whole number of blocks, nor of reading runs (4096 blocks)
    peaks = wav_peaks(wav)
    assert BLOCK == 40 and peaks.shape == (2, 2, 4002) and np.allclose(peaks, _truth(audio), atol=1e-3)
    assert abs(float(peaks[0, 0, 1234 // BLOCK]) - 0.9) < 1e-3
    cache = tmp_path / "clip000-v1.peaks.npz"
    assert cache.is_file() and cache.stat().st_size < 2 * 2 * 4002 * 2 + 600  # float16
    # the second open reads the cache: a cache altered by hand (made from this WAV) is what comes back
    with np.load(cache) as kept:
        made_from = kept["made_from"]
    np.savez(cache, peaks=np.zeros_like(peaks), made_from=made_from)
    assert not wav_peaks(wav).any()
    # a truncated cache (a crash while writing) is computed again, and written whole
    cache.write_bytes(cache.read_bytes()[:100])
    assert np.allclose(wav_peaks(wav), _truth(audio), atol=1e-3) and not list(tmp_path.glob("*.part"))
    # a take placed 15 samples into a block: its blocks are the timeline's
    shifted = wav_peaks(wav, 15)
    assert shifted.shape == (2, 2, 4003) and np.allclose(shifted, _truth(np.concatenate([audio[:1]] * 15 + [audio])), atol=1e-3)
    # a take written again is read again, even one restored with an older time than its cache's
    audio = _wav(wav, 2.0, 2, channels=1)
    os.utime(wav, ns=(cache.stat().st_mtime_ns - 10**9,) * 2)
    assert np.allclose(wav_peaks(wav), _truth(audio), atol=1e-3)


def test_the_overview_places_each_take_at_its_segment_and_ducks_as_the_keyframes_do(tmp_path):
    parts = [_wav(tmp_path / f"clip00{i}-v1.wav", d, 10 + i) for i, d in enumerate((2.0, 1.5, 2.5))]
    starts = [0, 50, 87.5]  # frames at 25 fps: 0 s, 2 s, 3.5 s
    segments = [SimpleNamespace(start=a, rate=25.0, duration=len(p) / SR * 25, wav=f"clip00{i}-v1.wav")
                for i, (a, p) in enumerate(zip(starts, parts))]
    music = np.concatenate(parts)  # the takes tile the timeline
    ducking = Ducking.plan([(2.5, 3.2)], 6.0, depth_db=-12, baked=False)
    state = SimpleNamespace(sample_rate=SR, segments=segments, ducking=ducking)
    ov = music_overview(tmp_path, state)
    assert ov.samples == len(music) == 48000 and ov.duration_s == 6.0
    truth = _truth(music)
    gains = 10 ** (ducking.db_at((np.arange(truth.shape[2]) * BLOCK + BLOCK / 2) / SR) / 20)
    assert np.allclose(ov.highs, truth[0] * gains, atol=2e-3) and np.allclose(ov.lows, truth[1] * gains, atol=2e-3)
    # inside the speech the lane is 12 dB down
    inside = slice(int(2.6 * SR) // BLOCK, int(3.1 * SR) // BLOCK)
    assert np.allclose(ov.highs[:, inside], truth[0][:, inside] * 10 ** (-12 / 20), atol=2e-3)
    # what the transport plays: the same music, ducked, 16-bit
    write_preview(tmp_path, state, tmp_path / "preview.wav")
    played, sr = sf.read(str(tmp_path / "preview.wav"), dtype="float32")
    assert sr == SR and played.shape == music.shape
    assert np.abs(played - music * ducking.gains(0, len(music), SR)[:, None]).max() < 2e-4
    assert not list(tmp_path.glob("*.part"))
    # a pixel column draws the max and min of the blocks under it
    px_per_s = 10.0
    starts_px = (np.arange(60) / px_per_s * SR).astype(np.int64)
    highs, lows = ov.columns(starts_px)
    assert highs.shape == lows.shape == (2, 60)
    assert np.allclose(highs[:, 3], ov.highs[:, 3 * 800 // BLOCK:4 * 800 // BLOCK].max(axis=1))
    assert np.allclose(lows[:, 3], ov.lows[:, 3 * 800 // BLOCK:4 * 800 // BLOCK].min(axis=1))
    # zoomed in past a block a pixel every column still draws: the block's values, no comb
    fine = (np.arange(400) / 1000.0 * SR).astype(np.int64)  # 1000 px/s: 5 columns a block
    highs, lows = ov.columns(fine)
    assert highs.shape == (2, 400) and np.array_equal(highs[:, :5], np.repeat(ov.highs[:, :1], 5, axis=1))
    assert ov.columns(np.zeros(0, np.int64))[0].shape == (2, 0)  # no column: nothing to draw
