"""Conform (issue 44): the cut changed after scoring. The change list on hand-made re-edits of the
demo edit (each kind, the truth written down from how each re-edit was made, not from the code), the
kept music sample for sample, generation only where the change list says, none when nothing
changed, a regenerate and a second conform on a conformed timeline, and the one-line refusals."""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime as RT
from opentimelineio.opentime import TimeRange as TR

from core.errors import CutscoreError
from plugin.commands.changes import changes_of, new_uses, old_uses
from plugin.commands.conform import conform
from plugin.commands.regenerate import regenerate_clip
from plugin.commands.score import ScoreOptions, score_timeline
from plugin.commands.state import load_state, music_of
from plugin.formats.timeline import read_timeline
from tests.conftest import ROOT
from tests.helpers import RecordingClient


def _reedit(src, kind: str, out):
    """The demo edit (clips 0 leaf, 1 deer, 2 rock, 3 metal, 4 deer again) changed as an editor would."""
    tl = otio.adapters.read_from_file(str(src))
    v = tl.video_tracks()[0]
    clips = [c for c in v if isinstance(c, otio.schema.Clip)]
    r = clips[0].source_range.duration.rate
    if kind == "trim_tail":  # clip 1's tail 12 frames shorter, the rest rippled
        c = clips[1]
        c.source_range = TR(c.source_range.start_time, c.source_range.duration - RT(12, r))
    elif kind == "trim_head":  # clip 2 starts 12 frames later in its source
        c = clips[2]
        c.source_range = TR(c.source_range.start_time + RT(12, r), c.source_range.duration - RT(12, r))
    elif kind == "delete":
        v.remove(clips[2])
    elif kind == "insert":  # 3 s of footage the edit never used, before clip 2
        n = copy.deepcopy(clips[0])
        n.name = "insert"
        n.source_range = TR(RT(round(40 * r), r), RT(round(3 * r), r))
        v.insert(v.index(clips[2]), n)
    elif kind == "swap":  # clips 1 and 2 change places
        i = v.index(clips[1])
        v.remove(clips[2])
        v.insert(i, clips[2].clone())
    elif kind == "move_end":
        v.remove(clips[1])
        v.append(clips[1].clone())
    elif kind == "slip":  # clip 3 shows source one second later, same place and length
        c = clips[3]
        c.source_range = TR(c.source_range.start_time + RT(round(r), r), c.source_range.duration)
    otio.adapters.write_to_file(tl, str(out))
    return out


# kinds of the new clips, and the old clips no new clip keeps, for each re-edit
TRUTH = {
    "none": (["unchanged"] * 5, []),
    "trim_tail": (["unchanged", "trimmed", "moved", "moved", "moved"], []),
    "trim_head": (["unchanged", "unchanged", "trimmed", "moved", "moved"], []),
    "delete": (["unchanged", "unchanged", "moved", "moved"], [2]),
    "insert": (["unchanged", "unchanged", "new", "moved", "moved", "moved"], []),
    "swap": (["unchanged", "moved", "moved", "unchanged", "unchanged"], []),
    "move_end": (["unchanged", "moved", "moved", "moved", "moved"], []),
    "slip": (["unchanged", "unchanged", "unchanged", "trimmed", "unchanged"], []),
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory, local_engine):
    d = tmp_path_factory.mktemp("conform")
    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, d)
    out = d / "scored.otio"
    score_timeline(d / "demo.otio", out, local_engine, ScoreOptions(model="debug", steps=2, duck_db=None, seed=3))
    return out


@pytest.mark.parametrize("kind", list(TRUTH))
def test_the_change_list_names_every_kind(scored, tmp_path, kind):
    new = _reedit(scored.parent / "demo.otio", kind, scored.parent / f"{kind}.otio")
    state = load_state(scored)[1]
    tl = read_timeline(new)
    changes, deleted = changes_of(old_uses(state.request.clips, tl.duration.rate), new_uses(tl), tl.duration.rate)
    assert ([c.kind for c in changes], deleted) == TRUTH[kind]
    if kind == "swap":
        assert [c.old_clip for c in changes] == [0, 2, 1, 3, 4]


