"""CMX 3600 EDL's specifics (torch-free): a pre-pass of our own before otio-cmx3600-adapter reads the
list (plugin/formats/__init__.py names this module for .edl), for what editors' software writes and the
adapter refuses or reads wrongly, and one-line refusals of what it would refuse unclearly.

The pre-pass (`normalized`), each rule a fact of the format as Avid and FCP write it:
- a UTF-8 byte-order mark before `TITLE:` is dropped (the adapter takes the line for an event);
- lines before the first event that the format does not define there (its header is `TITLE:` and
  `FCM:`; tools add their own: `REM ...`, `Type: ...`, `* ...`, a converter's banner) are dropped: the
  adapter refuses any of them as an "Unknown event type". A line after an event that is not an event
  stays a comment of it; one that starts with a digit (a trailer's date) is written as a `*` comment,
  since the adapter takes a line starting with a digit for an event. A line that starts with an
  event number but does not read as an event is kept as written, so the adapter refuses the list
  rather than an event being dropped;
- frame code modes: the FCM line before the first event is the record's (master) mode; an FCM line
  between events sets the mode of the sources after it. The adapter ignores FCM lines and reads a
  timecode as drop-frame only when it is written with `;`: each timecode is rewritten in its mode;
- a transition written without its type letter (`005  REEL V  008 ...`, Avid) is a dissolve of that
  many frames (`D 008`);
- the record times are the edit: where a source range's length differs from its record range's and
  no M2 (motion) line says why, the source range is cut to the record's length, as an NLE's conform
  does (the adapter refuses the list);
- events whose record ranges overlap are assembled as the list says (the format's own meaning: an
  auto-assembly records each event over the master in list order): a later event replaces what it
  covers, and an earlier event it covers only in part plays on around it. Avid writes lists like
  this when it flattens several video tracks into one (titles, lower thirds, picture in V2); the
  adapter refuses them. The list is rewritten as its assembled runs, one event each, in record
  order; a transition stays where its event still starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import CutscoreError

_TC = r"\d\d[:;.]\d\d[:;.]\d\d[:;.]\d\d"
_EVENT = re.compile(rf"^\s*(?P<num>\d{{3,}})\s+(?P<reel>\S+)\s+(?P<ch>\S+)\s+(?P<tr>[A-Za-z]\S*|\d{{3}})"
                    rf"(?:\s+(?P<dur>\d{{1,4}}))?\s+(?P<tc>(?:{_TC}\s+){{3}}{_TC})\s*$")


def before_read(path: Path) -> None:
    _picture_events(path)


def read(path: Path, rate: float):
    """The list as an OTIO Timeline: the adapter's reading of the normalized text."""
    import opentimelineio as otio

    text = path.read_text(encoding="utf-8-sig", errors="replace")
    _frames_fit(path, text, rate)
    return otio.adapters.read_from_string(normalized(text, rate), "cmx_3600", rate=rate)


def _frames_fit(path: Path, text: str, rate: float) -> None:
    """An EDL carries no frame rate: read at a lower one than it was written at, its timecodes count
    frames the rate has not. Refused in one line naming the rates the list can be (the adapter's
    message names a timecode)."""
    frames = [int(m[1]) for line in text.splitlines() if _EVENT.match(line)
              for m in re.finditer(r"\d\d[:;.]\d\d[:;.]\d\d[:;.](\d\d)", line)]
    nominal = round(rate)
    if frames and max(frames) >= nominal:
        top = max(frames)
        fits = [r for r in ("25", "29.97", "30", "50", "59.94", "60") if round(float(r)) > top]
        at = f" (--rate {' or '.join(fits[:2])})" if fits else ""
        raise CutscoreError(f"{path}: its timecodes count frames up to {top}, more than {rate:g} fps has: "
                            f"the list was written at a higher rate; read it at that rate{at}")


@dataclass
class _Event:
    num: str
    reel: str
    channel: str
    tr: str  # C, or a transition's type (D, Wnnn)
    dur: str | None  # a transition's length in frames
    frames: list[int]  # source in, source out, record in, record out
    drop: list[bool]  # each timecode's drop-frame mode
    notes: list[str]  # the lines after it up to the next event (comments, M2), as written
    source: int = -1  # a transition's outgoing event (the line before it, same number)

    @property
    def motion(self) -> bool:
        return any(x.strip().upper().startswith("M2") for x in self.notes)


