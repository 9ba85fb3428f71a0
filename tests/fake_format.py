"""A format that exists only in a test (tests/test_writeback.py adds its record to plugin/formats/__init__.py):
OpenTimelineIO JSON under another suffix, with specifics of its own, to show that a format is one
record plus one module. `prepare` stamps the timeline; `finish` writes the music's gain keys into
the written file, as a format with gain keyframes would."""

from __future__ import annotations

import json
from pathlib import Path


def prepare(tl) -> None:
    tl.metadata["fake_format"] = {"prepared": True}


def finish(path: Path, gain_keys: list, rate: float) -> None:
    data = json.loads(path.read_text())
    data["metadata"]["fake_format"]["gain_keys"] = gain_keys
    data["metadata"]["fake_format"]["rate"] = rate
    path.write_text(json.dumps(data))
