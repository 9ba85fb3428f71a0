"""The change list of a re-edit (torch-free), as edit-compare tools make it: each picture clip of the
new edit matched to the clips of the old edit (a score's sidecar: the clips as the score read them)
that showed the same media (the media file's name, else the clip's name) over overlapping source
frames. A new clip is `unchanged` (the same source frames at the same place), `moved` (the same
source frames elsewhere), `trimmed` (some of its source frames were in the old clip, some not: a head
or tail changed, a slip) or `new`; old clips no new clip keeps are deleted. A clip split in two, or
a shot used twice, matches use by use. plugin/commands/conform.py keeps the music by it.

The sound is matched the same way (`heard_before`): each span of the new edit's dialogue against
the old score's, by media file and source seconds, so the speech the old score heard moves with the
sound it was heard in and only the seconds of sound it never heard are listened to again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.api import AudioSpan, ClipSpan
from plugin.formats.timeline import Timeline


@dataclass
class Change:
    new_clip: int
    old_clip: int | None
    kind: str  # unchanged, moved, trimmed, new
    record_s: tuple[float, float]
    kept: list[tuple[float, float, float]] = field(default_factory=list)  # (new start, new end, old start) s

    def to_json(self) -> dict:
        """As `cutscore conform --json` prints it (the keys are a contract)."""
        return {"new_clip": self.new_clip, "old_clip": self.old_clip, "kind": self.kind,
                "record_s": [round(x, 6) for x in self.record_s], "kept": [[round(x, 6) for x in k] for k in self.kept]}


@dataclass(frozen=True)
class _Use:
    """A picture clip of an edit, in frames of the new edit's rate: which media, where in it, where."""

    index: int
    file: str | None  # the media file's name (None: the clip has none here)
    name: str
    src: tuple[int, int]
    rec: tuple[int, int]

    def same_media(self, other: _Use) -> bool:
        return self.file == other.file if self.file and other.file else self.name == other.name


def _file_name(media: str | None) -> str | None:
    """What identifies a clip's media across two exports of an edit: its file's name (a path or URL
    differs between machines and formats); None without one (then the clip's name does)."""
    if not media:
        return None
    import urllib.parse

    path = urllib.parse.unquote(urllib.parse.urlparse(media).path) if "://" in media else media
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _frames(s: float, rate: float) -> int:
    return int(round(s * rate))


def old_uses(clips: list[ClipSpan], rate: float) -> list[_Use]:
    """The old edit's picture clips as the score read them (its request's clips)."""
    return [_Use(c.index, _file_name(c.media), c.name,
                 (_frames(c.source_start_s, rate), _frames(c.source_start_s + c.duration_s, rate)),
                 (_frames(c.start_s, rate), _frames(c.start_s + c.duration_s, rate))) for c in clips]


def new_uses(tl: Timeline) -> list[_Use]:
    rate = tl.duration.rate
    out = []
    for c in tl.clips:
        src = c.file_range
        out.append(_Use(c.index, _file_name(str(c.media_path) if c.media_path else c.media), c.name, (_frames(src.start_time.to_seconds(), rate), _frames(src.end_time_exclusive().to_seconds(), rate)),
                        (_frames(c.range.start_time.to_seconds(), rate), _frames(c.range.end_time_exclusive().to_seconds(), rate))))
    return out


def _media_index(old: list[_Use]):
    """A function giving the old uses of the same media as a new one (`_Use.same_media`), in the old
    edit's order, by lookup: a long edit's thousands of clips are not compared pair by pair."""
    by_file: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for k, o in enumerate(old):
        if o.file:
            by_file.setdefault(o.file, []).append(k)
        by_name.setdefault(o.name, []).append(k)

    def same(n: _Use) -> list[_Use]:
        if n.file:
            ks = by_file.get(n.file, []) + [k for k in by_name.get(n.name, []) if not old[k].file]
        else:
            ks = by_name.get(n.name, [])
        return [old[k] for k in sorted(ks)]

    return same


def changes_of(old: list[_Use], new: list[_Use], rate: float) -> tuple[list[Change], list[int]]:
    """Each new clip's kind and kept spans (seconds), and the old clips no new clip keeps."""
    changes, used, taken = [], set(), set()  # taken: the old clips an earlier new clip matched first
    same = _media_index(old)
    for n in new:
        cands = [o for o in same(n) if min(n.src[1], o.src[1]) > max(n.src[0], o.src[0])]
        # the most shared source frames first, then the use of exactly these frames, then one no earlier
        # new clip matched (a shot used several times is matched use by use), then the nearest in the edit
        cands.sort(key=lambda o: (-(min(n.src[1], o.src[1]) - max(n.src[0], o.src[0])), o.src != n.src,
                                  o.index in taken, abs((o.rec[0] - o.src[0]) - (n.rec[0] - n.src[0]))))
        covered: list[tuple[int, int]] = []
        kept = []
        for o in cands:
            for a, b in _minus((max(n.src[0], o.src[0]), min(n.src[1], o.src[1])), covered):
                kept.append((n.rec[0] + a - n.src[0], n.rec[0] + b - n.src[0], o.rec[0] + a - o.src[0]))
                covered.append((a, b))
                used.add(o.index)
        kept.sort()
        best = cands[0] if cands else None
        if best is not None:
            taken.add(best.index)
        if best is None:
            kind = "new"
        elif best.src == n.src and len(cands) == 1 or best.src == n.src and covered == [n.src]:
            kind = "unchanged" if best.rec == n.rec else "moved"
        else:
            kind = "trimmed"
        changes.append(Change(n.index, best.index if best else None, kind, (n.rec[0] / rate, n.rec[1] / rate),
                              [(a / rate, b / rate, c / rate) for a, b, c in kept]))
    return changes, sorted(o.index for o in old if o.index not in used)


def _minus(span: tuple, taken: list[tuple]) -> list[tuple]:
    """The parts of span not in any of taken."""
    parts = [span]
    for a, b in taken:
        parts = [p for x, y in parts for p in ((x, min(y, a)), (max(x, b), y)) if p[1] > p[0]]
    return parts


def heard_before(old: list[AudioSpan], speech: list[tuple[float, float]],
                 new: list[AudioSpan]) -> tuple[list[tuple[float, float]], list[AudioSpan]]:
    """The old score's speech regions (timeline seconds of the old edit, heard in its dialogue `old`)
    where the new edit plays the same seconds of the same media, and the parts of the new dialogue
    the old score never heard (to be listened to)."""
    moved: set[tuple[float, float]] = set()
    unheard = []
    for n in new:
        heard = []
        for o in old:
            if _file_name(o.media) != _file_name(n.media):
                continue
            x0 = max(n.source_start_s, o.source_start_s)
            x1 = min(n.source_start_s + n.duration_s, o.source_start_s + o.duration_s)
            if x1 - x0 < 1e-3:
                continue
            at, was = n.start_s + x0 - n.source_start_s, o.start_s + x0 - o.source_start_s
            heard.append((at, at + x1 - x0))
            moved |= {(round(at + max(a, was) - was, 4), round(at + min(b, was + x1 - x0) - was, 4))
                      for a, b in speech if min(b, was + x1 - x0) > max(a, was)}
        for a, b in _minus((n.start_s, n.start_s + n.duration_s), heard):
            if b - a >= 1e-3:
                unheard.append(n.model_copy(update={"start_s": a, "duration_s": b - a,
                                                    "source_start_s": n.source_start_s + a - n.start_s}))
    return sorted(moved), unheard
