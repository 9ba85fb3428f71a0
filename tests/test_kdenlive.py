"""Kdenlive keeps the music (issue 12): the scored project's music clips are bin clips Kdenlive's
document checker accepts, re-scoring replaces the track, regenerating adds a bin clip, clip markers
are hit points. The `slow` tests open the projects in the real Kdenlive under Xvfb and parse what
Kdenlive itself saved (tests/kdenlive_app.py drives it)."""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from opentimelineio.opentime import RationalTime

from plugin.commands.regenerate import regenerate_clip
from plugin.commands.score import ScoreOptions, score_timeline
from plugin.finish.render import read_wav
from plugin.formats.kdenlive.media import file_hash
from plugin.formats.kdenlive.writer import FOLDER_NAME, TRACK_NAME
from plugin.formats.timeline import read_timeline
from tests import kdenlive_app, tools
from tests.conftest import FIXTURES, ROOT

TL = FIXTURES / "timelines"




def _project(tmp_path, name):
    shutil.copy(TL / name, tmp_path / name)
    shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", tmp_path)
    return tmp_path / name


def _music(path):
    """[(record start frame, frames, wav name)] of the cutscore track, as our reader sees it."""
    tl = read_timeline(path)
    tracks = [t for t in tl.otio.audio_tracks() if t.name == TRACK_NAME]
    assert len(tracks) == 1, [t.name for t in tl.otio.audio_tracks()]
    out, pos = [], 0
    for item in tracks[0]:
        d = int(round(item.duration().rescaled_to(tl.duration.rate).value))
        if item.schema_name() == "Clip":
            out.append((pos, d, item.media_reference.target_url.rsplit("/", 1)[1]))
        pos += d
    return out


def _bin_check(text):
    """Every music timeline producer names (kdenlive:id) a producer listed in main_bin, inside the
    cutscore bin folder; returns the number of cutscore bin clips."""
    root = ET.fromstring(text)
    els = {e.get("id"): e for e in root if e.get("id")}
    props = lambda e: {p.get("name"): p.text or "" for p in e.findall("property")}  # noqa: E731
    main_bin = els["main_bin"]
    folder = next(k.rsplit(".", 1)[1] for k, v in props(main_bin).items() if k.startswith("kdenlive:folder.") and v == FOLDER_NAME)
    bin_kids = {props(els[e.get("producer")])["kdenlive:id"]: els[e.get("producer")] for e in main_bin.findall("entry")}
    main = [e for e in root if e.tag == "tractor"][-1]
    music = [els[t.get("producer")] for t in main.findall("track")
             if props(els[t.get("producer")]).get("kdenlive:track_name") == TRACK_NAME]
    assert len(music) == 1
    assert all(t.get("hide") == "video" for t in music[0].findall("track"))
    assert props(music[0])["kdenlive:audio_track"] == "1"
    n = 0
    for t in music[0].findall("track"):
        for e in els[t.get("producer")].findall("entry"):
            p = props(els[e.get("producer")])
            b = props(bin_kids[p["kdenlive:id"]])
            assert b["resource"] == p["resource"] and b["kdenlive:folderid"] == folder
            assert b["kdenlive:file_hash"] == file_hash(__import__("pathlib").Path(b["resource"]))
            assert b["kdenlive:clip_type"] == "1" and b["meta.media.0.codec.sample_rate"] == "48000"
            n += 1
    # the mix from track 0 to the music track, as Kdenlive builds for every audio track
    idx = [t.get("producer") for t in main.findall("track")].index(music[0].get("id"))
    assert any(props(tr).get("mlt_service") == "mix" and props(tr).get("b_track") == str(idx)
               for tr in main.findall("transition"))
    return n, sum(1 for b in bin_kids.values() if props(b).get("kdenlive:folderid") == folder)


def test_music_clips_are_bin_clips_and_original_text_is_kept(tmp_path, local_engine):
    src = _project(tmp_path, "mix_markers_25.kdenlive")
    before = src.read_text()
    out = tmp_path / "scored.kdenlive"
    score_timeline(src, out, local_engine, ScoreOptions(model="debug", steps=2))
    assert src.read_text() == before
    text = out.read_text()
    it = iter(text.splitlines())
    assert all(any(line == o for o in it) for line in before.splitlines())  # only insertions
    on_track, in_bin = _bin_check(text)
    assert on_track == in_bin == 3
    assert [m[:2] for m in _music(out)] == [(0, 95), (95, 95), (190, 75)]  # the mix cuts at 90 + mixcut 5


