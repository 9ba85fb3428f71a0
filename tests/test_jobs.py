"""Continuation (issue 16): every window after the first is sampled with the previous window's
overlap latents held, so the music continues through the join; `--at-cuts change` lets a window
that starts at a cut begin afresh. Real engine, debug model."""

import json
import shutil
from pathlib import Path

import numpy as np

from plugin.commands.score import ScoreOptions, score_timeline
from tests.conftest import ROOT


def _long_demo(tmp_path):
    """The demo edit three times over (60 s): two joins for the debug model's 30 s windows."""
    import opentimelineio as otio

    if not (tmp_path / "testvideo.mp4").exists():
        shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", tmp_path)
    tl = otio.adapters.read_from_file(str(ROOT / "resources" / "demo" / "demo.otio"))
    track = tl.video_tracks()[0]
    for clip in [c.clone() for c in track.find_clips()] * 2:
        track.append(clip.clone())
    otio.adapters.write_to_file(tl, str(tmp_path / "long.otio"))
    return tmp_path / "long.otio"


def _windows(tmp_path, eng, name, **kw):
    src = _long_demo(tmp_path)
    score_timeline(src, tmp_path / f"{name}.otio", eng,
                   ScoreOptions(model="debug", steps=3, hit_sync=False, **kw))
    state = json.loads((tmp_path / f"{name}.cutscore" / "cutscore.json").read_text())
    return state, [np.load(w["latents"]) for w in state["windows"]]


def _held(state, lats, i, fps):
    w, p = state["windows"][i], state["windows"][i - 1]
    a0 = int(round((w["start_s"] - p["start_s"]) * fps))
    n = int(w["overlap_s"] * fps)
    return lats[i][..., :n], lats[i - 1][..., a0:a0 + n]


def test_each_window_continues_the_previous_one_through_the_overlap(tmp_path, local_engine):
    from core.model_config import load_config

    cfg = load_config("debug")
    fps = cfg.sample_rate / cfg.downsampling
    state, lats = _windows(tmp_path, local_engine, "cont")
    assert len(lats) >= 2 and all(w["overlap_s"] > 0 for w in state["windows"][1:])
    for i in range(1, len(lats)):
        mine, theirs = _held(state, lats, i, fps)
        assert mine.shape[-1] > 0 and np.array_equal(mine, theirs), f"window {i} holds the previous overlap"
        assert not np.allclose(lats[i][..., mine.shape[-1]:mine.shape[-1] + 8], 0)  # and samples the rest
    # independent windows (continuation off) do not share the overlap
    ind_state, ind = _windows(tmp_path, local_engine, "ind", continuation=False)
    mine, theirs = _held(ind_state, ind, 1, fps)
    assert not np.allclose(mine, theirs, atol=1e-3)


def test_at_cuts_change_starts_afresh_only_where_a_window_starts_at_a_cut(tmp_path, local_engine):
    from core.model_config import load_config

    cfg = load_config("debug")
    fps = cfg.sample_rate / cfg.downsampling
    state, lats = _windows(tmp_path, local_engine, "chg", at_cuts="change")
    cuts = state["request"]["cuts_s"]
    at_cut = [i for i, w in enumerate(state["windows"]) if i and any(abs(c - w["start_s"]) < 1e-3 for c in cuts)]
    not_at_cut = [i for i in range(1, len(lats)) if i not in at_cut]
    assert at_cut, "the plan puts window starts on cuts"
    for i in at_cut:
        mine, theirs = _held(state, lats, i, fps)
        assert not np.allclose(mine, theirs, atol=1e-3)
    for i in not_at_cut:
        mine, theirs = _held(state, lats, i, fps)
        assert np.array_equal(mine, theirs)


def test_regenerate_samples_only_the_clip_and_its_margins(tmp_path, local_engine):
    """Regenerate by the clip: the engine samples the clip plus REGEN_MARGIN_S either side (not the
    30 s window), so its latents are that short; the other takes keep their bytes."""
    from core.model_config import load_config
    from plugin.commands.regenerate import REGEN_MARGIN_S, regenerate_clip

    cfg = load_config("debug")
    fps = cfg.sample_rate / cfg.downsampling
    state, lats = _windows(tmp_path, local_engine, "rg")
    side = tmp_path / "rg.cutscore"
    before = {p.name: p.read_bytes() for p in side.glob("*.wav")}
    seg = next(s for s in state["segments"] if s["kind"] == "clip" and s["duration"] / s["rate"] < 6)
    r = regenerate_clip(tmp_path / "rg.otio", str(seg["index"]), local_engine, tmp_path / "rg2.otio", seed=5)
    state2 = json.loads((side / "cutscore.json").read_text())
    h = state2["history"][-1]
    clip_s = seg["duration"] / seg["rate"]
    assert h["span_s"][1] - h["span_s"][0] <= clip_s + 2 * REGEN_MARGIN_S + 1e-6
    new_lat = np.load(h["latents"])
    assert new_lat.shape[-1] <= int(np.ceil((clip_s + 2 * REGEN_MARGIN_S) * fps)) + 1 < lats[0].shape[-1]
    after = {p.name: p.read_bytes() for p in side.glob("*.wav")}
    assert set(after) - set(before) == {Path(r.wav).name}
    assert all(after[k] == v for k, v in before.items())
    assert state2["windows"] == state["windows"]  # the score's windows stay for later regenerations
