"""The authors' checkpoint: layout against shared/reference, conversion, strict loading, counts."""

import argparse
import dataclasses
import math

import pytest
import torch

from core.errors import CutscoreError
from core.model_config import default_vae_config, load_config
from engine.model.checkpoint import load_model, model_info
from engine.model.diffusion import DiffV2M
from engine.model.official import OFFICIAL_UNUSED, import_official, map_official
from engine.model.vae import VAE
from tests.checkpoints import official_debug as _official_debug
from tests.checkpoints import write_official_ckpt as _write_official_ckpt
from tests.conftest import FIXTURES, SHARED

TSV = next((p for p in (FIXTURES / "reference" / "official_diffv2m_state_dict.tsv",
                        SHARED / "reference" / "official_diffv2m_state_dict.tsv") if p.exists()),
           FIXTURES / "reference" / "official_diffv2m_state_dict.tsv")


def _tsv_rows():
    if not TSV.exists():
        pytest.skip("shared/reference not found")
    return [(n, tuple(eval(s))) for n, s in (line.rstrip("\n").split("\t") for line in TSV.open())]


def test_official_preset_matches_the_released_layout_name_for_name():
    rows = _tsv_rows()
    with torch.device("meta"):
        model = DiffV2M(load_config("official"))
        vae = VAE(default_vae_config())
    state = {n: torch.empty(s, device="meta") for n, s in rows}
    ours, vae_state, unmapped = map_official(state)
    assert unmapped == []
    own = model.state_dict()
    assert set(ours) == set(own)
    assert all(tuple(own[k].shape) == tuple(v.shape) for k, v in ours.items())
    own_vae = vae.model.state_dict()
    assert set(vae_state) == set(own_vae)
    assert all(tuple(own_vae[k].shape) == tuple(v.shape) for k, v in vae_state.items())
    dropped = {n for n, _ in rows if n.startswith(OFFICIAL_UNUSED)}
    assert len(dropped) == 6  # weight + bias of the three unused projections


def test_parameter_counts_of_the_full_presets():
    for name in ("paper", "official"):
        info = model_info(name)
        assert abs(info["dit"] / 1380.7e6 - 1) < 0.005, info
        assert abs(info["rhythm_predictor"] / 50.7e6 - 1) < 0.01, info
        assert abs(info["vae"] / 156.1e6 - 1) < 0.01, info
        assert info["total"] == info["dit"] + info["rhythm_predictor"] + info["encoders"] + info["vae"]
    # the tsv counts buffers (LayerNorm betas, RoPE inv_freq) as well; parameters only differ by them
    rows = _tsv_rows()
    tsv_dit = sum(math.prod(s) for n, s in rows if n.startswith("model."))
    buffers = sum(math.prod(s) for n, s in rows if n.startswith("model.") and (n.endswith(".beta") or "inv_freq" in n))
    assert model_info("official")["dit"] == tsv_dit - buffers


def test_import_official_converts_everything_and_loads_strictly(tmp_path):
    cfg = _official_debug()
    sd = _write_official_ckpt(tmp_path / "model_odf.ckpt", cfg)
    summary = import_official(tmp_path / "model_odf.ckpt", tmp_path / "out", config=cfg)
    assert len(summary["dropped_unused"]) == 6
    model, vae = load_model(tmp_path / "out")
    own = model.state_dict()
    torch.testing.assert_close(own["dit.transformer.project_in.weight"],
                               sd["diffusion.model.model.transformer.project_in.weight"])
    torch.testing.assert_close(own["conditioner.conditioners.semantic.extractor.scene_embedding.weight"],
                               sd["diffusion.conditioner.conditioners.semantic.extractor.scene_embedding.weight"])
    assert vae is not None
    # --ema takes the EMA DiT
    import_official(tmp_path / "model_odf.ckpt", tmp_path / "ema", ema=True, config=cfg)
    ema_model, _ = load_model(tmp_path / "ema")
    torch.testing.assert_close(ema_model.state_dict()["dit.transformer.project_in.weight"],
                               sd["diffusion_ema.ema_model.model.model.transformer.project_in.weight"])