def test_rescoring_replaces_the_music_and_regenerate_adds_a_bin_clip(tmp_path, local_engine):
    src = _project(tmp_path, "mix_markers_25.kdenlive")
    first = tmp_path / "first.kdenlive"
    score_timeline(src, first, local_engine, ScoreOptions(model="debug", steps=2))
    again = tmp_path / "again.kdenlive"
    score_timeline(first, again, local_engine, ScoreOptions(model="debug", steps=2, seed=5))
    text = again.read_text()
    assert text.count(f"<property name=\"kdenlive:track_name\">{TRACK_NAME}</property>") == 1
    assert "first.cutscore" not in text and _bin_check(text) == (3, 3)
    assert len(re.findall(r"<track\b", text)) == len(re.findall(r"<track\b", first.read_text()))
    regen = tmp_path / "regen.kdenlive"
    regenerate_clip(again, "1", local_engine, regen, seed=9)
    rtext = regen.read_text()
    on_track, in_bin = _bin_check(rtext)
    assert (on_track, in_bin) == (3, 4)  # the old take stays in the bin
    before, after = _music(again), _music(regen)
    assert [m[:2] for m in before] == [m[:2] for m in after]
    assert after[1][2] == "clip001-v2.wav" and after[0] == before[0] and after[2] == before[2]
    assert "clip001-v1.wav" in rtext  # in the bin


def test_clip_markers_and_guides_are_hit_points():
    tl = read_timeline(TL / "mix_markers_25.kdenlive")
    # guide at 60; bin-clip markers at source 240 (shown by the clip at record 90 from source 200)
    # and 450 (clip at 190 from 400); the marker at 240 is outside the first clip's use
    assert tl.hits == [RationalTime(60, 25), RationalTime(130, 25), RationalTime(240, 25)]


@tools.needs("melt")
def test_melt_renders_the_bin_clip_music(tmp_path, local_engine):
    src = _project(tmp_path, "mix_markers_25.kdenlive")
    out = tmp_path / "scored.kdenlive"
    score_timeline(src, out, local_engine, ScoreOptions(model="debug", steps=2))
    wav = tmp_path / "melt.wav"
    r = subprocess.run(["melt", str(out), "-consumer", f"avformat:{wav}", "vn=1", "ac=1", "ar=48000",
                        "acodec=pcm_s16le"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-500:]
    melt, _ = read_wav(wav)
    ours = np.concatenate([read_wav(tmp_path / "scored.cutscore" / f"clip00{i}-v1.wav")[0] for i in range(3)], axis=1)
    n = min(melt.shape[1], ours.shape[1])
    assert n >= ours.shape[1] - 2000
    # the test video's own audio is mixed in too: the music must dominate the correlation
    assert np.corrcoef(melt[0, :n], ours[0, :n])[0, 1] > 0.8


# ---- the real Kdenlive ---------------------------------------------------------------------------------

CASES = ["kdenlive_example_v221170.kdenlive", "mix_markers_25.kdenlive", "short_edit.kdenlive", "regenerated",
         "conformed"]


@pytest.mark.slow
@tools.needs("kdenlive", "Xvfb", "xdotool", "dbus-run-session", "ffmpeg")
@pytest.mark.parametrize("case", CASES)
def test_real_kdenlive_keeps_every_music_clip(tmp_path, local_engine, case):
    name = {"regenerated": "mix_markers_25.kdenlive", "conformed": "short_edit.kdenlive"}.get(case, case)
    src = _project(tmp_path, name)
    kdenlive_app.make_media(src)
    scored = tmp_path / "scored.kdenlive"
    score_timeline(src, scored, local_engine, ScoreOptions(model="debug", steps=2))
    if case == "regenerated":
        regenerate_clip(scored, "1", local_engine, tmp_path / "regen.kdenlive", seed=3)
        scored = tmp_path / "regen.kdenlive"
    if case == "conformed":  # the scored project's first clip trimmed 12 frames in the picture, then conformed
        from plugin.commands.conform import conform

        first = '<entry producer="producer1" in="00:00:01.201" out="00:00:04.171">'
        text = scored.read_text(encoding="utf-8")
        assert text.count(first) == 1
        (tmp_path / "edited.kdenlive").write_text(text.replace(first, '<entry producer="producer1" in="36" out="113">'),
                                                  encoding="utf-8")
        r = conform(scored, tmp_path / "edited.kdenlive", tmp_path / "conformed.kdenlive", local_engine)
        assert [c.kind for c in r.changes] == ["trimmed", "moved", "moved"]
        scored = r.out
    expected = _music(scored)
    saved = tmp_path / "saved-by-kdenlive.kdenlive"
    text = kdenlive_app.save_as(scored, saved, screenshot=tmp_path / "kdenlive.png")
    assert kdenlive_app.notes(text).strip() == "", kdenlive_app.notes(text)
    assert "without bin reference" not in text
    got = _music(saved)
    assert got == expected and len(got) >= 3
