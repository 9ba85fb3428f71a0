"""Which of the timeline's sound is dialogue (torch-free; the timeline side: the finishing chain's
ducking, plugin/finish/ducking.py, knows no file format): what the timeline plays of its own sound, for the
engine to listen to (Silero VAD, engine/features/speech.py): the clips of its enabled audio tracks
where it plays them (cutscore's own music track and muted tracks and clips excepted), or the picture
clips' soundtracks when it has no audio clip."""

from __future__ import annotations

import opentimelineio as otio

from core.api import AudioSpan
from plugin.formats.picture import enabled, media_of
from plugin.formats.timeline import music_track, resolve_media


def dialogue_spans(tl, relink=None) -> list[AudioSpan]:
    """What the timeline plays of its own sound (`tl` a plugin.formats.timeline.Timeline), for the engine to
    listen to: the audio tracks' clips, or the picture's soundtracks when it has no audio track."""
    ours = music_track(tl.otio)
    end = tl.duration.to_seconds()
    tracks = [t for t in tl.otio.audio_tracks() if t is not ours]
    spans = [s for track in tracks for s, _ in track_spans(tl, track, relink)]
    if not any(t.find_clips() for t in tracks):
        spans = [_span(str(c.media_path), c.range.start_time.to_seconds(), c.range.duration.to_seconds(),
                       c.file_range.start_time.to_seconds(), end, True) for c in tl.clips if c.media_path]
    return [s for s in spans if s is not None]


def track_spans(tl, track, relink=None) -> list[tuple[AudioSpan, otio.schema.Clip]]:
    """What one audio track plays (nothing when it is muted): each enabled clip with a media file, where
    the timeline plays it and from where in its file, with the clip."""
    if not enabled(track):
        return []
    end = tl.duration.to_seconds()
    out = []
    for clip in track.find_clips():
        if not enabled(clip):
            continue
        media = media_of(clip)
        path = resolve_media(media, tl.path.parent, relink) if media else None
        if path is None:
            continue
        try:
            rng = clip.transformed_time_range(clip.trimmed_range(), tl.otio.tracks)
        except otio.exceptions.OTIOError:
            continue
        avail = getattr(clip.media_reference, "available_range", None)
        src = clip.trimmed_range().start_time
        if avail is not None:
            src = src - avail.start_time.rescaled_to(src.rate)
        span = _span(str(path), rng.start_time.to_seconds(), rng.duration.to_seconds(), src.to_seconds(), end, False)
        if span is not None:
            out.append((span, clip))
    return out


def _span(media: str, start: float, duration: float, source: float, end: float, picture: bool) -> AudioSpan | None:
    if start < 0:  # the part before the timeline's start is not heard
        duration, source, start = duration + start, source - start, 0.0
    duration = min(duration, end - start)
    if duration <= 0:
        return None
    return AudioSpan(media=media, start_s=start, duration_s=duration, source_start_s=max(source, 0.0), picture=picture)