def test_import_official_lists_what_it_cannot_place(tmp_path):
    cfg = _official_debug()
    _write_official_ckpt(tmp_path / "c.ckpt", cfg, extra={"diffusion.something_else.weight": torch.zeros(2)})
    with pytest.raises(CutscoreError, match="1 parameters could not be mapped: something_else.weight"):
        import_official(tmp_path / "c.ckpt", tmp_path / "out", config=cfg)
    _write_official_ckpt(tmp_path / "d.ckpt", cfg, extra={"diffusion.model.model.mystery.weight": torch.zeros(2)})
    with pytest.raises(CutscoreError, match="unexpected: dit.mystery.weight"):
        import_official(tmp_path / "d.ckpt", tmp_path / "out2", config=cfg)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_pickled_objects_need_an_explicit_opt_in(tmp_path):
    cfg = _official_debug()
    sd = _write_official_ckpt(tmp_path / "p.ckpt", cfg, ema=False)
    torch.save({"state_dict": sd, "hparams": argparse.Namespace(lr=1e-4)}, tmp_path / "p.ckpt")
    with pytest.raises(CutscoreError, match="--allow-pickle"):
        import_official(tmp_path / "p.ckpt", tmp_path / "out", config=cfg)
    import_official(tmp_path / "p.ckpt", tmp_path / "out", config=cfg, allow_pickle=True)
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_cli_import_official_refuses_to_overwrite(tmp_path, capsys):
    from ui.cli import main

    (tmp_path / "out").mkdir()
    assert main(["import-official", str(tmp_path / "missing.ckpt"), "-o", str(tmp_path / "out")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["import-official", str(tmp_path / "missing.ckpt"), "-o", str(tmp_path / "new")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_model_info_json_keys(capsys):
    import json

    from ui.cli import main

    assert main(["model-info", "debug", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["dit", "rhythm_predictor", "encoders", "vae", "total"]


@pytest.mark.slow
def test_full_size_checkpoint_laid_out_as_the_tsv_converts_and_loads(tmp_path):
    """A random full-size checkpoint (bf16 to halve the RAM, ~3.2 GB on disk) with exactly the tsv's
    names and shapes converts into the `official` preset with nothing left over."""
    rows = _tsv_rows()
    g = torch.Generator().manual_seed(0)
    sd = {"diffusion." + n: torch.randn(s, generator=g, dtype=torch.float32).to(torch.bfloat16) for n, s in rows}
    torch.save({"state_dict": sd}, tmp_path / "model_odf.ckpt")
    del sd
    summary = import_official(tmp_path / "model_odf.ckpt", tmp_path / "official")
    assert summary["parameters"] + len(summary["dropped_unused"]) + summary["vae_parameters"] == len(rows)
    model, vae = load_model(tmp_path / "official")
    assert sum(p.numel() for p in model.dit.parameters()) == model_info("official")["dit"]


# ---- issue 13: the released forward, pinned semantic by semantic ------------------------------------

def _features(cfg, m_valid=17, start=30.0, duration=17.4, seed=0):
    from engine.model.encoders import Features

    g = torch.Generator().manual_seed(seed)
    m = cfg.seconds
    mask = torch.zeros(1, m, dtype=torch.bool)
    mask[:, :m_valid] = True
    pad = lambda x: x * mask.reshape(1, m, *([1] * (x.dim() - 2))).to(x.dtype)  # noqa: E731
    return Features(clip=pad(torch.randn(1, m, 512, generator=g)), color=pad(torch.rand(1, m, 3072, generator=g)),
                    scene=pad((torch.rand(1, m, generator=g) > 0.8).long()), beat=pad(torch.rand(1, m, generator=g)),
                    mask=mask, start=torch.tensor([start]), duration=torch.tensor([duration]))


def test_semantic_tokens_go_through_proj_out2_and_ignore_the_unused_proj_out(tmp_path):
    cfg = _official_debug()
    sd = _write_official_ckpt(tmp_path / "a.ckpt", cfg, ema=False)
    sd["diffusion.conditioner.conditioners.semantic.proj_out.weight"] = torch.full_like(
        sd["diffusion.conditioner.conditioners.semantic.proj_out.weight"], 1e6)  # garbage in the dead layer
    torch.save({"state_dict": sd}, tmp_path / "b.ckpt")
    import_official(tmp_path / "a.ckpt", tmp_path / "a", config=cfg)
    import_official(tmp_path / "b.ckpt", tmp_path / "b", config=cfg)
    (ma, _), (mb, _) = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    f = _features(cfg)
    sem_a, _ = ma.conditioner.conditioners["semantic"](f)
    sem_b, _ = mb.conditioner.conditioners["semantic"](f)
    torch.testing.assert_close(sem_a, sem_b)
    w = sd["diffusion.conditioner.conditioners.semantic.proj_out2.weight"]
    b = sd["diffusion.conditioner.conditioners.semantic.proj_out2.bias"]
    torch.testing.assert_close(sem_a, f.clip @ w.T + b)  # proj_out1 is the Identity at 512 -> 512


def test_predictor_normalises_the_padded_window_as_the_released_code():
    """The authors z-score the whole zero-padded window (unbiased std + 1e-6) and mask no key, so on
    a short window the padded rows change the valid seconds' prediction; cutscore's format-1
    ("valid") normalisation does not let them."""
    cfg = _official_debug()
    torch.manual_seed(0)
    enc = DiffV2M(cfg).conditioner.eval()
    with torch.no_grad():  # trained-like weights: the zero-initialised attention outputs would hide mixing
        for prm in enc.parameters():
            prm.normal_(0, 0.05)
    pred = enc.predictor
    f = _features(cfg, m_valid=17)
    cls = torch.tensor([cfg.encoders.class_id])
    x = f.clip
    ref_in = (x - x.mean(dim=(1, 2), keepdim=True)) / (x.std(dim=(1, 2), unbiased=True, keepdim=True) + 1e-6)
    ref_in = ref_in + pred.scene_embedding(f.scene) + pred.pseudo_linear(f.beat[..., None])
    ref_in = torch.cat([pred.class_embedding(cls)[:, None], ref_in], dim=1)
    ref = pred.transformer(ref_in, None)[:, 1:]
    got = enc.predict_rhythm(f)
    torch.testing.assert_close(got, ref)
    # the padded rows count: changing their scene flags changes the valid seconds' output
    f2 = f._replace(scene=f.scene.clone().index_fill_(1, torch.tensor([25]), 1))
    assert not torch.allclose(enc.predict_rhythm(f2)[:, :17], got[:, :17])
    # "valid" (format-1 models) ignores them
    pred.input_norm = "valid"
    v1, v2 = enc.predict_rhythm(f), enc.predict_rhythm(f2)
    torch.testing.assert_close(v1[:, :17], v2[:, :17])
    assert not torch.allclose(v1[:, :17], got[:, :17])


def test_official_preset_feeds_class_2_and_the_released_start_and_total():
    off = load_config("official")
    assert off.encoders.class_id == 2 and off.encoders.start_time == "zero" and off.predictor.input_norm == "window"
    cfg = _official_debug()
    torch.manual_seed(0)
    enc = DiffV2M(cfg).conditioner.eval()
    f = _features(cfg, start=30.0, duration=17.4)  # the second window of a long piece
    cond = enc(f, torch.zeros(1, cfg.seconds, 1))
    k = enc.conditioners
    c = cfg.dit.cond_dim
    torch.testing.assert_close(cond.global_cond[:, 2 * c:], k["class"].int_embedder.weight[2][None])
    torch.testing.assert_close(cond.global_cond[:, :c], k["seconds_start"](torch.tensor([0.0])))
    torch.testing.assert_close(cond.global_cond[:, c:2 * c], k["seconds_total"](torch.tensor([18.0])))
    # models trained here keep the continuous start time in the piece
    paper = load_config("paper")
    assert paper.encoders.start_time == "piece"
    cfg.encoders = dataclasses.replace(cfg.encoders, start_time="piece")
    enc.cfg = cfg
    cond = enc(f, torch.zeros(1, cfg.seconds, 1))
    torch.testing.assert_close(cond.global_cond[:, :c], k["seconds_start"](torch.tensor([30.0])))


def test_format_1_models_load_with_their_names_and_normalisation(tmp_path):
    """A format-1 folder (semantic `proj_out`, no input_norm) loads through the explicit upgrade."""
    import json

    from safetensors.torch import load_file, save_file

    from engine.model.checkpoint import save_model

    cfg = load_config("debug")
    torch.manual_seed(0)
    save_model(tmp_path / "v2", DiffV2M(cfg))
    meta = json.loads((tmp_path / "v2" / "config.json").read_text())
    meta["format_version"] = 1
    del meta["model"]["predictor"]["input_norm"]
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "config.json").write_text(json.dumps(meta))
    state = load_file(str(tmp_path / "v2" / "model.safetensors"))
    old = {k.replace("semantic.proj_out2.", "semantic.proj_out."): v for k, v in state.items()}
    save_file(old, str(tmp_path / "v1" / "model.safetensors"))
    model, _ = load_model(tmp_path / "v1")
    assert model.cfg.predictor.input_norm == "valid"
    torch.testing.assert_close(model.state_dict()["conditioner.conditioners.semantic.proj_out2.weight"],
                               state["conditioner.conditioners.semantic.proj_out2.weight"])
    assert load_config(tmp_path / "v1").predictor.input_norm == "valid"


def test_cli_import_official_ema(tmp_path, capsys):
    from ui.cli import main

    cfg = _official_debug()
    sd = _write_official_ckpt(tmp_path / "model_odf.ckpt", cfg)
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    assert main(["import-official", str(tmp_path / "model_odf.ckpt"), "-o", str(tmp_path / "ema"), "--ema",
                 "--config", str(tmp_path / "cfg.json")]) == 0
    model, _ = load_model(tmp_path / "ema")
    torch.testing.assert_close(model.state_dict()["dit.transformer.project_in.weight"],
                               sd["diffusion_ema.ema_model.model.model.transformer.project_in.weight"])
