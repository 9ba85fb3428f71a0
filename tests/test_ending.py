"""Issue 34, the ending: the music ends with the picture instead of being truncated (no sample above
-60 dBFS in the last frame; no step in level in the last second larger than the music's own), and
starts clean (no click in the first 10 ms). Measured on real music: the shipped demo model's."""

from __future__ import annotations

import numpy as np
import opentimelineio as otio
import pytest

from core.paths import DEMO_MODEL
from plugin.finish.ending import ENDING_FLOOR_DB, Ending, ending_report
from tests.conftest import ROOT

DEMO = ROOT / "resources" / "demo" / "demo.otio"
pytestmark = pytest.mark.skipif(not (DEMO_MODEL / "config.json").exists(), reason="the demo model is not built")


def _ends_on_a_cut(tmp_path):
    """The demo edit with its last clip trimmed to 2 s: the edit ends on a cut 2 s before the end."""
    tl = otio.adapters.read_from_file(str(DEMO))
    last = tl.video_tracks()[0][-1]
    rate = last.source_range.duration.rate
    last.source_range = otio.opentime.TimeRange(last.source_range.start_time, otio.opentime.RationalTime(2 * rate, rate))
    out = tmp_path / "ends_on_a_cut.otio"
    for c in tl.find_clips():
        c.media_reference.target_url = str((DEMO.parent / c.media_reference.target_url).resolve())
    otio.adapters.write_to_file(tl, str(out))
    return out


def _check(report: dict, ending: str) -> None:
    if ending == "cut":
        assert report["last_frame_peak_dbfs"] > ENDING_FLOOR_DB  # what an editor gets by trimming
    else:
        assert report["last_frame_peak_dbfs"] < ENDING_FLOOR_DB, report
        assert report["last_second_max_step_db"] <= report["own_max_step_db"], report


def test_the_music_rings_out_on_the_last_frame_and_starts_clean(tmp_path, local_engine):
    from plugin.commands.regenerate import regenerate_clip
    from plugin.commands.score import ScoreOptions, score_timeline
    from plugin.commands.state import load_state, music_of

    src = _ends_on_a_cut(tmp_path)
    out = tmp_path / "scored.otio"
    r = score_timeline(src, out, local_engine, ScoreOptions(model=str(DEMO_MODEL), seed=3))
    rate = otio.adapters.read_from_file(str(src)).duration().rate
    report = ending_report(r.music, r.sample_rate, 1 / rate)
    _check(report, "ring")
    assert np.abs(r.music[:, 0]).max() == 0.0  # the first sample is silence, then a 10 ms rise
    assert 20 * np.log10(np.abs(r.music[:, : r.sample_rate // 1000]).max() + 1e-10) < -40
    _, state = load_state(out)
    assert state.ending.kind == "ring" and state.ending.start_s == pytest.approx(r.cuts_s[-1])  # the final cut
    # the last clip regenerated keeps the ending
    last = max(s.index for s in state.clips())
    regenerate_clip(out, str(last), local_engine, seed=11)
    audio, sr, _ = music_of(out)
    _check(ending_report(audio, sr, 1 / rate), "ring")


@pytest.mark.parametrize("ending", ["ring", "fade", "cut"])
def test_each_ending_on_the_demo_measures_as_promised(tmp_path, local_engine, ending):
    from plugin.commands.score import ScoreOptions, score_timeline

    r = score_timeline(DEMO, tmp_path / "s.otio", local_engine,
                       ScoreOptions(model=str(DEMO_MODEL), seed=0, ending=ending))
    rate = otio.adapters.read_from_file(str(DEMO)).duration().rate
    _check(ending_report(r.music, r.sample_rate, 1 / rate), ending)


def test_the_envelope_is_the_same_for_any_piece_of_the_timeline():
    e = Ending.plan("ring", 20.0, 1 / 25, [4.0, 17.0])
    assert e.start_s == 17.0
    whole = e.gains(0, 20 * 8000, 8000)
    assert np.array_equal(e.gains(120000, 40000, 8000), whole[120000:])  # what a regenerated span gets
    assert whole[0] == 0 and whole[80] == pytest.approx(1.0) and whole[-int(8000 / 25):].max() == 0.0
    assert Ending.plan("ring", 20.0, 1 / 25, [4.0, 10.0]).start_s == pytest.approx(20.0 - 1 / 25 - 3.0)
    with pytest.raises(ValueError):
        Ending.plan("bounce", 20.0, 1 / 25, [])


def test_a_tail_lets_the_ring_run_past_the_last_frame(tmp_path, local_engine):
    """--tail 3: the music is generated 3 s past the picture's end and rings out there (below the floor
    by the tail's last frame, still sounding at the picture's); it is one more music clip, "tail"."""
    from plugin.commands.score import ScoreOptions, score_timeline
    from plugin.commands.state import load_state

    r = score_timeline(DEMO, tmp_path / "t.otio", local_engine, ScoreOptions(model=str(DEMO_MODEL), seed=0, tail_s=3.0))
    tl = otio.adapters.read_from_file(str(DEMO))
    rate, end = tl.duration().rate, tl.duration().to_seconds()
    assert abs(r.music.shape[1] - (end + 3.0) * r.sample_rate) <= r.sample_rate / rate  # on a frame
    _check(ending_report(r.music, r.sample_rate, 1 / rate), "ring")
    at_end = r.music[:, round((end - 1 / rate) * r.sample_rate):round(end * r.sample_rate)]
    assert 20 * np.log10(np.abs(at_end).max()) > ENDING_FLOOR_DB  # the picture's last frame still rings
    _, state = load_state(r.out)
    assert state.segments[-1].name == "tail" and state.ending.end_s == pytest.approx(end + 3.0, abs=1 / rate)
    scored = otio.adapters.read_from_file(str(r.out))
    assert scored.audio_tracks()[-1].duration().to_seconds() == pytest.approx(end + 3.0, abs=1 / rate)


def test_a_tail_is_refused_for_an_ending_on_the_last_frame(tmp_path, capsys):
    from ui.cli import main

    assert main(["score", str(DEMO), "-o", str(tmp_path / "f.otio"), "--tail", "2", "--ending", "fade"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tail lets a ring run past the last frame" in err[0]
    assert not (tmp_path / "f.otio").exists() and not (tmp_path / "f.cutscore").exists()
    with pytest.raises(SystemExit) as e:
        main(["score", str(DEMO), "-o", str(tmp_path / "g.otio"), "--tail", "31"])
    assert e.value.code == 2 and "31 s is outside 0..30" in capsys.readouterr().err


def test_the_ending_is_applied_a_chunk_at_a_time_bit_for_bit():
    """Ending.apply shapes a long piece a chunk of samples at a time (memory flat in its length):
    the same samples as the whole envelope at once."""
    from plugin.finish.ending import Ending

    e = Ending.plan("ring", 30.0, 1 / 25, [22.0, 27.0])
    x = np.random.default_rng(0).standard_normal((2, 30 * 8000)).astype(np.float32)
    whole = (x * e.gains(0, x.shape[1], 8000)[None, :]).astype(np.float32)
    assert np.array_equal(e.apply(x, 0, 8000, chunk=7777), whole) and np.array_equal(e.apply(x, 0, 8000), whole)
