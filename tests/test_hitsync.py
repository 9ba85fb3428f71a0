"""Hit sync (issue 16): the strongest onset near each cut and hit point moves onto its frame by a
local, pitch-preserving warp (real Rubber Band); nothing outside a warp's span moves."""

import shutil

import numpy as np
import pytest

from plugin import hitsync

pytestmark = pytest.mark.skipif(shutil.which("rubberband") is None,
                                reason="Rubber Band not installed (apt-get install rubberband-cli)")
SR = 48000


def _music(clicks_s, seconds=6.0):
    """A 440 Hz pad with a percussive hit at each click time (stereo)."""
    t = np.arange(int(seconds * SR)) / SR
    y = 0.1 * np.sin(2 * np.pi * 440 * t)
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


def test_without_rubber_band_the_music_is_left_and_the_reason_given(monkeypatch, tmp_path):
    from plugin.score import sync_hits

    monkeypatch.setattr(hitsync.shutil, "which", lambda name: None)
    music = _music([1.08])
    notices = []
    out, record = sync_hits(music, SR, [1.0], True, notices)
    assert out is music and record is None
    assert len(notices) == 1 and "rubberband-cli" in notices[0]


def test_score_records_the_offsets_and_no_hit_sync_turns_it_off(tmp_path):
    import json

    from plugin.score import ScoreOptions, score_timeline
    from tests.conftest import ROOT
    from tests.test_timeline import SineEngine

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
    from plugin.regenerate import _blend_edges

    rng = np.random.default_rng(1)
    old, new = rng.standard_normal((2, 2, 5000)).astype(np.float32)
    out = _blend_edges(old, new, 400)
    assert np.allclose(out[:, 0], old[:, 0]) and np.allclose(out[:, -1], old[:, -1])
    assert np.array_equal(out[:, 400:-400], new[:, 400:-400])
