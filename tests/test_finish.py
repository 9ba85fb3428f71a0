"""The finishing chain (plugin/finish/__init__.py) is written once: score runs it over the whole score and
regenerate replays it over the span it samples, so a stage added to the chain reaches both."""

import shutil

import numpy as np

from plugin import finish
from plugin.commands.regenerate import regenerate_clip
from plugin.commands.score import ScoreOptions, score_timeline
from plugin.commands.state import load_state
from plugin.finish.render import read_wav
from tests.conftest import ROOT


def test_a_stage_added_to_the_chain_reaches_score_and_regenerate(tmp_path, local_engine, monkeypatch):
    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, tmp_path)
    calls = []

    def silence(chain, music, start):  # a new last stage: the music it finishes is silent
        calls.append((start, music.shape[1], chain.whole))
        return np.zeros_like(music)

    monkeypatch.setattr(finish, "STAGES", [*finish.STAGES, ("silence", silence)])
    out = tmp_path / "scored.otio"
    score_timeline(tmp_path / "demo.otio", out, local_engine, ScoreOptions(model="debug", steps=2, duck_db=None))
    side, state = load_state(out)
    total = sum(read_wav(side / s.wav)[0].shape[1] for s in state.segments)
    assert calls == [(0, total, True)]
    assert all(np.abs(read_wav(side / s.wav)[0]).max() == 0 for s in state.segments)
    # regenerate replays the chain over its span only: the new take is silent where the span was sampled
    r = regenerate_clip(out, "2", local_engine, tmp_path / "r.otio", seed=9)
    (start, n, whole), = calls[1:]
    seg = state.segments[2]
    span = state.sample_rate * np.array(load_state(out)[1].history[-1].span_s)
    frame = state.sample_rate / seg.rate  # the span is sampled on the timeline's frames
    assert not whole and abs(start - span[0]) <= frame and abs(n - (span[1] - span[0])) <= 2 * frame
    take = read_wav(r.wav)[0]
    edge = int(0.03 * state.sample_rate) + 1  # the take's 30 ms blends into the old audio at its edges
    assert take.shape[1] == read_wav(side / seg.wav)[0].shape[1]
    assert np.abs(take[:, edge:-edge]).max() == 0


def test_the_sidecar_reads_back_the_chain_it_recorded(tmp_path, local_engine):
    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, tmp_path)
    out = tmp_path / "scored.otio"
    score_timeline(tmp_path / "demo.otio", out, local_engine, ScoreOptions(model="debug", steps=2, duck_db=None))
    state = load_state(out)[1]
    chain = finish.Finishing.of(state)
    # hit sync's targets are the edit's cuts and its one hit point, typed (HitOffset), in timeline seconds
    assert chain.hit_targets_s == sorted(chain.hit_targets_s) and len(chain.hit_targets_s) == 5
    assert all(isinstance(o, finish.HitOffset) for o in state.hit_sync.offsets)
    assert chain.gain_db == state.gain_db and chain.ending == state.ending and not chain.whole


