"""Issue 33: `cutscore weights list|get` against a loopback stand-in for the Hugging Face hub
(tests/hub_standin.py; the real hub cannot be reached from tests) serving debug-size files in the
real layouts: a Lightning checkpoint laid out as the authors' model_odf.ckpt with its config, Stable
Audio Open's config and safetensors (the autoencoder under `pretransform.model.`), an open_clip
checkpoint. Every command runs as the user runs it: `python -m ui.cli`, its own process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.hub_standin import Hub

OFFICIAL, SAO, CLIP = "TaylorJi/Diff-V2M", "stabilityai/stable-audio-open-1.0", "timm/vit_base_patch32_clip_224.openai"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The debug-size files the stand-in serves, and the config the checkpoint was built from."""
    import torch
    from safetensors.torch import save as save_bytes

    from engine.features.clip import TINY, load_clip
    from engine.model.vae import VAE
    from tests.checkpoints import official_debug as _official_debug
    from tests.checkpoints import write_official_ckpt as _write_official_ckpt

    d = tmp_path_factory.mktemp("hubfiles")
    cfg = _official_debug()
    _write_official_ckpt(d / "model_odf.ckpt", cfg)
    (d / "cfg.json").write_text(cfg.to_json())
    torch.manual_seed(0)
    vae = VAE(cfg.vae)
    sao_cfg = {"model_type": "diffusion_cond", "sample_rate": cfg.vae["sample_rate"], "audio_channels": 2,
               "model": {"pretransform": {"type": "autoencoder", "config": cfg.vae["model"]}}}
    clip_model, _, _ = load_clip(TINY, None, device="cpu")
    return {
        (OFFICIAL, "model_odf.ckpt"): (d / "model_odf.ckpt").read_bytes(),
        (OFFICIAL, "model_config_odf.json"): json.dumps({"model_type": "diffusion_cond", "sample_rate": 44100,
                                                         "model": {"diffusion": {"type": "dit"}}}).encode(),
        (SAO, "model_config.json"): json.dumps(sao_cfg).encode(),
        # as the real file holds the DiT beside the autoencoder: a 24 MB tensor outside `pretransform.`,
        # so a transfer spans more than one of huggingface_hub's 10 MiB chunks (what a resume keeps)
        (SAO, "model.safetensors"): save_bytes({**{f"pretransform.model.{k}": v.contiguous()
                                                   for k, v in vae.model.state_dict().items()},
                                                "model.model.stand_in": torch.arange(6_000_000, dtype=torch.float32)}),
        (CLIP, "open_clip_model.safetensors"): save_bytes({k: v.contiguous()
                                                           for k, v in clip_model.state_dict().items()}),
    }, d / "cfg.json"


def _hub(files, skip=()):
    hub = Hub()
    for (repo, name), content in files[0].items():
        if name not in skip:
            hub.add(repo, name, content)
    return hub


def _env(tmp_path, endpoint, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), CUTSCORE_DATA_DIR=str(tmp_path / "data"),
               CUTSCORE_CONFIG_DIR=str(tmp_path / "config"), CUTSCORE_CACHE_DIR=str(tmp_path / "cache"),
               HF_HUB_DISABLE_TELEMETRY="1", QT_QPA_PLATFORM="offscreen", **extra)
    return env


def _cutscore(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)


def _one_error(r) -> str:
    """A refusal: exit 2, one `cutscore: error:` line, no traceback."""
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("cutscore: error:")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-2000:])
    return errors[0]


