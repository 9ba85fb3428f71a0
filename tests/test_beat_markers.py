"""The music's beats handed back as markers (issue 35), read back from each format's own file with a
plain XML/JSON parser (not our writer's code): the demo timeline scored by the shipped demo model
as FCP7 XML and as Kdenlive projects (a 22.12 document and a 26.08 document 1.1); every marker lies
within one frame of a beat the sidecar records, every beat the timeline plays has its marker
(`--beat-markers all`; by default the downbeats only, and each of those), and the editor's own
markers stay. The `slow` tests open the Kdenlive projects in the real Kdenlive
22.12 and 26.08 under Xvfb, Save As, and read the markers Kdenlive itself kept."""

from __future__ import annotations

import html
import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from core.paths import DEMO_MODEL
from plugin.commands.state import load_state
from plugin.formats.kdenlive import document
from plugin.formats.kdenlive.writer import TRACK_NAME
from plugin.formats.timeline import read_timeline
from tests import kdenlive_app, tools
from tests.conftest import FIXTURES, ROOT
from tests.helpers import kdenlive26_prefix as _kdenlive26
from tests.helpers import kdenlive_project as _project
from tests.helpers import mlt_frames as _frames
from tests.helpers import mlt_rate as _rate
from tests.helpers import props as _props

pytestmark = pytest.mark.skipif(not (DEMO_MODEL / "config.json").exists(), reason="the demo model is not built")
DEMO = ROOT / "resources" / "demo" / "demo.otio"
NAMES = {"cutscore beat": False, "cutscore downbeat": True}
SOURCES = {"kdenlive-22.12": "kdenlive_example_v221170.kdenlive", "kdenlive-26.08": "kdenlive26_example.kdenlive"}


@pytest.fixture(scope="module")
def scores(tmp_path_factory, local_engine):
    """{format: (scored file, its sidecar's beats)}: the demo edit as FCP7 XML, the 22.12 and the 26.08
    example projects as Kdenlive projects, all by the demo model (seed 2)."""
    from plugin.commands.score import ScoreOptions, score_timeline

    out = {}
    folder = tmp_path_factory.mktemp("beats")
    for key, src, suffix in (("otio", DEMO, ".otio"), ("fcp7", DEMO, ".xml"),
                             *((k, _project(folder, name), ".kdenlive") for k, name in SOURCES.items())):
        which = "all" if key in ("otio", "kdenlive-22.12") else "downbeats"  # the default: the bars only
        r = score_timeline(src, folder / f"scored-{key}{suffix}", local_engine,
                           ScoreOptions(model=str(DEMO_MODEL), seed=2, duck_db=None, beat_markers=which))
        out[key] = (r.out, load_state(r.out)[1].beats)
        INPUTS[key] = src
    return out


INPUTS: dict = {}  # the timeline each score of `scores` read


@pytest.mark.parametrize("key", ["otio", "fcp7", "kdenlive-22.12", "kdenlive-26.08"])
def test_a_scored_timeline_reads_back_with_the_editors_hit_points_only(scores, key):
    """cutscore's beat markers (8 or more on the music) are not hit points when the scored file is
    read again: plan, the panel and a second score see the input's own markers, and its media."""
    path, beats = scores[key]
    assert sum(1 for t in beats.times_s if t < read_timeline(path).duration.to_seconds()) >= 8
    text = path.read_text()
    assert text.count("cutscore beat") + text.count("cutscore downbeat") >= 8  # the markers are in the file
    scored, source = read_timeline(path), read_timeline(INPUTS[key])
    assert scored.hits == source.hits and len(source.hits) >= 1
    assert scored.cuts == source.cuts
    assert scored.warnings == [] and [c.media_found for c in scored.clips] == [c.media_found for c in source.clips]
    assert sum(c.media_found for c in scored.clips) >= 2


def fcp7_rate(text: str) -> float:
    """The sequence's frame rate: its timebase, NTSC (x 1000/1001) when it says so."""
    rate = next(ET.fromstring(text).iter("sequence")).find("rate")
    return float(rate.findtext("timebase")) * (1000 / 1001 if rate.findtext("ntsc") == "TRUE" else 1)


