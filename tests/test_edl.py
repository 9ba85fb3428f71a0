"""CMX 3600 EDLs as editors' software writes them (plugin/formats/edl.py: a pre-pass, then
otio-cmx3600-adapter). The truth of each list is the format's own meaning, computed here without
cutscore's reading code: an EDL is assembled in list order, each event recorded over the master at
its record times (a later event replaces what it covers), so the picture changes wherever the event
playing a frame changes."""

from __future__ import annotations

import re
from pathlib import Path

import opentimelineio as otio
import pytest

from core.errors import CutscoreError
from plugin.formats.edl import normalized
from plugin.formats.timeline import read_timeline
from tests.conftest import FIXTURES

REAL = FIXTURES / "timelines" / "real"
CMX = FIXTURES / "timelines" / "cmx3600"
NTSC = 30000 / 1001


def _assembled_cuts(text: str, fps: int = 30) -> tuple[list[int], int]:
    """The frames (from the first record frame) where the picture changes, and the length, by
    painting each picture event's record range in list order. Record timecode is non-drop here
    (every list below says so before its first event): 30 frames a timecode second at 29.97."""
    events = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\d{3})\s+\S+\s+V\s+\S+(?:\s+\d+)?\s+\S+\s+\S+\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            h, mi, s, f = (int(x) for x in re.split("[:;]", m[2]))
            a = ((h * 60 + mi) * 60 + s) * fps + f
            h, mi, s, f = (int(x) for x in re.split("[:;]", m[3]))
            events.append((a, ((h * 60 + mi) * 60 + s) * fps + f))
    t0 = min(a for a, _ in events)
    paint = [-1] * (max(b for _, b in events) - t0)
    for k, (a, b) in enumerate(events):
        paint[a - t0:b - t0] = [k] * max(0, b - a)
    return [i for i in range(1, len(paint)) if paint[i] != paint[i - 1]], len(paint)


def test_avids_heists_rough_cut_plans_the_picture_the_list_assembles():
    """537 events as Avid wrote them: a byte-order mark, FCM lines between events, dissolves
    without a type letter, lengths that differ without M2, V2 flattened into overlapping records.
    The adapter alone refused it ("Unknown event type")."""
    path = REAL / "avid_heists_roughcut_2997.edl"
    cuts, length = _assembled_cuts(path.read_text(encoding="utf-8-sig"))
    tl = read_timeline(path, rate=29.97)
    assert tl.duration.value == length == 21308  # 01:00:00:00 to 01:11:50:08, non-drop
    assert [round(c.value) for c in tl.cuts] == cuts and len(cuts) == 516


LIST = """\ufeffTITLE:   RULES
FCM: NON-DROP FRAME
001  AAA      V     C        00:00:10:00 00:00:12:00 01:00:00:00 01:00:02:00
* FROM CLIP NAME:  shot A
FCM: DROP FRAME
002  AAA      V     C        00:00:12:00 00:00:12:00 01:00:02:00 01:00:02:00
002  BBB      V      015 00:01:00;00 00:01:02:00 01:00:02:00 01:00:04:00
* FROM CLIP NAME:  shot A
* TO CLIP NAME:  shot B
FCM: NON-DROP FRAME
003  CCC      V     C        00:00:20:00 00:00:23:10 01:00:04:00 01:00:07:00
* FROM CLIP NAME:  shot C
004  DDD      V     C        00:00:30:00 00:00:31:00 01:00:05:00 01:00:06:00
* FROM CLIP NAME:  title over C
005  EEE      V     C        00:00:40:00 00:00:42:00 01:00:06:15 01:00:08:15
* FROM CLIP NAME:  shot E
"""


def test_each_rule_of_the_pre_pass(tmp_path):
    """A list written by hand with one case of each rule; the truth written down from the rules."""
    p = tmp_path / "rules.edl"
    p.write_text(LIST, encoding="utf-8")
    tl = otio.adapters.read_from_string(normalized(p.read_text(encoding="utf-8-sig"), NTSC), "cmx_3600", rate=NTSC)
    items = [(type(i).__name__, i.name, i.range_in_parent().start_time.value if not isinstance(i, otio.schema.Transition)
              else None, i.duration().value) for i in tl.video_tracks()[0]]
    assert [i[:2] for i in items] == [("Clip", "shot A"), ("Transition", "SMPTE_Dissolve from shot A to shot B"), ("Clip", "shot B"),
                                      ("Clip", "shot C"), ("Clip", "title over C"), ("Clip", "shot C"),
                                      ("Clip", "shot E")]
    # the record frames: B's dissolve (no type letter) of 15 frames at 2 s; C 4-5 s, the title 5-6 s,
    # C again 6-6.5 s (from where its source got to), E from 6.5 s (over C's tail) to 8.5 s
    starts = [(n, s, d) for kind, n, s, d in items if kind == "Clip"]
    assert starts == [("shot A", 0, 60), ("shot B", 60, 60), ("shot C", 120, 30), ("title over C", 150, 30),
                      ("shot C", 180, 15), ("shot E", 195, 60)]
    assert items[1][3] == 15
    clips = [c for c in tl.video_tracks()[0] if isinstance(c, otio.schema.Clip)]
    # B's source is drop-frame (the FCM line before it): 00:01:00;00 is frame 1798 of 29.97
    assert clips[1].source_range.start_time.value == 1798
    # C's source (3 s 10 frames) is longer than its record (3 s) and no M2 says why: the record wins;
    # its second run resumes 2 s into it
    assert clips[2].source_range.start_time.value == 600 and clips[4].source_range.start_time.value == 660
    cuts, _ = _assembled_cuts(LIST)
    assert [round(c.value) for c in read_timeline(p, rate=29.97).cuts] == cuts == [60, 120, 150, 180, 195]