def _python(env, code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_get_all_then_score_with_the_official_model(tmp_path, files):
    with _hub(files) as hub:
        env = _env(tmp_path, hub.url)
        r = _cutscore(env, "weights", "get", "all", "--config", str(files[1]))
        assert r.returncode == 0, r.stderr[-2000:]
        assert "official: converted into" in r.stdout and r.stdout.count("verified in the Hugging Face cache") == 2
        listed = json.loads(_cutscore(env, "weights", "list", "--json").stdout)
    files_ = [row for row in listed if row["repo"]]
    assert len(files_) == 5 and all(row["verified"] for row in files_), listed
    by_file = {row["file"]: row for row in files_}
    # large files are checked against the sha256 the hub publishes; small ones are pinned at first download
    assert by_file["model.safetensors"]["pinned"] == "the hub's published sha256"
    assert by_file["model_config.json"]["pinned"] == "first download"
    assert (tmp_path / "data" / "models" / "official" / "config.json").is_file()
    # the hub is gone: everything now comes from this machine
    offline = _env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    out = tmp_path / "scored.otio"
    r = _cutscore(offline, "score", str(ROOT / "resources/demo/demo.otio"), "-o", str(out), "--model", "official",
                  "--engine", "local", "--steps", "2")
    assert r.returncode == 0 and out.exists(), r.stderr[-2000:]
    assert "model official" in r.stdout
    state = json.loads((tmp_path / "scored.cutscore" / "cutscore.json").read_text())
    assert state["model"] == "official" and len(state["segments"]) == 5
    # the other two load from the cache as the engine loads them
    r = _python(offline, "from engine.model.vae import load_vae; v = load_vae(); print(v.sample_rate, v.latent_dim)")
    assert r.returncode == 0 and r.stdout.split() == ["8000", "8"], r.stderr[-1500:]
    r = _python(offline, "import open_clip; from engine.weights import PARTS, cached; "
                         "from engine.features.clip import LOCAL_CONFIGS, TINY; open_clip.add_model_config(LOCAL_CONFIGS); "
                         "m, _, _ = open_clip.create_model_and_transforms(TINY, pretrained=str(cached(PARTS['clip'][0]))); "
                         "print(type(m).__name__)")
    assert r.returncode == 0 and "CLIP" in r.stdout, r.stderr[-1500:]
    # doctor names the command for what is still missing, and finds what is here
    r = _cutscore(_env(tmp_path / "fresh", "http://127.0.0.1:9"), "doctor")
    assert "`cutscore weights get official`" in r.stdout and "`cutscore weights get sao-vae`" in r.stdout


def test_the_official_preset_without_weights_names_the_command(tmp_path):
    r = _cutscore(_env(tmp_path, "http://127.0.0.1:9"), "score", str(ROOT / "resources/demo/demo.otio"), "-o",
                  str(tmp_path / "s.otio"), "--model", "official", "--engine", "local")
    assert "`cutscore weights get official`" in _one_error(r)


def test_a_gated_repository_names_the_page_and_the_login(tmp_path, files):
    with _hub(files) as hub:
        hub.gated[SAO] = "hf_good"
        no_token = _one_error(_cutscore(_env(tmp_path, hub.url), "weights", "get", "sao-vae"))
        wrong = _one_error(_cutscore(_env(tmp_path, hub.url, HF_TOKEN="hf_bad"), "weights", "get", "sao-vae"))
        for line in (no_token, wrong):
            assert f"https://huggingface.co/{SAO}" in line and "hf auth login" in line, line
        assert [c for c in hub.log if c[0] == "GET"] == []  # nothing was transferred
        ok = _cutscore(_env(tmp_path, hub.url, HF_TOKEN="hf_good"), "weights", "get", "sao-vae")
        assert ok.returncode == 0, ok.stderr[-1500:]


def test_a_missing_file_and_an_unreachable_hub_are_one_line(tmp_path, files):
    with _hub(files, skip=("model_odf.ckpt",)) as hub:
        line = _one_error(_cutscore(_env(tmp_path, hub.url), "weights", "get", "official"))
    assert "model_odf.ckpt: the hub has no such file" in line
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    line = _one_error(_cutscore(_env(tmp_path, closed), "weights", "get", "clip"))
    assert "cannot be reached" in line and "run the command again" in line


def test_a_cut_transfer_resumes(tmp_path, files):
    chunk = 10 * 1024 * 1024  # huggingface_hub writes what it received in chunks of this size
    with _hub(files) as hub:
        hub.cuts["model.safetensors"] = 1  # cut once, after half the file: huggingface_hub resumes in the same get
        r = _cutscore(_env(tmp_path / "a", hub.url), "weights", "get", "sao-vae")
        assert r.returncode == 0, r.stderr[-1500:]
        gets = [c[2] for c in hub.log if c[0] == "GET" and c[1].endswith("model.safetensors")]
        assert gets == [None, f"bytes={chunk}-"], gets
        # cut more often than it retries (6 tries, each resumed from the last whole chunk): the get fails in
        # one line and leaves no half file in the cache (huggingface_hub 2.x keeps none between runs); the
        # next get starts the file afresh and completes it
        hub.log.clear()
        hub.cuts["model.safetensors"] = 7
        first = _one_error(_cutscore(_env(tmp_path / "b", hub.url), "weights", "get", "sao-vae", timeout=120))
        assert "run the command again" in first
        ranges = [c[2] for c in hub.log if c[0] == "GET" and c[1].endswith("model.safetensors")]
        assert ranges == [None] + [f"bytes={chunk}-"] * 5, ranges
        hub_dir = tmp_path / "b" / "hf" / "hub" / "models--stabilityai--stable-audio-open-1.0"
        assert not list(hub_dir.rglob("*.incomplete")) and not list((hub_dir / "snapshots").rglob("model.safetensors"))
        again = _cutscore(_env(tmp_path / "b", hub.url), "weights", "get", "sao-vae")
        assert again.returncode == 0, again.stderr[-1500:]
    for home in ("a", "b"):
        listed = {row["file"]: row for row in json.loads(_cutscore(_env(tmp_path / home, "http://127.0.0.1:9"),
                                                                    "weights", "list", "--json").stdout) if row["repo"]}
        assert listed["model.safetensors"]["verified"], listed


def test_a_corrupted_file_is_refused_and_kept_aside(tmp_path, files):
    with _hub(files) as hub:
        hub.corrupt.add("model.safetensors")  # the hub publishes another sha256 than the bytes it sends
        line = _one_error(_cutscore(_env(tmp_path, hub.url), "weights", "get", "sao-vae"))
    assert "is not the published" in line and "kept aside" in line
    aside = list((tmp_path / "data" / "rejected").iterdir())
    assert len(aside) == 1 and aside[0].stat().st_size == len(files[0][(SAO, "model.safetensors")])
    # nothing loads it: it is no longer in the cache
    r = _python(_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1"),
                "from engine.model.vae import load_vae; load_vae()")
    assert r.returncode != 0 and "not in the Hugging Face cache" in r.stderr


def test_too_little_disk_space_is_refused_before_the_transfer(tmp_path, files):
    with _hub(files) as hub:
        hub.huge.add("model.safetensors")  # announced larger than any disk
        line = _one_error(_cutscore(_env(tmp_path, hub.url), "weights", "get", "sao-vae"))
        assert "GB are free" in line and "HF_HOME" in line
        assert not any(c[0] == "GET" and c[1].endswith("model.safetensors") for c in hub.log)


def test_weights_list_names_every_part():
    from engine.weights import PARTS

    names = {p.repo for parts in PARTS.values() for p in parts}
    assert names == {OFFICIAL, SAO, CLIP}
    assert all(p.gated == (p.repo == SAO) for parts in PARTS.values() for p in parts)


@pytest.mark.gui
def test_the_panel_gets_the_real_weights_with_progress(qtbot, tmp_path, files, monkeypatch):
    """A real Qt window offscreen: naming a model whose weights are missing shows "Get real weights";
    it runs `weights get` in the engine's own process, its progress in the panel, and then hides."""
    pytest.importorskip("pytestqt")
    from ui.panel.window import PanelWindow

    with _hub(files) as hub:
        env = _env(tmp_path, hub.url, CUTSCORE_OFFICIAL_CONFIG=str(files[1]))
        for k in [k for k in os.environ if k.startswith("HF_") and k not in env]:
            monkeypatch.delenv(k)  # the suite's HF_HUB_OFFLINE: this test's hub is the loopback stand-in
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        win = PanelWindow(client_factory=lambda: None)
        qtbot.addWidget(win)
        win.show()
        assert not win.weights_btn.isVisible()  # the default model is here
        win.model_edit.setText("official")
        win.model_edit.editingFinished.emit()
        assert win.weights_btn.isVisible() and win.steps.value() == 250  # the official model's own sampling
        (ROOT / "out").mkdir(exist_ok=True)
        assert win.grab().save(str(ROOT / "out" / "panel_weights_missing.png"))
        seen = []
        win.progress.valueChanged.connect(seen.append)
        win.weights_btn.click()
        qtbot.waitUntil(lambda: not win.state.busy and win.state.stage in ("done", ""), timeout=120000)
        assert win.state.error == "" and "converted into" in win.state.message, (win.state.error, win.state.message)
        assert not win.weights_btn.isVisible()
        assert (tmp_path / "data" / "models" / "official" / "config.json").is_file()
        assert any(0 < v < 1000 for v in seen), seen  # the download's progress reached the bar
        assert win.grab().save(str(ROOT / "out" / "panel_weights.png"))
