"""Kdenlive: the OTIO adapter that reads .kdenlive projects (adapter.py, registered through
plugin_manifest.json) and the writer that patches a project with the music (writer.py)."""
