import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    """Caches, configs and tokens go to a per-test folder, never the user's."""
    monkeypatch.setenv("CUTSCORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CUTSCORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def media(name: str) -> Path:
    """A real test video: tests/fixtures when copied there, else ../shared/media."""
    for p in (FIXTURES / name, ROOT / "resources" / "demo" / name, SHARED / "media" / name):
        if p.exists():
            return p
    pytest.skip(f"{name} not found in tests/fixtures or ../shared/media")


def timeline(name: str) -> Path:
    for p in (FIXTURES / "timelines" / name, SHARED / "timelines" / name):
        if p.exists():
            return p
    pytest.skip(f"{name} not found")


@pytest.fixture(scope="module")
def local_engine():
    """The in-process engine (LocalEngine: the engine's JobManager over a store in memory, the real
    pipelines), shared by a test module."""
    from core.client import LocalEngine

    eng = LocalEngine(device="cpu")
    yield eng
    eng.close()
