"""The timeline side (issue 5): real editors' files, cuts, the plan, scoring, writeback,
regeneration, and the real NLE check with MLT's melt."""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime

from core.errors import CutscoreError
from plugin.commands.plan import make_plan
from plugin.commands.regenerate import regenerate_clip
from plugin.commands.score import ScoreOptions, score_timeline
from plugin.finish.render import StitchWindow, read_wav, stitch, to_samples
from plugin.formats.timeline import load_otio, read_timeline
from tests import tools
from tests.conftest import FIXTURES, ROOT, SHARED, media
from tests.helpers import SineEngine
from tests.helpers import otio_cuts as _otio_cuts

TIMELINES = ["simple_cut.otio", "multitrack.otio", "clip_example.otio", "premiere_example.xml",
             "screening_example.edl", "kdenlive_example_v221170.kdenlive"]


def _shared(name):
    """A shared timeline: the copy in tests/fixtures, else ../shared."""
    for p in (FIXTURES / "timelines" / name, SHARED / "timelines" / name):
        if p.exists():
            return p
    pytest.skip(f"{name} not found")


@pytest.mark.parametrize("name", TIMELINES)
def test_every_shared_timeline_plans_and_its_cuts_match_otio(name, capsys):
    from ui.cli import main

    path = _shared(name)
    assert main(["plan", str(path), "--json", "--rate", "24"]) == 0
    plan = json.loads(capsys.readouterr().out)
    for key in ("timeline", "rate", "duration_s", "cuts_s", "clips", "hits_s", "windows"):
        assert key in plan
    for c in plan["clips"]:
        assert {"index", "name", "start_s", "duration_s", "media", "media_found", "source_start_s"} <= set(c)
    for w in plan["windows"]:
        assert set(w) >= {"start_s", "duration_s", "overlap_s"} and w["duration_s"] <= 30.0 + 1e-9
    expected = _otio_cuts(load_otio(path, rate=24))
    assert plan["cuts_s"] == pytest.approx(expected, abs=1e-9)
    assert plan["cuts_s"] == sorted(plan["cuts_s"])
    # windows cover the timeline: each starts where the previous one's fade begins
    ws = plan["windows"]
    assert ws[0]["start_s"] == 0 and ws[-1]["start_s"] + ws[-1]["duration_s"] == pytest.approx(plan["duration_s"])
    for a, b in zip(ws, ws[1:]):
        assert a["start_s"] + a["duration_s"] == pytest.approx(b["start_s"] + b["overlap_s"])


def test_windows_prefer_cuts_and_kdenlive_reads_guides():
    tl = read_timeline(_shared("multitrack.otio"))
    plan = make_plan(tl)
    cut_s = {c.to_seconds() for c in tl.cuts}
    starts = [w.start.to_seconds() for w in plan.windows[1:]]
    assert plan.windows[1].start.to_seconds() == pytest.approx(20.083, abs=1e-3) and starts[0] in cut_s
    assert sum(s in cut_s for s in starts) >= len(starts) / 2, (starts, sorted(cut_s))
    kd = read_timeline(_shared("kdenlive_example_v221170.kdenlive"))
    assert kd.rate == 25 and [h.value for h in kd.hits] == [230, 466]
    assert [c.name for c in kd.clips][:3] == ["Placeholder: Unsupported clip type", "Wide", "Close 1"]


def test_ntsc_time_stays_exact():
    tl = read_timeline(ROOT / "resources" / "demo" / "demo.otio")
    assert tl.duration == RationalTime(600, 30000 / 1001)
    assert to_samples(tl.duration, 48000) == 960_960  # 600 * 1001 / 30000 s * 48000, exactly
    assert [c.value for c in tl.cuts] == [120, 270, 375, 510]


def test_relink_and_missing_media(tmp_path):
    src = ROOT / "resources" / "demo" / "demo.otio"
    moved = tmp_path / "edit.otio"
    shutil.copy(src, moved)
    tl = read_timeline(moved)
    assert not any(c.media_found for c in tl.clips)
    assert len(tl.warnings) == 5 and "leaf" in tl.warnings[0]
    (tmp_path / "footage").mkdir()
    shutil.copy(media("counter.mp4"), tmp_path / "footage" / "testvideo.mp4")
    tl2 = read_timeline(moved, relink=tmp_path)
    assert all(c.media_found for c in tl2.clips) and tl2.warnings == []