def fcp7_beat_markers(text: str) -> list[tuple[float, bool]]:
    """(timeline seconds, downbeat) of cutscore's markers on an FCP7 XML's clipitems: the marker's
    frame is in the clip's media, so the timeline's is start + marker in - clip in."""
    rate = fcp7_rate(text)
    out = []
    for item in ET.fromstring(text).iter("clipitem"):
        for m in item.findall("marker"):
            name = m.findtext("name")
            if name in NAMES:
                frame = int(item.findtext("start")) + int(m.findtext("in")) - int(item.findtext("in"))
                out.append((frame / rate, NAMES[name]))
    return sorted(out)


def kdenlive_beat_markers(text: str) -> list[tuple[float, bool]]:
    """(timeline seconds, downbeat) of the markers in cutscore's categories on the bin clips under
    the music track's entries, each placed where its entry plays it; the categories are read from the
    project's guidesCategories by their names (as Kdenlive shows them)."""
    root = ET.fromstring(text)
    els = {e.get("id"): e for e in root if e.get("id")}
    rate = _rate(root)
    bin_props = _props(els["main_bin"])
    cats = json.loads(html.unescape(bin_props["kdenlive:docproperties.guidesCategories"]))
    kinds = {c["index"]: NAMES[c["comment"]] for c in cats if c["comment"] in NAMES}
    by_id = {}
    for e in els["main_bin"].findall("entry"):
        p = _props(els[e.get("producer")])
        by_id[p.get("kdenlive:id")] = p
    seq = document.select(root, None).tractor
    music = [els[t.get("producer")] for t in seq.findall("track")
             if _props(els[t.get("producer")]).get("kdenlive:track_name") == TRACK_NAME]
    assert len(music) == 1
    out = []
    for t in music[0].findall("track"):
        pos = 0
        for item in els[t.get("producer")]:
            if item.tag == "blank":
                pos += _frames(item.get("length"), rate)
            elif item.tag == "entry":
                a, b = _frames(item.get("in"), rate), _frames(item.get("out"), rate)
                marks = json.loads(by_id[_props(els[item.get("producer")])["kdenlive:id"]].get("kdenlive:markers", "[]"))
                out += [((pos + m["pos"] - a) / rate, kinds[m["type"]]) for m in marks
                        if m["type"] in kinds and a <= m["pos"] <= b]
                pos += b - a + 1
    return sorted(out)


def _check(marks: list[tuple[float, bool]], beats, rate: float, duration_s: float) -> None:
    assert beats is not None and beats.markers != "off" and len(beats.times_s) >= 8, beats
    played = [(t, d) for t, d in zip(beats.times_s, beats.downbeat) if round(t * rate) < round(duration_s * rate)
              and (beats.markers == "all" or d)]
    assert len(marks) == len(played) and any(d for _, d in played)
    assert beats.markers == "all" or len(played) < len(beats.times_s) / 2  # downbeats: one beat in four
    for (t, down), (bt, bdown) in zip(marks, played):
        assert abs(t - bt) <= 0.5 / rate + 1e-9 and down == bdown, (t, bt)


def test_fcp7_markers_are_the_beats_within_a_frame(scores):
    path, beats = scores["fcp7"]
    text = path.read_text()
    _check(fcp7_beat_markers(text), beats, fcp7_rate(text), read_timeline(path).duration.to_seconds())
    # the editor's marker on the demo edit (a hit point) is still on its clip
    assert [m.findtext("name") for m in ET.fromstring(text).iter("marker")].count("hit") == 1


@pytest.mark.parametrize("key", ["kdenlive-22.12", "kdenlive-26.08"])
def test_kdenlive_markers_are_the_beats_within_a_frame(scores, key):
    path, beats = scores[key]
    text = path.read_text()
    root = ET.fromstring(text)
    _check(kdenlive_beat_markers(text), beats, _rate(root), read_timeline(path).duration.to_seconds())
    # cutscore's categories among Kdenlive's first nine (26.08 keeps only those apart), none the
    # editor's markers or guides use; the source's other categories unchanged
    cats = _categories(text)
    ours = {c["index"]: c["comment"] for c in cats if c["comment"] in NAMES}
    assert len(ours) == 2 and all(i < 9 for i in ours)
    source = (FIXTURES / "timelines" / SOURCES[key]).read_text()
    src = {c["index"]: c for c in _categories(source)}
    assert all(c == src[c["index"]] for c in cats if c["index"] not in ours)
    # the editor's own clip markers (26.08's example has one on its sequence clip) are all still there
    assert _clip_markers(text).items() >= _clip_markers(source).items()