def test_a_fade_between_two_takes_out_of_phase_holds_its_level():
    """Conform and regenerate fade a new span in from the old music's continuation: two takes of
    related music can be partly out of phase, and a plain fade then cancels (measured: a 6 dB hole in
    a conform seam). The fade holds the level the two signals' own levels give; identical signals
    fade as they are."""
    from plugin.finish.render import blend_edges, crossfade

    sr, n = 48000, 12000
    rng = np.random.default_rng(3)
    t = np.arange(3 * n) / sr
    a = (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 331 * t) + 0.3 * rng.standard_normal(t.size))[None].repeat(2, 0)
    b = -0.6 * a + 0.7 * rng.standard_normal(a.shape)  # correlation about -0.6, as a conform seam measured

    def levels(x: np.ndarray) -> np.ndarray:  # dB per 10 ms frame
        f = x[:, :x.shape[1] // 480 * 480].reshape(2, -1, 480)
        return 10 * np.log10((f ** 2).mean((0, 2)))

    out = blend_edges(a, b, n)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
    plain = a.copy()
    plain[:, :n] = a[:, :n] * (1 - ramp) + b[:, :n] * ramp
    floor = min(levels(a[:, :n]).min(), levels(b[:, :n]).min())
    assert levels(plain[:, :n]).min() < floor - 4  # the hole a plain fade cuts
    assert levels(out[:, :n]).min() > floor - 1.5
    assert np.array_equal(out[:, 0], a[:, 0].astype(np.float32)) and np.array_equal(out[:, -1], a[:, -1].astype(np.float32))
    assert np.allclose(crossfade(a[:, :n], a[:, :n], ramp), a[:, :n])


def test_the_onset_strength_a_chunk_at_a_time_is_librosas():
    """Beats and hit sync read the piece's onset strength, and the beats its tempo, a chunk of frames
    at a time (memory flat in the piece's length): the onset strength is librosa's over the whole
    piece to float32 rounding (the FFT batches differ), the tempo librosa's, the beats the same."""
    import librosa

    from plugin.finish.onsets import onset_strength, tempo

    sr, rng = 48000, np.random.default_rng(5)
    t = np.arange(40 * sr) / sr
    y = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.3 * t))  # a swelling chord
    for k in np.arange(0.3, 40, 60 / 117):  # a kick every beat at 117 BPM, louder on each fourth
        n = int(k * sr)
        y[n:n + 2400] += (0.8 if int(round((k - 0.3) * 117 / 60)) % 4 == 0 else 0.4) * rng.standard_normal(2400) * \
            np.exp(-np.arange(2400) / 400)
    y = y.astype(np.float32)
    for hop in (512, 256):
        ref = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
        got = onset_strength(y, sr, hop, chunk=300)  # a dozen chunks and more
        assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-5 * max(1.0, float(ref.max()))
    mel = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=512, n_mels=64, fmax=8000)
    low = librosa.onset.onset_strength(S=librosa.power_to_db(mel[librosa.mel_frequencies(n_mels=64, fmax=8000) < 200]
                                                               + 1e-10), sr=sr, hop_length=512)
    got = onset_strength(y, sr, 512, n_mels=64, fmax=8000, below_hz=200, offset=1e-10, chunk=300)
    assert np.abs(got - low).max() <= 1e-5 * max(1.0, float(low.max()))
    whole = librosa.onset.onset_strength(y=y, sr=sr, hop_length=512)
    env = onset_strength(y, sr, 512, chunk=300)
    bpm = tempo(env, sr, 512, chunk=300)  # the tempogram's mean a chunk of columns at a time
    assert bpm == float(librosa.feature.tempo(onset_envelope=whole, sr=sr, hop_length=512)[0])
    beats = [librosa.beat.beat_track(onset_envelope=whole, sr=sr, hop_length=512, trim=False)[1],
             librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=512, trim=False, bpm=bpm)[1]]
    assert len(beats[0]) > 60 and np.array_equal(*beats)


def test_the_loudness_a_chunk_at_a_time_is_pyloudnorms():
    """The score's loudness is measured a chunk of samples at a time (the K-weighting filters' state
    carried, each 400 ms block over the same samples): pyloudnorm's number, bit for bit."""
    import pyloudnorm

    from core.signal import integrated_loudness

    sr, rng = 48000, np.random.default_rng(7)
    t = np.arange(23 * sr + 4321) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * 110 * t) * (t > 3), 0.05 * rng.standard_normal(t.size)]).astype(np.float32)
    x[:, 9 * sr:11 * sr] = 0  # a silent stretch the gates drop
    ref = pyloudnorm.Meter(sr).integrated_loudness(x.T.astype(np.float64))
    for chunk in (1 << 20, 30011, 4096):
        assert integrated_loudness(x, sr, pyloudnorm.Meter(sr), chunk=chunk) == ref