def normalized(text: str, rate: float) -> str:
    """The list rewritten as the adapter reads it right (the rules in this module's docstring)."""
    lines = text.lstrip("\ufeff").splitlines()
    head, events = _parse(lines, rate)
    out = list(head)
    for k, a, b, trans in _assembled(events):
        e = events[k]
        n = e.num
        if trans:  # the transition's outgoing event, then the transition, under one number
            out.append(_line(n, events[e.source], *events[e.source].frames, rate))
            out += events[e.source].notes
        shift = a - e.frames[2]
        if e.motion:  # M2: the source runs at the speed its ranges give
            shift = round(shift * (e.frames[1] - e.frames[0]) / max(1, e.frames[3] - e.frames[2]))
        src_out = e.frames[0] + shift + (b - a) if not e.motion else e.frames[1]
        out.append(_line(n, e, e.frames[0] + shift, src_out, a, b, rate, trans))
        out += e.notes
    return "\n".join(out) + "\n"


def _parse(lines: list[str], rate: float) -> tuple[list[str], list[_Event]]:
    """The header lines, and every event with its frames in its own frame code mode."""
    from opentimelineio.opentime import from_timecode

    ntsc = any(abs(rate - r) < 1e-3 for r in (30000 / 1001, 60000 / 1001))  # drop-frame exists only there
    head: list[str] = []
    events: list[_Event] = []
    record, mode = None, False
    for line in lines:
        s = line.strip().upper()
        if s.startswith("FCM:"):
            mode = "NON" not in s and ntsc
            record = mode if record is None and not events else record
            if not events:
                head.append(line)
            continue
        m = _EVENT.match(line)
        if m is None:
            if re.match(r"\s*\d{3,}\s", line):  # an event we cannot read: the adapter refuses it
                (events[-1].notes if events else head).append(line)
            elif events:
                events[-1].notes.append(f"* {line.strip()}" if re.match(r"\s*\d", line) else line)
            elif s.startswith(("TITLE:", "SPLIT")) or not s:
                head.append(line)
            continue
        raw = m["tc"].split()
        drop = [ntsc and (d or ";" in t) for d, t in zip((mode, mode, bool(record), bool(record)), raw)]
        frames = [from_timecode(t[:8] + (";" if d else ":") + t[9:], rate).to_frames() for t, d in zip(raw, drop)]
        tr, dur = (m["tr"].upper(), m["dur"]) if not m["tr"].isdigit() else ("D", m["tr"])  # no type letter: a dissolve
        e = _Event(m["num"], m["reel"], m["ch"].upper(), tr, dur, frames, drop, [])
        if tr != "C" and events and events[-1].num == e.num:
            e.source = len(events) - 1
        events.append(e)
    return head, events


def _assembled(events: list[_Event]) -> list[tuple[int, int, int, bool]]:
    """The runs the list assembles to, per channel, in record order: (event, record in, record out,
    whether its transition starts it)."""
    runs = []
    for ch in dict.fromkeys(e.channel for e in events):
        tape: list[tuple[int, int, int]] = []  # (record in, record out, event), sorted, not overlapping
        for k, e in enumerate(events):
            a, b = e.frames[2], e.frames[3]
            if e.channel != ch or b <= a:
                continue
            # in list order: a later event records over what an earlier one left in [a, b)
            tape = [p for x, y, j in tape for p in ((x, min(y, a), j), (max(x, b), y, j)) if p[1] > p[0]]
            tape = sorted(tape + [(a, b, k)])
        for x, y, k in tape:
            e = events[k]
            runs.append((k, x, y, e.source >= 0 and x == e.frames[2]))
    return runs


def _line(n: str, e: _Event, src_in: int, src_out: int, rec_in: int, rec_out: int, rate: float,
          trans: bool = False) -> str:
    from opentimelineio.opentime import RationalTime, to_timecode

    tcs = [to_timecode(RationalTime(f, rate), rate, d) for f, d in zip((src_in, src_out, rec_in, rec_out), e.drop)]
    tr = f"{e.tr} {min(int(e.dur or 0), rec_out - rec_in):03d}" if trans else "C"
    return f"{n}  {e.reel} {e.channel} {tr} {' '.join(tcs)}"


def _picture_events(path: Path) -> None:
    """An EDL whose events are all sound (channels A, A2, AA, ...) is refused in one line before
    OTIO's reader, which fails on it with a message about durations."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    channels = re.findall(r"^\s*\d{3,}\s+\S+\s+(\S+)\s", text, re.M)
    if channels and not any("V" in c.upper() or c.upper() == "B" for c in channels):
        heard = ", ".join(sorted(set(channels))[:6])
        raise CutscoreError(f"{path}: this list has no picture events (its {len(channels)} events are sound only: "
                            f"{heard}); export the EDL of the video track")