@pytest.mark.parametrize("case", ["truncated_json", "not_a_project", "edl_without_rate", "negative_duration"])
def test_malformed_timelines_give_one_line_errors(tmp_path, case, capsys):
    from ui.cli import main

    if case == "truncated_json":
        p = tmp_path / "cut.otio"
        p.write_text(_shared("simple_cut.otio").read_text()[:500])
    elif case == "not_a_project":
        p = tmp_path / "project.kdenlive"
        p.write_text("<?xml version='1.0'?><html><body>hello</body></html>")
    elif case == "edl_without_rate":
        p = tmp_path / "screening.edl"
        shutil.copy(_shared("screening_example.edl"), p)
    else:
        tl = otio.adapters.read_from_file(str(_shared("simple_cut.otio")))
        clip = tl.video_tracks()[0][1]
        clip.source_range = otio.opentime.TimeRange(clip.source_range.start_time, RationalTime(-10, 24))
        p = tmp_path / "negative.otio"
        otio.adapters.write_to_file(tl, str(p))
    assert main(["plan", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cutscore: error: {p}") and "\n" not in err, err
    if case == "edl_without_rate":
        assert "--rate" in err


# ---- scoring with a deterministic in-test engine ------------------------------------------------------

def test_stitch_uses_equal_power_crossfades():
    sr = 1000
    a = StitchWindow(0.0, 3.0, 0.0, np.ones((1, 3000), np.float32))
    b = StitchWindow(2.0, 3.0, 1.0, np.ones((1, 3000), np.float32))
    out = stitch([a, b], 5.0, sr)[0]
    assert np.allclose(out[:2000], 1) and np.allclose(out[3000:], 1)
    ramp = np.linspace(0, np.pi / 2, 1000, endpoint=False)
    assert np.allclose(out[2000:3000], np.cos(ramp) + np.sin(ramp))  # power cos^2 + sin^2 = 1


def test_score_writes_a_new_timeline_and_never_touches_the_input(tmp_path):
    src = _shared("multitrack.otio")
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "scored.otio"
    eng = SineEngine()
    r = score_timeline(src, out, eng, ScoreOptions(loudness=-20, sample_rate=48000))
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    scored = otio.adapters.read_from_file(str(out))
    orig = otio.adapters.read_from_file(str(src))
    music = [t for t in scored.audio_tracks() if t.name == "cutscore music"]
    assert len(music) == 1
    assert music[0].duration() == orig.duration()  # RationalTime, exactly
    kept = [t for t in scored.tracks if t.name != "cutscore music"]
    assert len(kept) == len(orig.tracks) and all(a.is_equivalent_to(b) for a, b in zip(kept, orig.tracks))
    for clip in music[0]:
        url = clip.media_reference.target_url
        assert url.startswith("/") and Path(url).exists() and not url.startswith("file:")
    # the WAVs are 24-bit, sample-exact, and put back together they are the one continuous render
    import soundfile as sf

    total = 0
    for clip in music[0]:
        info = sf.info(clip.media_reference.target_url)
        assert info.subtype == "PCM_24" and info.samplerate == 48000
        assert info.frames == to_samples(clip.source_range.duration, 48000) or abs(
            info.frames - to_samples(clip.source_range.duration, 48000)) <= 1
        total += info.frames
    assert total == to_samples(orig.duration(), 48000)
    assert r.gain_db != 0 and scored.metadata["cutscore"]["model"] == eng.requests[0].model
    # an existing output is not overwritten without --force
    with pytest.raises(CutscoreError, match="already exists"):
        score_timeline(src, out, SineEngine(), ScoreOptions())
    score_timeline(src, out, SineEngine(), ScoreOptions(force=True))


@pytest.mark.parametrize("suffix", [".xml", ".otioz"])
def test_score_writes_fcp7_xml_and_otioz(tmp_path, suffix):
    src = ROOT / "resources" / "demo" / "demo.otio"
    out = tmp_path / f"scored{suffix}"
    score_timeline(src, out, SineEngine(), ScoreOptions())
    back = otio.adapters.read_from_file(str(out))
    assert any(len(t) == 5 for t in back.audio_tracks())


def test_loudness_target_is_met(tmp_path):
    import pyloudnorm

    out = tmp_path / "s.otio"
    r = score_timeline(ROOT / "resources" / "demo" / "demo.otio", out, SineEngine(), ScoreOptions(loudness=-23))
    music = r.music
    lufs = pyloudnorm.Meter(48000).integrated_loudness(music.T.astype(np.float64))
    assert abs(lufs - -23) < 0.5


# ---- the real engine, end to end --------------------------------------------------------------------



def test_regenerate_changes_only_the_selected_clip(tmp_path, local_engine):
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(ROOT / "resources" / "demo" / "demo.otio", work)
    shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", work)
    out = work / "scored.otio"
    score_timeline(work / "demo.otio", out, local_engine, ScoreOptions(model="debug", steps=4, seed=3))
    side = work / "scored.cutscore"
    before = {p.name: p.read_bytes() for p in side.glob("*.wav")}
    r = regenerate_clip(out, "2", local_engine, seed=11)
    after = {p.name: p.read_bytes() for p in side.glob("*.wav")}
    assert set(after) - set(before) == {"clip002-v2.wav"}
    assert all(after[k] == v for k, v in before.items()), "the other clips' WAVs stay byte-identical"
    new_tl = otio.adapters.read_from_file(str(r.out))
    urls = [Path(c.media_reference.target_url).name for c in new_tl.audio_tracks()[-1]]
    assert urls == ["clip000-v1.wav", "clip001-v1.wav", "clip002-v2.wav", "clip003-v1.wav", "clip004-v1.wav"]
    old, _ = read_wav(side / "clip002-v1.wav")
    new, _ = read_wav(side / "clip002-v2.wav")
    assert old.shape == new.shape and not np.allclose(old, new, atol=1e-3)
    # the joins with the neighbours are continuous: no step larger than the music's own
    prev, _ = read_wav(side / "clip001-v1.wav")
    nxt, _ = read_wav(side / "clip003-v1.wav")
    joined = np.concatenate([prev, new, nxt], axis=1)
    steps = np.abs(np.diff(joined, axis=1)).max(axis=0)
    typical = np.percentile(steps, 99.9)
    j1, j2 = prev.shape[1], prev.shape[1] + new.shape[1]
    assert steps[j1 - 1] <= typical and steps[j2 - 1] <= typical
    # by name too, and a regeneration of a regeneration gets the next version
    r2 = regenerate_clip(r.out, "rock", local_engine, seed=12)
    assert Path(r2.wav).name == "clip002-v3.wav"
    with pytest.raises(CutscoreError, match="no clip 'sky'"):
        regenerate_clip(out, "sky", local_engine)


def test_regenerate_works_after_a_round_trip_that_drops_metadata(tmp_path):
    """Resolve keeps only the metadata it knows: cutscore finds its sidecar from the WAV paths."""
    out = tmp_path / "scored.otio"
    score_timeline(ROOT / "resources" / "demo" / "demo.otio", out, SineEngine(), ScoreOptions())
    tl = otio.adapters.read_from_file(str(out))
    tl.metadata.clear()
    for t in tl.tracks:
        t.metadata.clear()
        for c in t:
            c.metadata.clear()
    stripped = tmp_path / "from_resolve.otio"
    otio.adapters.write_to_file(tl, str(stripped))
    from plugin.commands.state import find_sidecar

    assert find_sidecar(tl, stripped) == tmp_path / "scored.cutscore"


@tools.needs("melt")
def test_scored_kdenlive_project_renders_with_melt(tmp_path, local_engine):
    for f in (FIXTURES / "timelines" / "short_edit.kdenlive", ROOT / "resources" / "demo" / "testvideo.mp4"):
        shutil.copy(f, tmp_path)
    src = tmp_path / "short_edit.kdenlive"
    before = src.read_bytes()
    out = tmp_path / "scored.kdenlive"
    score_timeline(src, out, local_engine, ScoreOptions(model="debug", steps=3))
    assert src.read_bytes() == before
    text = out.read_text()
    # every byte of the original is still there, in order: only insertions
    it = iter(text.splitlines())
    assert all(any(line == o for o in it) for line in before.decode().splitlines())
    rendered = tmp_path / "melt.wav"
    r = subprocess.run(["melt", str(out), "-consumer", f"avformat:{rendered}", "vn=1", "ac=2", "ar=48000",
                        "acodec=pcm_s16le"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-500:]
    melt, sr = read_wav(rendered)
    side = tmp_path / "scored.cutscore"
    ours = np.concatenate([read_wav(side / n)[0] for n in ("clip000-v1.wav", "clip001-v1.wav", "gap000-v1.wav",
                                                           "clip002-v1.wav")], axis=1)
    n = min(melt.shape[1], ours.shape[1])
    assert n >= ours.shape[1] - 2000
    corr = np.corrcoef(melt[0, :n], ours[0, :n])[0, 1]
    assert corr > 0.9, corr
    # and the scored project reads back through our adapter with the music track
    back = read_timeline(out)
    assert any(t.name == "cutscore music" for t in back.otio.audio_tracks())


def test_cli_score_and_regenerate(tmp_path, capsys):
    from ui.cli import main

    src = tmp_path / "demo.otio"
    shutil.copy(ROOT / "resources" / "demo" / "demo.otio", src)
    out = tmp_path / "out.otio"
    assert main(["score", str(src), "-o", str(out), "--engine", "local", "--steps", "2", "--relink",
                 str(ROOT / "resources" / "demo")]) == 0
    cap = capsys.readouterr()
    from plugin.commands.score import default_model

    model, notice = default_model()  # the shipped demo model, else debug with a notice
    assert f"wrote {out}" in cap.out and "sampling" in cap.err and f"model {model}" in cap.out
    assert (notice is None) == ("debug" not in cap.err)
    assert main(["score", str(src), "-o", str(out), "--engine", "local"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["regenerate", str(out), "--clip", "0", "--engine", "local", "--seed", "4"]) == 0
    assert "clip000-v2.wav" in capsys.readouterr().out


# Issue 48: real files editors' software wrote -------------------------------------------------------
REAL = FIXTURES / "timelines" / "real"


@pytest.mark.parametrize("name, rate, message", [
    ("aaf_test_muted_clip.aaf", None, "the picture has no clip (every video clip is muted"),
    ("avid_music_audio_only_2997.edl", 29.97, "no picture events (its 588 events are sound only: A10, A7, A8, A9)"),
])
def test_real_files_without_a_picture_are_refused_in_one_line(name, rate, message, capsys):
    from ui.cli import main

    args = ["plan", str(REAL / name)] + (["--rate", str(rate)] if rate else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and name in err


def test_a_kdenlive_sequence_nested_twice_is_one_sequence():
    """Kdenlive 24.01 writes a sequence nested in others again at each use, with the same uuid; its
    bin shows each sequence once (the truth: the distinct uuids of the file's tractors, read here)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(REAL / "kts_sequences.kdenlive").getroot()
    names = {}
    for t in root.iter("tractor"):
        p = {x.get("name"): x.text for x in t.findall("property")}
        if p.get("kdenlive:uuid") and p.get("kdenlive:projectTractor") != "1":
            names[p["kdenlive:uuid"]] = p.get("kdenlive:clipname")
    assert len(names) == 3
    tl = read_timeline(REAL / "kts_sequences.kdenlive")
    assert sorted(tl.otio.metadata["kdenlive"]["sequences"]) == sorted(names.values())
    for name in names.values():  # each one plans, the nested copies' clips found
        assert read_timeline(REAL / "kts_sequences.kdenlive", sequence=name).clips


@pytest.mark.parametrize("name", ["kts_mix-luma.kdenlive", "kts_mix-slide.kdenlive"])
def test_kdenlive_mixes_of_colour_clips_cut_once_where_kdenlive_cuts(name):
    """A same-track mix cuts at its kdenlive:mixcut (frames from the mix's start; read here from the
    file's <transition>s), also between colour clips, which have no media file: no cut at the mix's
    start or end (was: one at each)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(REAL / name).getroot()
    prof = root.find("profile")
    fps = int(prof.get("frame_rate_num")) / int(prof.get("frame_rate_den"))

    def secs(tc: str) -> float:
        h, m, s = tc.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    mixes = []
    for tr in root.iter("transition"):
        p = {x.get("name"): x.text for x in tr.findall("property")}
        if "kdenlive:mixcut" in p:
            mixes.append((secs(tr.get("in")), secs(tr.get("out")), secs(tr.get("in")) + int(p["kdenlive:mixcut"]) / fps))
    assert len(mixes) >= 2
    cuts = [c.to_seconds() for c in read_timeline(REAL / name).cuts]
    for a, b, cut in mixes:
        assert any(abs(c - cut) < 1e-6 for c in cuts), (cut, cuts)
        assert not any(a - 1e-6 <= c <= b + 1e-6 and abs(c - cut) > 1e-6 for c in cuts), (a, b, cuts)


def test_fcpxml_spine_offsets_count_from_the_sequence_start_timecode():
    """DaVinci Resolve's FCPXML 1.9 starts its sequences at 01:00:00:00 (tcStart="3600/1s") and
    counts the spine's offsets from there; the truth is the XML's own: record = offset - tcStart."""
    import xml.etree.ElementTree as ET
    from fractions import Fraction

    path = FIXTURES / "timelines" / "adapters" / "resolve_tcstart.fcpxml"
    seq = next(ET.parse(path).getroot().iter("sequence"))
    tc = Fraction(seq.get("tcStart").removesuffix("s"))
    spine = [(Fraction(c.get("offset").removesuffix("s")) - tc, Fraction(c.get("duration").removesuffix("s")),
              Fraction(c.get("start").removesuffix("s")), c) for c in seq.find("spine")]
    marker = next((a + Fraction(m.get("start").removesuffix("s")) - s) for a, d, s, c in spine for m in c.iter("marker"))
    tl = read_timeline(path)
    assert tl.duration.to_seconds() == pytest.approx(float(sum(d for _, d, _, _ in spine)))
    assert [(c.range.start_time.to_seconds(), c.range.duration.to_seconds()) for c in tl.clips] == \
        [pytest.approx((float(a), float(d))) for a, d, _, _ in spine]
    assert [h.to_seconds() for h in tl.hits] == [pytest.approx(float(marker))]
    assert tl.otio.global_start_time.to_seconds() == 3600


def test_an_avid_nest_is_read_as_its_own_picture():
    """An AAF whose track holds a nested sequence (the adapter keeps it as a Track inside the
    track). The truth, by OTIO's own time transforms and not cutscore's flattening: every clip the
    track holds at any depth, placed on the timeline (transformed_time_range), in order; a cut
    wherever the next clip does not continue the same file's frames."""
    tl_otio = otio.adapters.read_from_file(str(REAL / "aaf_nesting_test.aaf"))
    track = tl_otio.video_tracks()[0]
    placed = sorted(((c.transformed_time_range(c.trimmed_range(), track), c) for c in track.find_clips()),
                    key=lambda p: p[0].start_time.to_seconds())
    truth = [a[0].start_time.to_seconds() for a, b in zip(placed[1:], placed) if not (
        a[1].media_reference.target_url == b[1].media_reference.target_url
        and a[1].trimmed_range().start_time == b[1].trimmed_range().end_time_exclusive())]
    assert len(placed) == 4 and truth == [1.0]  # four pieces, two shots: the nest's edges are through edits
    tl = read_timeline(REAL / "aaf_nesting_test.aaf")
    assert [c.to_seconds() for c in tl.cuts] == truth and len(tl.clips) == 2
    firsts = [placed[0][1]] + [a[1] for a, b in zip(placed[1:], placed) if a[0].start_time.to_seconds() in truth]
    from_file = [(c.trimmed_range().start_time - c.media_reference.available_range.start_time).to_seconds() for c in firsts]
    assert [round(c.file_range.start_time.to_seconds(), 6) for c in tl.clips] == [round(t, 6) for t in from_file]
