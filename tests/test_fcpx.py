"""Final Cut Pro X XML (plugin/formats/fcpx.py, after otio-fcpx-xml-adapter): the markers where they play.
The truth is written here from the XML of otio-fcpx-xml-adapter's own sample project by FCPXML's
rule (an element's offset is in its parent's time, its markers in its own time from its `start`; a
marker outside its element's start..start+duration is not shown), each step in a comment."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from plugin.formats.timeline import read_timeline
from tests.conftest import FIXTURES


def test_every_marker_of_the_sequence_is_a_hit_where_it_plays():
    truth = [
        F(0) + 6,  # Marker 1: clip at 0 s, start 0, marker 6 s
        F(20) + 2,  # Marker 5: connected clip at the gap's start (20 s), marker 2 s
        F(20) + (F(648176909, 180000) - 3600) + F(105589, 15000),  # Marker 2: audio clip 0.98 s into that gap
        F(30) + (F(2596698013, 720000) - 3600),  # Marker 9: on the gap at 30 s (its start 3600 s)
        # Marker 3 (a clip at 40 s starting 3.57 s into its media, marked at 1.95 s): before its first
        # frame, not shown
        F(50) + F(28500, 3000) + F(167, 30) - F(1500, 3000),  # Marker 4: storyline at 50 s, clip 9.5 s in
        F(80) + F(109, 30) - F(10900, 3000),  # Marker 7: the compound clip at 80 s from 3.633 s
        F(80) + F(141, 10) - F(10900, 3000),  # Marker 8
    ]
    tl = read_timeline(FIXTURES / "timelines" / "adapters" / "fcpx_example.fcpxml")
    assert [h.to_seconds() for h in tl.hits] == [pytest.approx(float(t), abs=1e-9) for t in truth]
