"""The ground every issue builds on: layering, the command line, doctor, the demo."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from ui.cli import build_parser, main

SUBCOMMANDS = ["demo", "plan", "score", "regenerate", "features", "serve", "panel", "train", "evaluate",
               "import-official", "doctor", "model-info"]


def test_layering_keeps_torch_out_of_plugin_ui_and_client():
    code = ("import sys, plugin, ui, ui.cli, core.client, core.api, core.errors, plugin.formats.timeline, plugin.commands.plan, "
            "plugin.formats.kdenlive.adapter, plugin.commands.score, plugin.finish.render, plugin.formats.writeback, ui.panel.state, ui.panel.window; bad = [m for m in ('torch', 'torchaudio', 'stable_audio_tools') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_subcommand_exists_and_has_help(capsys):
    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert set(SUBCOMMANDS) <= names
    for name in SUBCOMMANDS + ["train preprocess", "train fit", "train synth"]:
        with pytest.raises(SystemExit) as e:
            main(name.split() + ["--help"])
        assert e.value.code == 0, name
        out = capsys.readouterr().out
        assert out.startswith("usage: cutscore " + name), out[:80]


def test_console_script_is_installed():
    exe = ROOT / ".venv" / "bin" / "cutscore"
    if not exe.exists():
        pytest.skip("not installed through `make install`")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "import-official" in r.stdout


def test_doctor_reports_this_machine(capsys):
    import shutil

    import torch

    assert main(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["torch"] == torch.__version__
    assert info["device"].startswith("CUDA") == torch.cuda.is_available()
    assert info["tools"]["ffmpeg"] == shutil.which("ffmpeg")
    assert info["tools"]["melt"] == shutil.which("melt")
    assert set(info["weights"]) >= {"demo model", "Stable Audio Open VAE", "CLIP ViT-B/32 (openai)"}
    assert info["server"] == "not running"


def test_train_and_evaluate_bad_input_is_one_line(tmp_path, capsys):
    assert main(["train", "fit", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.strip() == f"cutscore: error: {tmp_path / 'missing.json'}: no such train config"
    assert main(["evaluate", str(tmp_path / "gen"), str(tmp_path / "ref")]) == 2
    assert "not a folder of audio files" in capsys.readouterr().err


def test_demo_scores_the_bundled_timeline(capsys, tmp_path):
    from ui.cli import DEMO_MODEL

    assert main(["demo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "5 clips, 4 cuts" in out and "cuts (s): 4.004, 9.009, 12.513, 17.017" in out
    if not (DEMO_MODEL / "config.json").exists():
        assert "No model is installed yet" in out
        return
    assert (tmp_path / "demo-scored.otio").exists() and len(list((tmp_path / "demo-scored.cutscore").glob("*.wav"))) == 5
    assert "cut alignment:" in out and out.count("nearest onset") == 4
    # the shipped demo model makes music (issue 15): pitched (the model of session 3 read 0.23, white
    # noise 0.56) and in a key (session 5's model 3.50 bits, uniform 3.58; session 6's 2.98; this one,
    # trained on the corpus with the pedal an octave up, 2.70: issue 15's goal is 3.0)
    import soundfile as sf

    from engine.eval.metrics import chroma_entropy, spectral_flatness

    clips = [sf.read(p, dtype="float32") for p in sorted((tmp_path / "demo-scored.cutscore").glob("clip*.wav"))]
    music, sr = np.concatenate([y.mean(1) if y.ndim == 2 else y for y, _ in clips]), clips[0][1]
    assert spectral_flatness(music, sr) <= 0.03 and chroma_entropy(music, sr) <= 3.0


def test_errors_are_one_line_without_traceback():
    r = subprocess.run([sys.executable, "-m", "ui.cli", "plan", "/nonexistent/cut.otio"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "cutscore: error: /nonexistent/cut.otio: no such file"
    assert "Traceback" not in r.stderr


def test_the_layer_contracts_hold_and_breaking_one_fails(tmp_path):
    """`make lint` runs import-linter on pyproject's contracts: they hold here, and a scratch copy
    whose plugin/ imports torch breaks the first one."""
    import os
    import shutil
    from pathlib import Path

    lint = Path(sys.executable).with_name("lint-imports")
    assert subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True).returncode == 0
    for name in ("engine", "plugin", "ui"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "plugin" / "commands" / "plan.py", "a") as f:
        f.write("\nimport torch  # noqa\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    r = subprocess.run([str(lint)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "plugin.commands.plan -> torch" in r.stdout and "BROKEN" in r.stdout, r.stdout[-1500:]
