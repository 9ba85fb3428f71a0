"""A stand-in for DaVinci Resolve's scripting API (Resolve cannot run here). It implements only the
calls Resolve's Developer/Scripting/README.txt documents that plugin/resolve.py uses, with their
documented return types, and records every call so tests can assert the exact calls and frames."""

from __future__ import annotations

import os
from pathlib import Path

import opentimelineio as otio


class Recorder:
    def __init__(self):
        self.calls: list[tuple] = []

    def log(self, *call):
        self.calls.append(call)

    def named(self, name: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == name]


class MediaPoolItem:
    def __init__(self, path: str):
        self.path = path

    def GetClipProperty(self, key):  # noqa: N802 - Resolve's API names
        return {"File Path": self.path}.get(key, "")

    def GetName(self):  # noqa: N802
        return os.path.basename(self.path)


class TimelineItem:
    def __init__(self, item: MediaPoolItem, start: int, duration: int):
        self.item, self.start, self.duration = item, start, duration
        self.markers: dict[int, dict] = {}

    def GetStart(self):  # noqa: N802
        return self.start

    def GetEnd(self):  # noqa: N802
        return self.start + self.duration

    def GetDuration(self):  # noqa: N802
        return self.duration

    def GetMediaPoolItem(self):  # noqa: N802
        return self.item

    # markers as Resolve keeps them: {frame: {color, name, note, duration, customData}}, one a frame
    def AddMarker(self, frame, color, name, note, duration, custom_data=""):  # noqa: N802
        if frame in self.markers or not 0 <= frame < self.duration:
            return False
        self.markers[frame] = {"color": color, "name": name, "note": note, "duration": duration,
                               "customData": custom_data}
        return True

    def GetMarkers(self):  # noqa: N802
        return dict(self.markers)

    def DeleteMarkerByCustomData(self, custom_data):  # noqa: N802
        gone = [f for f, m in self.markers.items() if m["customData"] == custom_data]
        for f in gone:
            del self.markers[f]
        return bool(gone)


class Folder:
    def __init__(self, name):
        self.name, self.subfolders, self.clips = name, [], []

    def GetName(self):  # noqa: N802
        return self.name

    def GetSubFolderList(self):  # noqa: N802
        return list(self.subfolders)

    def GetClipList(self):  # noqa: N802
        return list(self.clips)


class MediaPool:
    def __init__(self, rec: Recorder, timeline: Timeline):
        self.rec, self.timeline = rec, timeline
        self.root = Folder("Master")
        self.current = self.root

    def GetRootFolder(self):  # noqa: N802
        return self.root

    def AddSubFolder(self, parent, name):  # noqa: N802
        self.rec.log("AddSubFolder", parent.GetName(), name)
        f = Folder(name)
        parent.subfolders.append(f)
        return f

    def SetCurrentFolder(self, folder):  # noqa: N802
        self.rec.log("SetCurrentFolder", folder.GetName())
        self.current = folder
        return True

    def ImportMedia(self, paths):  # noqa: N802
        self.rec.log("ImportMedia", self.current.GetName(), list(paths))
        items = [MediaPoolItem(p) for p in paths if Path(p).is_file()]
        self.current.clips.extend(items)
        return items

    def AppendToTimeline(self, infos):  # noqa: N802
        self.rec.log("AppendToTimeline", [{k: (v.GetName() if k == "mediaPoolItem" else v) for k, v in i.items()}
                                          for i in infos])
        placed = []
        for i in infos:
            assert set(i) == {"mediaPoolItem", "startFrame", "endFrame", "mediaType", "trackIndex", "recordFrame"}
            t = TimelineItem(i["mediaPoolItem"], i["recordFrame"], i["endFrame"] - i["startFrame"] + 1)
            self.timeline.tracks["audio"][i["trackIndex"] - 1]["items"].append(t)
            placed.append(t)
        return placed


class Timeline:
    def __init__(self, rec: Recorder, name: str, rate: str, start_frame: int, otio_to_export=None,
                 markers: dict | None = None, audio_tracks: int = 1):
        self.rec, self.name, self.rate, self.start_frame = rec, name, rate, start_frame
        self.otio_to_export, self.markers = otio_to_export, markers or {}
        self.tracks = {"audio": [{"name": f"Audio {n + 1}", "items": []} for n in range(audio_tracks)], "video": []}
        self.timecode = "01:00:00:00"

    def GetName(self):  # noqa: N802
        return self.name

    def GetSetting(self, key):  # noqa: N802
        return {"timelineFrameRate": self.rate}.get(key, "")

    def GetStartFrame(self):  # noqa: N802
        return self.start_frame

    def GetMarkers(self):  # noqa: N802
        return dict(self.markers)

    def Export(self, path, export_type, subtype):  # noqa: N802
        self.rec.log("Export", Path(path).suffix, export_type, subtype)
        if export_type != Resolve.EXPORT_OTIO or self.otio_to_export is None:
            return False
        otio.adapters.write_to_file(self.otio_to_export, path)
        return True

    def AddTrack(self, kind, sub_type=None):  # noqa: N802
        self.rec.log("AddTrack", kind, sub_type)
        self.tracks[kind].append({"name": f"Audio {len(self.tracks[kind]) + 1}", "items": []})
        return True

    def GetTrackCount(self, kind):  # noqa: N802
        return len(self.tracks[kind])

    def GetTrackName(self, kind, index):  # noqa: N802
        return self.tracks[kind][index - 1]["name"]

    def SetTrackName(self, kind, index, name):  # noqa: N802
        self.rec.log("SetTrackName", kind, index, name)
        self.tracks[kind][index - 1]["name"] = name
        return True

    def GetItemListInTrack(self, kind, index):  # noqa: N802
        return list(self.tracks[kind][index - 1]["items"])

    def DeleteClips(self, items):  # noqa: N802
        self.rec.log("DeleteClips", [(i.GetStart(), i.GetMediaPoolItem().GetName()) for i in items])
        for t in self.tracks["audio"]:
            t["items"] = [i for i in t["items"] if i not in items]
        return True

    def GetCurrentTimecode(self):  # noqa: N802
        return self.timecode


class Project:
    def __init__(self, rec, timeline):
        self.timeline = timeline
        self.pool = MediaPool(rec, timeline)

    def GetCurrentTimeline(self):  # noqa: N802
        return self.timeline

    def GetMediaPool(self):  # noqa: N802
        return self.pool


class ProjectManager:
    def __init__(self, project):
        self.project = project

    def GetCurrentProject(self):  # noqa: N802
        return self.project


class Resolve:
    EXPORT_OTIO = "EXPORT_OTIO"  # Resolve's constants are attributes of the resolve object
    EXPORT_NONE = "EXPORT_NONE"

    def __init__(self, timeline: Timeline | None):
        self.rec = timeline.rec if timeline else Recorder()
        self.project = Project(self.rec, timeline) if timeline else None

    def GetProjectManager(self):  # noqa: N802
        return ProjectManager(self.project)
