"""A new user on a fresh Debian 12: the packages the README names, a clean clone, `make demo` (issue 48).

The machine is a Debian bookworm root built with mmdebstrap (tests/debian_root.py) holding only what
a minimal Debian 12 has plus the README's one apt line; the clone is this checkout's HEAD, cloned as a
user clones. `make demo` there builds its own venv from the package registries (several GB: this
test is `slow`; CI runs it) and scores the bundled demo; what it wrote is then read back by the
cutscore it installed, as the demo's last line suggests. The one thing copied from this machine is
its certificate bundle: this network reaches the registries through its own CA, which a real
machine on it would hold too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tests.debian_root import Root

pytestmark = pytest.mark.slow

_LINE = re.search(r"on a fresh Debian 12: `apt-get install -y ([^`]+)`", (ROOT / "README.md").read_text())
PACKAGES = tuple(_LINE.group(1).split()) if _LINE else ()
FRESH = Root(f"debian12-{hashlib.sha256(' '.join(PACKAGES).encode()).hexdigest()[:8]}", "bookworm", PACKAGES,
             probe="usr/bin/make", env="CUTSCORE_FRESH_ROOT", need_gb=14, pristine=True)


def _inside(prefix: list[str], home, cwd, *cmd: str, timeout: float) -> subprocess.CompletedProcess:
    """Run a command in the root as a login with nothing of this machine's environment."""
    env = ["env", "-i", f"HOME={home}", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG=C.UTF-8", "PIP_CERT=/etc/ssl/certs/host-network.crt"]
    return subprocess.run([*prefix, *env, "sh", "-c", f'cd "{cwd}" && exec "$@"', "sh", *cmd],
                          capture_output=True, text=True, timeout=timeout)


def test_a_root_installed_into_after_its_build_is_not_fresh(tmp_path):
    """CI once found ffmpeg in a cached root (a one-off `make test` had installed it there): the
    fresh machine must be built again then, not used."""
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text("Package: make\nStatus: install ok installed\n")
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/make").touch()
    FRESH.mark(tmp_path)
    assert FRESH.ready(tmp_path)
    status.write_text(status.read_text() + "\nPackage: ffmpeg\nStatus: install ok installed\n")
    assert not FRESH.ready(tmp_path)
    assert dataclasses.replace(FRESH, pristine=False).ready(tmp_path)  # the Kdenlive root is kept


def test_readme_names_the_packages_of_a_fresh_debian_12():
    assert PACKAGES and {"python3-venv", "make", "git"} <= set(PACKAGES), _LINE


def test_make_demo_on_a_fresh_debian_12(tmp_path):
    reason = FRESH.why_not()
    if reason:
        pytest.fail(f"fresh Debian 12 root: {reason}")  # CI must run this: fail, in one line
    prefix = FRESH.prefix()
    root = FRESH.dir()
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/host-network.crt")
    # a fresh Debian 12 holds no ffmpeg, melt or Kdenlive: the demo must not need them
    for tool in ("usr/bin/ffmpeg", "usr/bin/melt", "usr/bin/python3.12"):
        assert not (root / tool).exists(), tool
    clone, home = tmp_path / "cutscore", tmp_path / "home"
    home.mkdir()
    try:
        r = subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = _inside(prefix, home, clone, "make", "demo", timeout=2400)
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        out = clone / "out/demo/demo-scored.otio"
        assert out.is_file() and (clone / "out/demo/demo-scored.cutscore/cutscore.json").is_file(), r.stdout[-2000:]
        assert "wrote out/demo/demo-scored.otio" in r.stdout and "4/4 cuts have a musical onset" in r.stdout, r.stdout[-2000:]
        # the venv is the clone's own, on the root's Python 3.11
        assert re.search(r"^version\S* = 3\.11\.", (clone / ".venv/pyvenv.cfg").read_text(), re.M)
        # read back by the cutscore the demo installed: the demo's one hit point, every clip's media found
        plan = _inside(prefix, home, clone, ".venv/bin/cutscore", "plan", str(out), timeout=300)
        assert plan.returncode == 0, plan.stderr[-2000:]
        assert "5 clips, 4 cuts, 1 hit points" in plan.stdout, plan.stdout
        assert plan.stdout.count(" ok ") == 5 and "warning" not in (plan.stdout + plan.stderr).lower(), plan.stdout
    finally:
        shutil.rmtree(clone, ignore_errors=True)  # a venv of several GB: not kept among pytest's last runs