@pytest.mark.parametrize("name", sorted(p.name for p in CMX.glob("*.edl")))
def test_clean_lists_are_read_as_the_adapter_reads_them(name):
    """The adapter's own sample lists (dissolves, wipes, speed effects, gaps, 25 fps, audio channels):
    the pre-pass changes nothing the adapter reads from them."""
    rate = 25 if name.startswith("25") else 24
    text = (CMX / name).read_text(encoding="utf-8")

    def items(tl):
        return [(t.kind, type(i).__name__, i.name, str(getattr(i, "source_range", None)),
                 [m.name for m in getattr(i, "markers", [])], [type(e).__name__ for e in getattr(i, "effects", [])])
                for t in tl.tracks for i in t]

    plain = otio.adapters.read_from_string(text, "cmx_3600", rate=rate)
    ours = otio.adapters.read_from_string(normalized(text, rate), "cmx_3600", rate=rate)
    assert items(ours) == items(plain) and len(items(plain)) >= 2


def test_a_list_with_a_byte_order_mark_plans(tmp_path):
    p = tmp_path / "bom.edl"
    p.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "timelines" / "screening_example.edl").read_bytes())
    plain = read_timeline(FIXTURES / "timelines" / "screening_example.edl", rate=24)
    assert [c.value for c in read_timeline(p, rate=24).cuts] == [c.value for c in plain.cuts] and plain.cuts
    assert Path(p).read_bytes()[:3] == b"\xef\xbb\xbf"  # the user's file is not changed


def test_header_and_trailer_lines_a_converter_adds_are_not_events(tmp_path):
    """Tools write lines of their own around the list (a converter's banner and settings before the
    first event, a list type, version and date after the last: FCPX's EDL-X does; no EDL-X list is
    public, so these lines are written here in that shape). The format's header is TITLE and FCM
    only and a line after an event that is no event is a comment: the cuts are the list's own."""
    plain = FIXTURES / "timelines" / "screening_example.edl"
    lines = plain.read_text().splitlines()
    banner = ["REM EDL-X 2.5.2 (Strict)", "* COLOR SPACE: Rec. 709", "Type: CMX 3600", "; exported from Final Cut Pro"]
    trailer = ["", "* EDL-X 2.5.2, list type: Strict", "2016-10-05 14:03:11 +0200", "END"]
    p = tmp_path / "edlx.edl"
    p.write_text("\n".join(lines[:1] + banner + lines[1:] + trailer) + "\n")
    with pytest.raises(Exception, match="Unknown event type"):  # what the adapter alone makes of it
        otio.adapters.read_from_file(str(p), "cmx_3600", rate=24)
    cuts, length = _assembled_cuts(plain.read_text(), fps=24)
    tl = read_timeline(p, rate=24)
    assert [round(c.value) for c in tl.cuts] == cuts and len(cuts) >= 5
    assert round(tl.duration.value) == length
    assert [c.name for c in tl.clips] == [c.name for c in read_timeline(plain, rate=24).clips]


def test_an_event_line_that_does_not_read_is_refused_not_dropped(tmp_path):
    p = tmp_path / "broken.edl"
    text = (FIXTURES / "timelines" / "screening_example.edl").read_text()
    p.write_text(text.replace("002  ZZ100_50 V     C        01:00:06:13", "002  ZZ100_50 V     C        01:00:06"))
    with pytest.raises(CutscoreError, match=r"broken\.edl: not a readable \.edl timeline"):
        read_timeline(p, rate=24)


def test_a_list_read_below_its_rate_names_the_rates_it_can_be():
    """An EDL carries no frame rate: Avid's 29.97 list read at 24 counts frames to 29 (the truth: the
    largest frame field of its event lines, 29)."""
    path = REAL / "avid_heists_roughcut_2997.edl"
    top = max(int(m) for m in re.findall(r"\d\d[:;]\d\d[:;]\d\d[:;](\d\d)", path.read_text(encoding="utf-8-sig")))
    with pytest.raises(CutscoreError, match=rf"heists_roughcut_2997\.edl: its timecodes count frames up to {top}, "
                                            r"more than 24 fps has: .* \(--rate 29\.97 or 30\)"):
        read_timeline(path, rate=24)
