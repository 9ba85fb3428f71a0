"""Which timeline of a Kdenlive project is the edit: the two document dialects (torch-free, used by
the reader, plugin/formats/kdenlive/adapter.py, and the writer, plugin/formats/kdenlive/writer.py).

- Document 1.04 (Kdenlive 20.08-22.12): one timeline, the project's last top-level tractor; its
  tracks are per-track tractors (or playlists), the first is `black_track`; the document's
  properties (guides, groups, the active track) are `kdenlive:docproperties.*` on `main_bin`.
- Document 1.1 (Kdenlive 23.04 and later; 26.08 seen here): every timeline is a *sequence*, a
  tractor carrying `kdenlive:uuid` (its id is that uuid when Kdenlive first writes it, and may be
  `tractorN` after a later save) that is also a bin clip (`kdenlive:producer_type` 17, listed in
  main_bin). The last tractor is the *project tractor* (`kdenlive:projectTractor`), whose one
  track is the active sequence; main_bin's `kdenlive:docproperties.activetimeline` names it by
  uuid. A sequence's own properties (guides, groups, the active track, the track count) are
  `kdenlive:sequenceproperties.*` on its tractor.

Track-indexed properties (groups' "track:frame" leaves, activeTrack, audioTarget, videoTarget)
count tracks from the bottom without the black track: MLT track index - 1.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import NamedTuple


class SequenceError(ValueError):
    """The asked-for sequence is not in the project (the message lists those there are)."""


class Sequence(NamedTuple):
    uuid: str  # "" for a document 1.04 timeline
    name: str
    tractor: ET.Element
    active: bool


def props(el: ET.Element) -> dict[str, str]:
    return {p.get("name"): (p.text or "") for p in el.findall("property")}


def is_v11(root: ET.Element) -> bool:
    """A document 1.1 project (sequences): it has a project tractor."""
    return any(el.tag == "tractor" and props(el).get("kdenlive:projectTractor") == "1" for el in root)


def sequences(root: ET.Element) -> list[Sequence]:
    """The project's timelines, the active one marked (one, for a document 1.04 project)."""
    tractors = [el for el in root if el.tag == "tractor"]
    if not tractors:
        return []
    if not is_v11(root):
        main_bin = root.find("playlist[@id='main_bin']")
        name = props(main_bin).get("kdenlive:docproperties.projectName", "") if main_bin is not None else ""
        return [Sequence("", name or "timeline", tractors[-1], True)]
    main_bin = root.find("playlist[@id='main_bin']")
    active = props(main_bin).get("kdenlive:docproperties.activetimeline", "") if main_bin is not None else ""
    # one per uuid: a sequence nested in others is written again at each use (same kdenlive:uuid; seen in
    # Kdenlive 24.01's own projects); its own tractor is the one whose id is the uuid, else the first
    by_uuid: dict[str, ET.Element] = {}
    for t in tractors:
        u = props(t).get("kdenlive:uuid", "")
        if u and props(t).get("kdenlive:projectTractor") != "1" and (u not in by_uuid or t.get("id") == u):
            by_uuid[u] = t
    seqs = list(by_uuid.items())
    if not any(u == active for u, _ in seqs):  # no (or a stale) active uuid: the project tractor's track
        project = next(t for t in tractors if props(t).get("kdenlive:projectTractor") == "1")
        first = project.find("track")
        ids = {t.get("id"): u for u, t in seqs}
        active = ids.get(first.get("producer"), "") if first is not None else ""
        if not active and seqs:
            active = seqs[0][0]
    return [Sequence(u, props(t).get("kdenlive:clipname", "") or u, t, u == active) for u, t in seqs]


def select(root: ET.Element, name: str | None = None) -> Sequence:
    """The active sequence, or the one named `name` (its name in the bin, or its uuid). Raises
    SequenceError with the names there are."""
    seqs = sequences(root)
    if not seqs:
        raise ValueError("the project has no sequence (no <tractor>)")
    if name is None:
        return next(s for s in seqs if s.active)
    want = name.strip().strip("{}").lower()
    for s in seqs:
        if want in (s.name.lower(), s.uuid.strip("{}").lower()):
            return s
    names = ", ".join(repr(s.name) for s in seqs)
    if not seqs[0].uuid:
        raise SequenceError(f"no sequence {name!r}: a Kdenlive 22.12 (document 1.04) project has one timeline; "
                            "leave out --sequence")
    raise SequenceError(f"no sequence {name!r} in the project; pass --sequence with one of {names}")
