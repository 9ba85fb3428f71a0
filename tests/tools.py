"""The Debian tools the tests use, and the skip a test takes when its tool is absent: the one apt
line that brings it (scripts/debian-tools.txt is the list; scripts/debian-tools installs them when it
can, as `make test` and `.ci/run` do)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LIST = Path(__file__).resolve().parent.parent / "scripts" / "debian-tools.txt"


def packages() -> dict[str, list[str]]:
    """{command or file: the Debian packages that bring it}."""
    out = {}
    for line in LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            tool, *pkgs = line.split()
            out[tool] = [p for p in pkgs if p != "slow"]
    return out


def present(tool: str) -> bool:
    return Path(tool).exists() if tool.startswith("/") else shutil.which(tool) is not None


def missing(*tools: str) -> list[str]:
    return [t for t in tools if not present(t)]


def apt_line(tools: list[str]) -> str:
    known = packages()
    pkgs = list(dict.fromkeys(p for t in tools for p in known.get(t, [t])))
    return "apt-get install -y " + " ".join(pkgs)


def reason(*tools: str) -> str:
    gone = missing(*tools)
    return f"needs {', '.join(gone)} ({apt_line(gone)})"


def needs(*tools: str):
    """A mark: the test skips, with the apt line, when any of the tools is absent."""
    return pytest.mark.skipif(bool(missing(*tools)), reason=reason(*tools) if missing(*tools) else "")


def require(*tools: str) -> None:
    """Skip the running test (or fixture) with the apt line when any of the tools is absent."""
    if missing(*tools):
        pytest.skip(reason(*tools))