def test_nothing_changed_samples_nothing_and_writes_the_same_music(scored, tmp_path, local_engine):
    eng = RecordingClient(local_engine)
    r = conform(scored, scored.parent / "demo.otio", tmp_path / "same.otio", eng)
    assert eng.requests == [] and r.generated == [] and abs(r.kept_s - 20.02) < 1e-3
    old, new = music_of(scored)[0], music_of(r.out)[0]
    assert old.shape == new.shape and np.array_equal(old, new)


def test_a_trim_keeps_the_music_sample_for_sample_and_samples_only_the_seams(scored, tmp_path, local_engine, capsys):
    new = _reedit(scored.parent / "demo.otio", "trim_tail", tmp_path / "trim.otio")
    eng = RecordingClient(local_engine)
    r = conform(scored, new, tmp_path / "c.otio", eng)
    old, music = music_of(scored)[0], music_of(r.out)[0]
    sr = load_state(r.out)[1].sample_rate
    # the cut between clips 1 and 2 moved 12 frames earlier: a 0.5 s bridge each side of it is made again
    cut = 258 * 1001 / 30000
    assert r.generated == [pytest.approx((cut - 0.5, cut + 0.5))]
    assert [(q.region_start_s, q.region_end_s) for q in eng.requests] == [pytest.approx((cut - 0.5, cut + 0.5))]
    assert all(q.kind == "regenerate" and q.windows == eng.requests[0].windows for q in eng.requests)
    for a, b, o in r.kept:  # copied sample for sample from where it played
        n0, n1, o0 = round(a * sr), round(b * sr), round(o * sr)
        assert np.array_equal(music[:, n0:n1], old[:, o0:o0 + n1 - n0]), (a, b, o)
    assert r.kept_s + r.generated_s == pytest.approx(read_timeline(new).duration.to_seconds())
    # the seam: no click where the made music meets the kept (sample steps like the music's own)
    for edge in (cut - 0.5, cut + 0.5):
        i = round(edge * sr)
        step = np.abs(np.diff(music[:, i - 64:i + 64], axis=1)).max()
        assert step <= 1.5 * np.abs(np.diff(music, axis=1)).max(axis=1).mean() + 1e-6
    # the JSON contract
    from ui.cli import main

    assert main(["conform", str(scored), str(new), "-o", str(tmp_path / "j.otio"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"changes", "deleted", "kept_s", "generated_s"}
    assert [c["kind"] for c in data["changes"]] == TRUTH["trim_tail"][0]
    assert data["changes"][1]["kept"] == [[4.004, pytest.approx(cut - 0.5, abs=1e-6), 4.004]]


def test_a_conformed_timeline_regenerates_and_conforms_again(scored, tmp_path, local_engine):
    new = _reedit(scored.parent / "demo.otio", "delete", tmp_path / "del.otio")
    c1 = conform(scored, new, tmp_path / "c1.otio", local_engine)
    assert [c.kind for c in c1.changes] == TRUTH["delete"][0] and c1.deleted == [2]
    side, state = load_state(c1.out)
    assert state.conform is not None and state.conform.deleted == [2] and len(state.segments) == 4
    r = regenerate_clip(c1.out, "2", local_engine, tmp_path / "c1-r.otio", seed=8)
    assert r.wav.name == "clip002-v2.wav"
    again = conform(tmp_path / "c1-r.otio", new, tmp_path / "c2.otio", local_engine)
    assert again.generated == [] and [c.kind for c in again.changes] == ["unchanged"] * 4
    # the take the editor chose (v2) is the music kept
    assert np.array_equal(music_of(again.out)[0], music_of(tmp_path / "c1-r.otio")[0])


def test_conform_refuses_in_one_line(scored, tmp_path, local_engine):
    with pytest.raises(CutscoreError, match="is an input"):
        conform(scored, scored.parent / "demo.otio", scored, local_engine)
    other = otio.schema.Timeline()
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    track.append(otio.schema.Clip(name="elsewhere", source_range=TR(RT(0, 25), RT(100, 25)),
                                  media_reference=otio.schema.ExternalReference(target_url="other.mp4")))
    other.tracks.append(track)
    otio.adapters.write_to_file(other, str(tmp_path / "other.otio"))
    with pytest.raises(CutscoreError, match="nothing to keep: score it instead"):
        conform(scored, tmp_path / "other.otio", tmp_path / "o.otio", local_engine)
    with pytest.raises(CutscoreError, match="score it first"):
        conform(scored.parent / "demo.otio", scored.parent / "demo.otio", tmp_path / "p.otio", local_engine)
    assert not (tmp_path / "o.otio").exists() and not (tmp_path / "o.cutscore").exists()


def test_the_speech_heard_moves_with_its_sound_and_only_new_sound_is_listened_to():
    from core.api import AudioSpan
    from plugin.commands.changes import heard_before

    # the old edit: a line at 10-11 s of the timeline, in vo.wav's seconds 2-3 (the clip at 8 s from 0)
    old = [AudioSpan(media="/old/place/vo.wav", start_s=8.0, duration_s=5.0),
           AudioSpan(media="/old/place/room.wav", start_s=0.0, duration_s=8.0)]
    # the new edit: vo.wav's seconds 1-5 at 7 s (its seconds 2-3, the line, now play at 8-9 s),
    # room.wav gone, a new clip of take2.wav at 12-14 s
    new = [AudioSpan(media="/moved/vo.wav", start_s=7.0, duration_s=4.0, source_start_s=1.0),
           AudioSpan(media="/moved/take2.wav", start_s=12.0, duration_s=2.0, source_start_s=3.0)]
    moved, unheard = heard_before(old, [(10.0, 11.0), (1.0, 2.0)], new)
    assert moved == [pytest.approx((8.0, 9.0))]  # room.wav's speech went with it
    assert [(Path(s.media).name, s.start_s, s.duration_s, s.source_start_s) for s in unheard] == [("take2.wav", 12.0, 2.0, 3.0)]
    # vo.wav extended past what was heard (its seconds 5-7): only those seconds are listened to
    longer = [AudioSpan(media="/moved/vo.wav", start_s=7.0, duration_s=6.0, source_start_s=1.0)]
    assert [(s.start_s, s.duration_s, s.source_start_s) for s in heard_before(old, [], longer)[1]] == [
        pytest.approx((11.0, 2.0, 5.0))]


@pytest.mark.slow  # a score of its own; the default run stays under 15 minutes on 2 cores
def test_a_kdenlive_project_whose_picture_moved_after_scoring(tmp_path, local_engine):
    """The scored project itself, its first clip's tail trimmed by 12 frames in the picture track
    (the clips after it ripple) while the "cutscore music" track stayed where it was: the conform
    is written in the project's own dialect, with one music track tiling the new picture."""
    import re
    import xml.etree.ElementTree as ET

    from plugin.names import TRACK_NAME

    src = tmp_path / "short_edit.kdenlive"
    shutil.copy(ROOT / "tests" / "fixtures" / "timelines" / "short_edit.kdenlive", src)
    shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", tmp_path)
    scored = tmp_path / "scored.kdenlive"
    score_timeline(src, scored, local_engine, ScoreOptions(model="debug", steps=2, duck_db=None))
    text = scored.read_text()
    first = '<entry producer="producer1" in="00:00:01.201" out="00:00:04.171">'
    assert text.count(first) == 1
    edited = tmp_path / "edited.kdenlive"
    edited.write_text(text.replace(first, '<entry producer="producer1" in="36" out="113">'))
    out = tmp_path / "conformed.kdenlive"
    r = conform(scored, edited, out, local_engine)
    assert [c.kind for c in r.changes] == ["trimmed", "moved", "moved"] and r.deleted == []
    assert len(r.generated) == 1 and r.generated[0][1] - r.generated[0][0] == pytest.approx(1.0)
    conformed = out.read_text()
    root = ET.fromstring(conformed)
    names = [p.text for p in root.iter("property") if p.get("name") == "kdenlive:track_name"]
    assert names.count(TRACK_NAME) == 1
    assert len(re.findall(r'in="36" out="113"', conformed)) == 1  # the editor's trim, as they made it
    # the music clips tile the new picture: their WAVs are the conform's, their lengths the new segments'
    tl = read_timeline(out)
    state = load_state(out)[1]
    assert sum(s.duration for s in state.segments) / state.segments[0].rate == pytest.approx(tl.duration.to_seconds())
    assert all(s.wav.endswith("-v1.wav") for s in state.segments)
    assert "conformed.cutscore" in conformed and "scored.cutscore/clip" not in conformed
    old, music = music_of(scored)[0], music_of(out)[0]
    sr = state.sample_rate
    for a, b, o in r.kept:
        n0, n1, o0 = round(a * sr), round(b * sr), round(o * sr)
        assert np.array_equal(music[:, n0:n1], old[:, o0:o0 + n1 - n0])
    assert scored.read_text() == text  # the scored project is never written


def test_the_drawn_rhythm_moves_with_its_picture():
    from plugin.commands.conform import moved_rhythm

    old = [None, None, 2.0, 2.0, None, -1.0, None]
    # old seconds 0-3 stay, old 4-7 now play from 3 on (a second cut out)
    assert moved_rhythm(old, [(0.0, 3.0, 0.0), (3.0, 6.0, 4.0)], 6.0) == [None, None, 2.0, None, -1.0, None]
    assert moved_rhythm([None, None], [(0.0, 2.0, 0.0)], 2.0) == []


@pytest.mark.slow  # a score of its own; the default run stays under 15 minutes on 2 cores
def test_a_ring_past_the_last_frame_is_kept(tmp_path, local_engine):
    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, tmp_path)
    scored = tmp_path / "tail.otio"
    score_timeline(tmp_path / "demo.otio", scored, local_engine,
                   ScoreOptions(model="debug", steps=2, duck_db=None, tail_s=2.0))
    same = conform(scored, tmp_path / "demo.otio", tmp_path / "same.otio", local_engine)
    assert same.generated == [] and np.array_equal(music_of(same.out)[0], music_of(scored)[0])
    segs = load_state(same.out)[1].segments
    assert segs[-1].name == "tail" and segs[-1].duration / segs[-1].rate == pytest.approx(2.0, abs=0.04)
    trimmed = conform(scored, _reedit(tmp_path / "demo.otio", "trim_tail", tmp_path / "t.otio"), tmp_path / "t2.otio",
                      local_engine)
    st = load_state(trimmed.out)[1]
    assert st.segments[-1].name == "tail" and st.ending.end_s == pytest.approx(read_timeline(tmp_path / "t.otio")
                                                                            .duration.to_seconds() + 2.0, abs=0.04)


def test_music_read_by_range_is_the_music_where_it_plays(scored):
    """plugin/commands/state.py MusicReader.between (a regenerate's beats, heard around its clip only;
    --vary's window): the same samples as the segments' WAVs laid end to end, from where it says it
    starts, clamped to the score."""
    from plugin.commands.state import MusicReader
    from plugin.finish.render import read_wav

    side, state = load_state(scored)
    sr = state.sample_rate
    whole = np.concatenate([read_wav(side / s.wav)[0] for s in state.segments], axis=1)
    reader = MusicReader(side, state)
    for a, b in ((5.0, 9.0), (-3.0, 2.5), (18.0, 40.0), (1.3, 4.7)):
        part, t0 = reader.between(a, b)
        i0 = round(t0 * sr)
        assert abs(t0 - max(a, 0.0)) < 1 / sr
        assert np.array_equal(part, whole[:, i0:i0 + part.shape[1]])
        assert abs(part.shape[1] - (min(b, whole.shape[1] / sr) - max(a, 0.0)) * sr) <= 1
