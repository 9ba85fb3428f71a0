"""The installed package (issue 48): the wheel built from this tree, installed into a fresh venv
outside it, scores the bundled demo with the bundled demo model, and the Resolve launchers it
writes load cutscore from the install, not from the checkout. The fresh venv reaches the
dependencies through a .pth naming this environment's site-packages (a stand-in for `pipx install`,
which would download torch and the rest: the tests never touch the network); the .pth files in
that folder (this checkout's editable install among them) are not run, so only the wheel's own
cutscore is importable there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests import tools
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env=None, timeout=600):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the fresh venv's python, a folder outside the checkout to work in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    had_build = (ROOT / "build").exists()  # setuptools builds in the tree (build/ is ignored by git)
    rc, out = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp / "dist",
                    ROOT], cwd=tmp, env={**os.environ, "TMPDIR": str(tmp)})
    if not had_build:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert rc == 0, out[-2000:]
    wheel, = (tmp / "dist").glob("cutscore-*.whl")
    venv = tmp / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)[0] == 0
    python = venv / "bin" / "python"
    rc, out = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], cwd=tmp)
    assert rc == 0, out[-2000:]
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp)[1].strip())
    (purelib / "zz-cutscore-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp / "work"
    work.mkdir()
    return python, work, purelib


def test_the_wheel_holds_the_demo_and_scores_it_outside_the_checkout(installed):
    python, work, purelib = installed
    rc, out = _run([python, "-c", "import core.paths as p, plugin; print(p.DEMO_MODEL); print(plugin.__file__)"], cwd=work)
    assert rc == 0, out
    model, plugin_file = out.strip().splitlines()[-2:]
    assert model.startswith(str(purelib)) and plugin_file.startswith(str(purelib)), out  # not the checkout's
    rc, out = _run([python.parent / "cutscore", "demo", "-o", work / "out"], cwd=work)
    assert rc == 0, out[-2000:]
    scored = work / "out" / "demo-scored.otio"
    assert scored.is_file() and (work / "out" / "demo-scored.cutscore" / "cutscore.json").is_file()
    rc, out = _run([python.parent / "cutscore", "plan", scored], cwd=work)
    assert rc == 0 and "1 hit points" in out and "offline" not in out and "warning" not in out, out


def test_the_resolve_launchers_load_cutscore_from_the_install(installed, tmp_path):
    python, work, purelib = installed
    home = tmp_path / "home"
    rc, out = _run([python.parent / "cutscore", "resolve", "install"], cwd=work, env={**os.environ, "HOME": str(home)})
    assert rc == 0, out
    folder = home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Edit"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["cutscore.py", "cutscore.lua",
                                                                 "cutscore - regenerate clip under playhead.py",
                                                                 "cutscore - regenerate clip under playhead.lua"])
    text = (folder / "cutscore.py").read_text()
    assert f"CUTSCORE_ROOT = {str(purelib)!r}" in text and str(ROOT) not in text
    # outside Resolve each launcher loads cutscore from the install and says Resolve is not reachable
    rc, out = _run([python, folder / "cutscore.py"], cwd=work)
    assert rc == 2 and "scripting API is not reachable" in out and "Traceback" not in out, out
    assert (purelib / "plugin" / "resolve_launcher.lua").is_file()
    if not tools.missing("luajit"):
        rc, out = _run(["luajit", folder / "cutscore.lua"], cwd=work)
        assert "scripting API is not reachable" in out and "cannot open" not in out, out
