"""Hit sync (issue 16): the strongest onset near each cut and hit point moves onto its frame by a
local slip edit that keeps the pitch and cuts no notch; nothing outside its span moves."""

import shutil

import numpy as np

from plugin.finish import hitsync

SR = 48000


def _music(clicks_s, seconds=6.0, pad=None):
    """A 440 Hz pad (or `pad`) with a percussive hit at each click time (stereo)."""
    t = np.arange(int(seconds * SR)) / SR
    y = 0.1 * np.sin(2 * np.pi * 440 * t) if pad is None else pad(t)
    rng = np.random.default_rng(0)
    for c in clicks_s:
        i = int(c * SR)
        n = int(0.08 * SR)
        y[i:i + n] += 0.8 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.01 * SR))
    return np.stack([y, y]).astype(np.float32)


def test_onsets_move_onto_their_targets_and_nothing_else_moves():
    targets = [1.0, 2.5, 4.0]
    music = _music([1.08, 2.38])  # +80 ms, -120 ms; no hit near 4.0
    floor = hitsync.onset_floor(music.mean(0), SR)
    before = [hitsync.strongest_onset(music.mean(0), SR, t, floor) for t in targets]
    assert abs(before[0] - 1.08) < 0.012 and abs(before[1] - 2.38) < 0.012 and before[2] is None
    out, report = hitsync.sync_hits(music, SR, targets)
    assert [r.warped for r in report] == [True, True, False]
    for r in report[:2]:
        assert abs(r.after_ms) <= 10, report
        assert abs(hitsync.strongest_onset(out.mean(0), SR, r.target_s, floor) - r.target_s) <= 0.010
    assert report[2].before_ms is None and report[2].after_ms is None
    # spans: at most 0.6 s around each target, never past the midpoint to a neighbour
    spans = [(0.4, 1.6), (1.9, 3.1)]
    keep = np.ones(out.shape[1], bool)
    for a, b in spans:
        keep[int(round(a * SR)):int(round(b * SR))] = False
    assert np.array_equal(out[:, keep], music[:, keep]), "samples outside the warps are bit-identical"
    assert out.shape == music.shape
    # pitch unchanged inside a warped span: the pad is still at 440 Hz
    seg = out[0, int(1.2 * SR):int(1.55 * SR)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    assert abs(np.fft.rfftfreq(len(seg), 1 / SR)[spec.argmax()] - 440) < 4
    s = hitsync.summary(report)
    assert s["after"]["median_ms"] <= 10 < s["before"]["median_ms"]


def _harmonic_pad(t):
    """Fifteen partials of 196 Hz over a noise floor 30 dB down: steady music, so any dip is the edit's."""
    y = sum(0.05 / k * np.sin(2 * np.pi * 196 * k * t + k) for k in range(1, 16))
    return y + 0.01 * np.random.default_rng(1).standard_normal(len(t))


def _worst_dip_db(out, ref, t0, t1, away_from):
    """The deepest drop, over the frames in [t0, t1] not within 100 ms of `away_from`, of a third-octave
    band's energy (300 Hz - 4.8 kHz) under that band's median level in `ref` (steady, without hits)."""
    import librosa

    spec = np.abs(librosa.stft(out[0], n_fft=2048, hop_length=256)) ** 2
    base = np.abs(librosa.stft(ref[0], n_fft=2048, hop_length=256)) ** 2
    f = librosa.fft_frequencies(sr=SR, n_fft=2048)
    t = librosa.frames_to_time(np.arange(spec.shape[1]), sr=SR, hop_length=256)
    sel = (t > t0) & (t < t1) & np.all([np.abs(t - x) > 0.1 for x in away_from], axis=0)
    edges = 300 * 2 ** (np.arange(0, 4.01, 1 / 3))
    worst = 0.0
    for lo, hi in zip(edges, edges[1:]):
        band = (f >= lo) & (f < hi)
        level = 10 * np.log10(spec[band][:, sel].sum(0))
        worst = min(worst, float((level - np.median(10 * np.log10(base[band][:, sel].sum(0)))).min()))
    return worst


def test_a_slipped_hit_cuts_no_notch_into_steady_music():
    """Rubber Band warps, blended back into the untouched audio at their edges, were out of phase with
    it there and cut notches 37-44 dB deep into this music (the `make demo` spectrogram showed them
    next to every cut); the slip's splices join the music in phase."""
    targets, clicks = [1.0, 2.5], [1.08, 2.38]
    music, steady = _music(clicks, 4.0, _harmonic_pad), _music([], 4.0, _harmonic_pad)
    out, report = hitsync.sync_hits(music, SR, targets)
    assert all(r.warped and abs(r.after_ms) <= 10 for r in report), report
    unedited = _worst_dip_db(music, steady, 0.4, 3.1, targets + clicks)
    assert _worst_dip_db(out, steady, 0.4, 3.1, targets + clicks) > min(unedited, 0.0) - 3.0


def test_a_late_hit_is_moved_by_repeating_sound_from_before_its_span():
    """A hit 200 ms late for a target 50 ms into its span (a neighbouring target 100 ms before, with no
    hit of its own): the sound repeated before the hit comes from before the span, and still nothing
    outside the span [1.95 s, 2.6 s] is written."""
    music = _music([2.2], 4.0, _harmonic_pad)
    out, report = hitsync.sync_hits(music, SR, [1.9, 2.0])
    assert report[0].before_ms is None and not report[0].warped
    assert report[1].warped and abs(report[1].after_ms) <= 10, report
    keep = np.ones(out.shape[1], bool)
    keep[int(round(1.95 * SR)):int(round(2.6 * SR))] = False
    assert np.array_equal(out[:, keep], music[:, keep])


def test_score_records_the_offsets_and_no_hit_sync_turns_it_off(tmp_path):
    import json

    from plugin.commands.score import ScoreOptions, score_timeline
    from tests.conftest import ROOT
    from tests.helpers import SineEngine

    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, tmp_path / f)
    score_timeline(tmp_path / "demo.otio", tmp_path / "on.otio", SineEngine(), ScoreOptions())
    score_timeline(tmp_path / "demo.otio", tmp_path / "off.otio", SineEngine(), ScoreOptions(hit_sync=False))
    on = json.loads((tmp_path / "on.cutscore" / "cutscore.json").read_text())["hit_sync"]
    off = json.loads((tmp_path / "off.cutscore" / "cutscore.json").read_text())["hit_sync"]
    assert off is None and on["targets"] == 5 and len(on["offsets"]) == 5
    assert {"target_s", "before_ms", "after_ms", "warped"} <= set(on["offsets"][0])


def test_a_regenerated_take_starts_and_ends_exactly_on_the_old_audio():
    """Its neighbours keep their bytes, so the new take must meet them sample-exactly at both edges
    (the end blend once ran the wrong way and ended on the new audio)."""
    from plugin.finish.render import blend_edges

    rng = np.random.default_rng(1)
    old, new = rng.standard_normal((2, 2, 5000)).astype(np.float32)
    out = blend_edges(old, new, 400)
    assert np.allclose(out[:, 0], old[:, 0]) and np.allclose(out[:, -1], old[:, -1])
    assert np.array_equal(out[:, 400:-400], new[:, 400:-400])