def _clip_markers(text: str) -> dict[str, str]:
    """{kdenlive:id: its markers, as JSON text normalised} of every bin clip with markers."""
    out = {}
    for el in ET.fromstring(text):
        p = _props(el)
        if p.get("kdenlive:markers") and p.get("kdenlive:id"):
            out[p["kdenlive:id"]] = json.dumps(json.loads(p["kdenlive:markers"]), sort_keys=True)
    return out


def _categories(text: str) -> list[dict]:
    """The project's marker categories (Kdenlive's nine defaults where it has none written)."""
    from plugin.formats.kdenlive.markers import DEFAULT_CATEGORIES

    root = ET.fromstring(text)
    main_bin = next(e for e in root if e.get("id") == "main_bin")
    cats = _props(main_bin).get("kdenlive:docproperties.guidesCategories")
    return json.loads(html.unescape(cats)) if cats else [dict(c) for c in DEFAULT_CATEGORIES]


def _project_text(categories: list[dict] | None, types: list[int]) -> str:
    """A minimal project text: main_bin with these categories (None: none written) and a bin clip
    whose markers have these types."""
    marks = json.dumps([{"comment": "editor's", "pos": i, "type": t} for i, t in enumerate(types)])
    cats = "" if categories is None else (
        f'<property name="kdenlive:docproperties.guidesCategories">{html.escape(json.dumps(categories), quote=False)}'
        "</property>")
    return (f'<mlt><producer id="p"><property name="kdenlive:markers">{html.escape(marks, quote=False)}</property>'
            f'</producer><playlist id="main_bin">\n{cats}<entry producer="p"/></playlist></mlt>')


def test_cutscore_takes_two_unused_default_categories_else_adds_its_own():
    from plugin.formats.kdenlive.markers import DEFAULT_CATEGORIES, ensure_categories

    defaults = [dict(c) for c in DEFAULT_CATEGORIES]
    text, kinds = ensure_categories(_project_text(None, []))
    assert kinds == {"downbeat": 8, "beat": 7} and len(_categories(text)) == 9
    assert DEFAULT_CATEGORIES[8]["comment"] == "Category 9"  # the module's list is not changed
    # the editor's markers use 8 and 7, and they renamed 6: cutscore takes 5 and 4
    named = [dict(c, comment="Interviews") if c["index"] == 6 else c for c in defaults]
    text, kinds = ensure_categories(_project_text(named, [8, 7, 7]))
    assert kinds == {"downbeat": 5, "beat": 4}
    assert {c["index"]: c["comment"] for c in _categories(text)}[6] == "Interviews"
    # a second run reuses them
    assert ensure_categories(text)[1] == kinds
    # every default in use: cutscore's added after the nine (22.12 keeps them; 26.08 moves such
    # markers to category index mod 9 when it opens the project)
    text, kinds = ensure_categories(_project_text(defaults, list(range(9))))
    assert kinds == {"downbeat": 9, "beat": 10} and len(_categories(text)) == 11


@pytest.mark.slow
@tools.needs("kdenlive", "Xvfb", "xdotool", "dbus-run-session", "ffmpeg")
@pytest.mark.parametrize("version", ["22.12", "26.08"])
def test_real_kdenlive_keeps_the_beat_markers_after_save_as(scores, tmp_path, version):
    path, _ = scores[f"kdenlive-{version}"]
    prefix = _kdenlive26() if version == "26.08" else None  # the forky root's Kdenlive
    shot = tmp_path / "kdenlive.png"
    kept = kdenlive_app.save_as(path, tmp_path / "saved.kdenlive", screenshot=shot, prefix=prefix, timeout=240)
    if (ROOT / "out").is_dir():
        shutil.copy(shot, ROOT / "out" / f"beats-kdenlive-{version}.png")
    assert kdenlive_app.notes(kept).strip() == "", kdenlive_app.notes(kept)
    ours = kdenlive_beat_markers(path.read_text())
    assert len(ours) >= 8 and kdenlive_beat_markers(kept) == ours
