"""The timeline formats cutscore reads and writes, as data (torch-free): one record per format, the
only place a file suffix is spelled. Reading goes through the record's OTIO adapter
(plugin/formats/timeline.py); writing through plugin/formats/writeback.py `write_timeline`, which asks the record how
the format points at media, whether it bundles them, whether its clips carry gain keyframes, and
which module holds its specifics (`specifics`: a module with any of `before_read(path)` (a refusal
the adapter would word unclearly), `read(path, **kwargs)` (a pre-pass of its own, then the adapter)
and `after_read(path, otio_timeline)` (what the adapter reads wrongly, read right); `prepare(otio_timeline)` run before OTIO writes the file and `finish(path,
gain_keys, rate)` after; or, for a format written by patching the input project,
`write_project(text, segments, rate, sequence, retake)`).

Adding a format is one record here and, when it has specifics, one module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from core.errors import CutscoreError


@dataclass(frozen=True)
class Format:
    name: str  # what the user reads ("FCP7 XML")
    suffixes: tuple[str, ...]  # lower case, with the dot; the first is the one written
    adapter: str  # the OpenTimelineIO adapter that reads (and writes) it
    writable: bool = False
    # how media the input names relative to its folder are written (writeback.rebase_media):
    # "relative" (rebased to the output's folder), "path" (absolute), "url" (absolute file:// URL)
    media_urls: str = "relative"
    music_urls: str = "path"  # the music WAVs: "path" (plain absolute: Resolve's import) or "url"
    bundle: bool = False  # the file carries copies of its media (OTIO's MediaReferencePolicy)
    folder: bool = False  # the "file" is a folder (.otiod)
    gain_keyframes: bool = False  # clips carry gain keyframes: the ducking is written as keys over full-level WAVs
    patches_input: bool = False  # written by patching the input project, so the input must be this format
    needs_rate: bool = False  # carries no frame rate: the reader is told one (--rate)
    explicit_ranges: bool = True  # the writer needs every clip's source range written out
    specifics: str | None = None  # the module that writes what OTIO's adapter does not (see the docstring)

    @property
    def suffix(self) -> str:
        return self.suffixes[0]

    def module(self):
        return importlib.import_module(self.specifics) if self.specifics else None


FORMATS: tuple[Format, ...] = (
    Format("OpenTimelineIO", (".otio",), "otio_json", writable=True, explicit_ranges=False),
    Format("OpenTimelineIO bundle", (".otioz",), "otioz", writable=True, media_urls="path", bundle=True),
    Format("OpenTimelineIO folder bundle", (".otiod",), "otiod", writable=True, media_urls="path", bundle=True,
           folder=True),
    Format("FCP7 XML", (".xml",), "fcp_xml", writable=True, media_urls="url", music_urls="url", gain_keyframes=True,
           specifics="plugin.formats.fcp7"),
    Format("Kdenlive project", (".kdenlive",), "cutscore_kdenlive", writable=True, gain_keyframes=True,
           patches_input=True, specifics="plugin.formats.kdenlive"),
    Format("CMX 3600 EDL", (".edl",), "cmx_3600", needs_rate=True, specifics="plugin.formats.edl"),
    Format("Final Cut Pro X XML", (".fcpxml",), "fcpx_xml", specifics="plugin.formats.fcpx"),  # otio-fcpx-xml-adapter
    Format("Avid AAF", (".aaf",), "AAF"),  # otio-aaf-adapter (pyaaf2)
)
DEFAULT_OUTPUT = FORMATS[0].suffix  # what the panel writes unless told otherwise


def suffix_of(path: str | Path) -> str:
    return Path(path).suffix.lower()


def find(path: str | Path) -> Format | None:
    s = suffix_of(path)
    return next((f for f in FORMATS if s in f.suffixes), None)


def readable(path: str | Path) -> Format:
    fmt = find(path)
    if fmt is None:
        raise CutscoreError(f"{path}: unsupported timeline format {suffix_of(path)!r}; export "
                            f"{_listed([f for f in FORMATS], 'or')} from your editor")
    return fmt


def writable(path: str | Path, input_path: str | Path | None = None) -> Format:
    """The format an output is written in, refused in one line before any work when cutscore cannot
    write it (or, for a format written by patching the input, when the input is another format)."""
    fmt = find(path)
    if fmt is None or not fmt.writable:
        s = suffix_of(path)
        what = f"{s!r}" if s else "a file without an extension"
        raise CutscoreError(f"{path}: cannot write {what}; name the output "
                            f"{_listed([f for f in FORMATS if f.writable], 'or')}")
    if fmt.patches_input and input_path is not None and find(input_path) is not fmt:
        raise CutscoreError(f"{path}: a {fmt.suffix} output needs a {fmt.suffix} input (it patches the original "
                            f"project); write .otio and import it in your editor instead")
    return fmt


def writable_suffixes() -> tuple[str, ...]:
    return tuple(f.suffix for f in FORMATS if f.writable)


def output_suffixes(input_path: str | Path | None) -> tuple[str, ...]:
    """The suffixes a scored timeline of this input can be written as (the panel's choice)."""
    src = find(input_path) if input_path is not None else None
    return tuple(f.suffix for f in FORMATS if f.writable and (not f.patches_input or src is f))


def _listed(formats: list[Format], last: str) -> str:
    names = [s for f in formats for s in f.suffixes]
    return ", ".join(names[:-1]) + f" {last} " + names[-1] if len(names) > 1 else names[0]
