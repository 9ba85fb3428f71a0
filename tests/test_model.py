"""Diff-V2M model properties on the debug config (CPU, seconds): docs/MODEL_SPEC.md and issue 3."""

import dataclasses

import numpy as np
import pytest
import torch

from core.errors import CutscoreError
from core.model_config import DiTConfig, ModelConfig, load_config
from engine.model.diffusion import DiffV2M, drop_streams, null_cond
from engine.model.dit import DiT, HierarchicalBlock
from engine.model.encoders import Features
from engine.model.pipeline import Pipeline, WindowFeatures
from engine.model.sampling import sample_ddim, sample_dpmpp_2m, schedule


def _features(cfg: ModelConfig, B: int = 2, M: int | None = None, seed: int = 0) -> Features:
    g = torch.Generator().manual_seed(seed)
    M = M or cfg.seconds
    return Features(clip=torch.randn(B, M, cfg.encoders.clip_dim, generator=g),
                    color=torch.rand(B, M, cfg.encoders.color_dim, generator=g),
                    scene=(torch.rand(B, M, generator=g) > 0.8).long(), beat=torch.rand(B, M, generator=g),
                    mask=torch.ones(B, M, dtype=torch.bool), start=torch.tensor([0.0, 12.5])[:B],
                    duration=torch.tensor([30.0, 17.0])[:B])


def _model(cfg=None, seed=0) -> DiffV2M:
    cfg = cfg or load_config("debug")
    torch.manual_seed(seed)
    m = DiffV2M(cfg).eval()
    # zero-initialised branch outputs make an untrained DiT ignore its conditions; perturb every
    # parameter so the properties below are tested on a network that actually uses them
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def _inputs(cfg, B=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, cfg.dit.latent_dim, 40, generator=g)
    t = torch.rand(B, generator=g)
    return x, t


def test_config_presets_round_trip_through_json():
    for name in ("paper", "official", "debug"):
        cfg = load_config(name)
        assert ModelConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    off = load_config("official").dit
    assert (off.norm_placement, off.emotion_source, off.fusion) == ("replace", "rhythm", "film_select")
    assert load_config("official").encoders.max_seconds == 30.0
    with pytest.raises(ValueError, match="unknown fusion"):
        ModelConfig(dit=DiTConfig(fusion="concat")).validate()


def test_forward_backward_reaches_every_trainable_part():
    m = _model()
    m.train()
    cfg = m.cfg
    f = _features(cfg)
    latents = torch.randn(2, cfg.dit.latent_dim, 50)
    rhythm = torch.randn(2, cfg.seconds, 1)
    out = m.loss(latents, f, rhythm, use_pred=torch.tensor([True, False]), generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert all(g is not None for n, g in grads.items() if n.startswith("dit.")), "DiT params without grad"
    pred_params = [n for n in grads if ".extractor." in n]
    assert pred_params and all(grads[n] is not None for n in pred_params)


def test_predictor_gets_no_diffusion_gradient():
    m = _model()
    cfg = m.cfg
    f = _features(cfg)
    cond, pred = m.condition(f, rhythm=None)
    v = m.dit(torch.randn(2, cfg.dit.latent_dim, 30), torch.rand(2), cond)
    v.pow(2).mean().backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in m.conditioner.predictor.parameters())


@pytest.mark.parametrize("fusion", ["weighted", "additive", "select", "film_pre", "film_post", "film_select"])
@pytest.mark.parametrize("norm", ["pre", "replace"])
def test_every_fusion_and_norm_placement_runs(fusion, norm):
    cfg = load_config("debug")
    cfg.dit = dataclasses.replace(cfg.dit, fusion=fusion, norm_placement=norm)
    m = _model(cfg)
    cond, _ = m.condition(_features(cfg))
    x, t = _inputs(cfg)
    v = m.dit(x, t, cond)
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_padded_tokens_do_not_change_the_output():
    m = _model()
    cfg = m.cfg
    f = _features(cfg, M=20)
    cond, _ = m.condition(f)
    x, t = _inputs(cfg)
    ref = m.dit(x, t, cond)
    # pad every stream with 7 junk tokens that are masked out
    def pad(tok, mask):
        junk = torch.randn(tok.shape[0], 7, tok.shape[2]) * 10
        return torch.cat([tok, junk], 1), torch.cat([mask, torch.zeros(mask.shape[0], 7, dtype=torch.bool)], 1)
    emo, emo_m = pad(cond.emo, cond.emo_mask)
    sem, sem_m = pad(cond.sem, cond.sem_mask)
    rhy, rhy_m = pad(cond.rhy, cond.rhy_mask)
    padded = cond._replace(emo=emo, emo_mask=emo_m, sem=sem, sem_mask=sem_m, rhy=rhy, rhy_mask=rhy_m)
    torch.testing.assert_close(m.dit(x, t, padded), ref, rtol=1e-5, atol=1e-6)
    # padded latent frames (masked) leave the real frames' output unchanged
    xp = torch.cat([x, torch.randn(2, x.shape[1], 9) * 5], dim=2)
    xm = torch.cat([torch.ones(2, 40, dtype=torch.bool), torch.zeros(2, 9, dtype=torch.bool)], 1)
    torch.testing.assert_close(m.dit(xp, t, cond, xm)[..., :40], ref, rtol=1e-5, atol=1e-6)
    # and padded seconds of the features (mask False) do not change the conditioning's effect
    f30 = _features(cfg, M=cfg.seconds)
    f30 = f30._replace(clip=torch.cat([f.clip, torch.randn(2, 10, 512)], 1),
                       color=torch.cat([f.color, torch.rand(2, 10, 3072)], 1),
                       scene=torch.cat([f.scene, torch.ones(2, 10, dtype=torch.long)], 1),
                       beat=torch.cat([f.beat, torch.rand(2, 10)], 1),
                       mask=torch.cat([f.mask, torch.zeros(2, 10, dtype=torch.bool)], 1))
    # (the DiT with a rhythm that ignores padding: the "valid" predictor normalisation; the released
    # "window" one depends on the padding on purpose, pinned in test_checkpoint.py)
    m.conditioner.predictor.input_norm = "valid"
    cond30, pred30 = m.condition(f30)
    torch.testing.assert_close(m.dit(x, t, cond30), m.dit(x, t, m.condition(f)[0]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pred30[:, :20], m.condition(f)[1], rtol=1e-4, atol=1e-5)


def test_feature_selection_switches_branch_at_t_0_2_exactly():
    cfg = load_config("debug").dit
    h_sem, h_rhy = torch.ones(3, 4, 5), -torch.ones(3, 4, 5)
    t = torch.tensor([0.2, torch.nextafter(torch.tensor(0.2), torch.tensor(1.0)).item(), 0.19999])
    out = HierarchicalBlock._select(t, h_sem, h_rhy, cfg.select_t)
    assert out[0].eq(-1).all(), "t = 0.2 is not > 0.2: the rhythmic branch"
    assert out[1].eq(1).all(), "just above 0.2: the semantic branch"
    assert out[2].eq(-1).all()
    # and inside the network: the output at t = 0.2 ignores the semantic stream, just above it does not
    m = _model()
    cond, _ = m.condition(_features(m.cfg))
    x, _ = _inputs(m.cfg)
    sem_changed = cond._replace(sem=cond.sem + torch.randn_like(cond.sem))
    for tv, same in ((0.2, True), (float(t[1]), False)):
        tt = torch.full((2,), tv)
        a, b = m.dit(x, tt, cond), m.dit(x, tt, sem_changed)
        assert torch.equal(a, b) == same, tv


def test_zeroing_all_streams_is_the_unconditional_branch():
    m = _model()
    cond, _ = m.condition(_features(m.cfg))
    x, t = _inputs(m.cfg)
    uncond = m.dit(x, t, null_cond(cond))
    # guidance 0 returns exactly the unconditional half of the batched forward
    torch.testing.assert_close(m.denoiser(cond, 0.0)(x, t), uncond, rtol=1e-5, atol=1e-6)
    # CFG dropout with p = 1 drops every stream to the same zeros (global kept)
    dropped = drop_streams(cond, 1.0)
    torch.testing.assert_close(m.dit(x, t, dropped), uncond)
    assert torch.equal(dropped.global_cond, cond.global_cond)
    assert not torch.allclose(m.dit(x, t, cond), uncond)


def test_batched_guidance_equals_two_separate_forwards():
    m = _model()
    cond, _ = m.condition(_features(m.cfg))
    x, t = _inputs(m.cfg)
    g = 3.0
    v_c, v_u = m.dit(x, t, cond), m.dit(x, t, null_cond(cond))
    torch.testing.assert_close(m.denoiser(cond, g)(x, t), v_u + g * (v_c - v_u), rtol=1e-4, atol=1e-5)
    calls = []
    handle = m.dit.register_forward_hook(lambda *a: calls.append(1))
    m.denoiser(cond, g)(x, t)
    handle.remove()
    assert len(calls) == 1, "guidance must be one batched forward"


def _window(cfg, seconds=12, start=3.0, seed=0) -> WindowFeatures:
    rng = np.random.default_rng(seed)
    scene = np.zeros(seconds, np.float32)
    scene[[2, 7]] = 1
    return WindowFeatures(rng.normal(size=(seconds, 512)).astype(np.float32), rng.random((seconds, 3072)).astype(np.float32),
                          scene, rng.random(seconds).astype(np.float32), start, float(seconds) - 0.5)


def _pipeline() -> Pipeline:
    pipe = Pipeline.load("debug", device="cpu")
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(5)
        for p in pipe.model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return pipe


def test_pipeline_is_seeded_and_exact_length():
    pipe = _pipeline()
    w = _window(pipe.cfg)
    a = pipe.generate(w, seed=7, steps=4, sampler="ddim")
    b = pipe.generate(w, seed=7, steps=4, sampler="ddim")
    c = pipe.generate(w, seed=8, steps=4, sampler="ddim")
    assert np.array_equal(a.audio, b.audio) and torch.equal(a.latents, b.latents)
    assert not np.array_equal(a.audio, c.audio)
    assert a.audio.shape == (2, round(w.duration_s * pipe.cfg.sample_rate))
    assert a.rhythm.shape == (12, 1)
    steps_seen = []
    pipe.generate(w, seed=7, steps=5, sampler="dpmpp-2m", callback=lambda k, n: steps_seen.append((k, n)))
    assert steps_seen == [(k, 5) for k in range(1, 6)]


def test_save_load_round_trip_gives_identical_output(tmp_path):
    from engine.model.checkpoint import load_model, save_model

    pipe = _pipeline()
    save_model(tmp_path / "m", pipe.model, pipe.vae)
    model2, vae2 = load_model(tmp_path / "m")
    pipe2 = Pipeline(model2, vae2, "cpu")
    w = _window(pipe.cfg)
    a, b = pipe.generate(w, seed=3, steps=3), pipe2.generate(w, seed=3, steps=3)
    assert np.array_equal(a.audio, b.audio)
    assert (tmp_path / "m" / "config.json").exists() and not (tmp_path / "m.tmp").exists()


def test_inpainting_leaves_latents_outside_the_region_bit_identical():
    pipe = _pipeline()
    w = _window(pipe.cfg)
    first = pipe.generate(w, seed=1, steps=6, sampler="ddim")
    for sampler in ("ddim", "dpmpp-2m"):
        again = pipe.regenerate(w, first.latents, 4.0, 7.0, seed=2, steps=6, sampler=sampler)
        fps = pipe.cfg.sample_rate / pipe.cfg.downsampling
        a, b = int(np.floor(4.0 * fps)), int(np.ceil(7.0 * fps))
        assert torch.equal(again.latents[..., :a], first.latents[..., :a])
        assert torch.equal(again.latents[..., b:], first.latents[..., b:])
        assert not torch.equal(again.latents[..., a:b], first.latents[..., a:b])


def test_an_edited_rhythm_changes_only_its_seconds():
    """The editor's curve over seconds 4-7 of a window: the latents outside those seconds are the
    prediction's, bit-identical (same seed); inside they differ; an edit outside a regenerate's
    region changes nothing; progress counts both passes."""
    pipe = _pipeline()
    w = _window(pipe.cfg)
    plain = pipe.generate(w, seed=3, steps=4, sampler="dpmpp-2m")
    curve = np.full(len(w.scene), np.nan, np.float32)
    curve[4:7] = 2.5
    steps_seen = []
    edited = pipe.generate(dataclasses.replace(w, rhythm=curve), seed=3, steps=4, sampler="dpmpp-2m",
                           callback=lambda k, n: steps_seen.append((k, n)))
    fps = pipe.cfg.sample_rate / pipe.cfg.downsampling
    a, b = int(np.floor(4 * fps)), int(np.ceil(7 * fps))
    assert torch.equal(edited.latents[..., :a], plain.latents[..., :a])
    assert torch.equal(edited.latents[..., b:], plain.latents[..., b:])
    assert not torch.allclose(edited.latents[..., a:b], plain.latents[..., a:b], atol=1e-3)
    assert steps_seen == [(k, 8) for k in range(1, 9)]
    # the whole window edited: one pass, on the curve everywhere
    whole = pipe.generate(dataclasses.replace(w, rhythm=np.full(len(w.scene), 2.5, np.float32)), seed=3, steps=4,
                          sampler="dpmpp-2m")
    assert not torch.allclose(whole.latents[..., :a], plain.latents[..., :a], atol=1e-3)
    # a regenerate of seconds 8-10 with the edit at 4-7: the same as without the edit
    r0 = pipe.regenerate(w, plain.latents, 8.0, 10.0, seed=5, steps=4)
    r1 = pipe.regenerate(dataclasses.replace(w, rhythm=curve), plain.latents, 8.0, 10.0, seed=5, steps=4)
    assert torch.equal(r0.latents, r1.latents)
    with pytest.raises(CutscoreError, match="two passes"):
        pipe.generate_batch([dataclasses.replace(w, rhythm=curve)], seeds=[1], steps=2)


def test_batched_windows_equal_windows_generated_one_by_one():
    pipe = _pipeline()
    ws = [_window(pipe.cfg, start=0.0), _window(pipe.cfg, start=9.5)]
    ws[1].clip[:] = ws[1].clip[::-1]
    one = [pipe.generate(w, seed=s, steps=3, sampler="dpmpp-2m") for w, s in zip(ws, (4, 9))]
    both = pipe.generate_batch(ws, seeds=[4, 9], steps=3, sampler="dpmpp-2m")
    for a, b in zip(one, both):
        assert a.audio.shape == b.audio.shape and a.rhythm.shape == b.rhythm.shape
        assert torch.allclose(a.latents, b.latents, atol=1e-4), (a.latents - b.latents).abs().max()
    assert not torch.allclose(both[0].latents, both[1].latents, atol=1e-2)


def test_chunked_decode_matches_whole_decode():
    """Chunked VAE decode (bounded memory for long windows) gives the whole decode's audio where
    the overlap covers the decoder's receptive field, and the exact length."""
    pipe = _pipeline()
    lat = torch.randn(1, pipe.cfg.dit.latent_dim, 40, generator=torch.Generator().manual_seed(0))
    whole = pipe.vae.decode(lat, num_samples=39 * pipe.cfg.downsampling)
    chunked = pipe.vae.decode(lat, num_samples=39 * pipe.cfg.downsampling, chunk_frames=16, overlap=8)
    assert chunked.shape == whole.shape
    err = (chunked - whole).abs().max() / whole.abs().max()
    assert err < 0.05, err
    assert torch.equal(pipe.vae.decode(lat, chunk_frames=64), pipe.vae.decode(lat))  # one chunk: whole decode
    with pytest.raises(ValueError):
        pipe.vae.decode(lat, chunk_frames=16, overlap=16)


def test_samplers_agree_on_an_analytic_denoiser():
    """With data from a point mass x0 the exact v is known; both samplers must land on x0."""
    x0 = torch.full((1, 2, 8), 0.7)

    def v_exact(x, t):
        a, s = torch.cos(t * torch.pi / 2)[:, None, None], torch.sin(t * torch.pi / 2)[:, None, None]
        eps = (x - a * x0) / s.clamp(min=1e-8)
        return a * eps - s * x0

    noise = torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(0))
    for fn, steps in ((sample_ddim, 50), (sample_dpmpp_2m, 10)):
        out = fn(v_exact, noise, schedule(steps))
        torch.testing.assert_close(out, x0, rtol=1e-3, atol=1e-3)


def test_odf_lr_of_a_click_track_peaks_in_the_right_seconds():
    from engine.features.audio import odf_lr, rhythm_target

    sr, secs = 22050, 10
    y = np.random.default_rng(0).normal(0, 1e-4, sr * secs).astype(np.float32)
    clicks = [1.0, 3.2, 5.0, 7.6, 8.9]
    for c in clicks:
        i = int(c * sr)
        y[i:i + 200] += np.hanning(200) * np.sign(np.sin(np.arange(200)))
    odf = odf_lr(y, sr, seconds=secs)
    assert odf.shape == (secs, 1)
    peaks = set(np.flatnonzero(odf[:, 0] > 0.5 * odf.max()))
    assert peaks == {round(c) for c in clicks}
    z = rhythm_target(y, sr, "odf", seconds=secs)
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4
    for rep in ("mel", "tem"):
        r = rhythm_target(np.stack([y, y]), sr, rep, seconds=secs)
        assert r.shape == (secs, 16) and np.isfinite(r).all()


def test_dit_init_scale_halves_parameters():
    cfg = load_config("debug").dit
    torch.manual_seed(0)
    a = DiT(cfg)
    torch.manual_seed(0)
    b = DiT(dataclasses.replace(cfg, init_scale=0.5))
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q, p * 0.5, msg=n)


def test_time_aligned_cross_attention_makes_the_streams_positional():
    """Without cross_rope_fps the per-second tokens are a bag (permuting them changes nothing);
    with it, which second a token belongs to matters (the demo model's switch)."""
    for fps, positional in ((0.0, False), (8000 / 512, True)):
        cfg = load_config("debug")
        cfg.dit = dataclasses.replace(cfg.dit, cross_rope_fps=fps, fusion="additive")
        m = _model(cfg)
        cond, _ = m.condition(_features(cfg))
        x, t = _inputs(cfg)
        perm = torch.randperm(cfg.seconds, generator=torch.Generator().manual_seed(0))
        sem_perm = torch.cat([cond.sem[:, perm], cond.sem[:, cfg.seconds:]], dim=1)
        rhy_perm = torch.cat([cond.rhy[:, perm], cond.rhy[:, cfg.seconds:]], dim=1)
        shuffled = cond._replace(emo=cond.emo[:, perm], sem=sem_perm, rhy=rhy_perm)
        same = torch.allclose(m.dit(x, t, cond), m.dit(x, t, shuffled), rtol=1e-4, atol=1e-5)
        assert same != positional, fps


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_generation_runs_under_autocast_and_matches_the_cpu_closely():
    """On CUDA the conditioners and the DiT run under bf16 (else fp16) autocast, as the authors
    run them; the music stays finite and close to the fp32 CPU result for the same seed."""
    w = WindowFeatures.zeros(8, 0.0, 8.0)
    cpu = Pipeline.load("debug", device="cpu").generate(w, seed=0, steps=4)
    gpu = Pipeline.load("debug", device="cuda").generate(w, seed=0, steps=4)
    assert np.isfinite(gpu.audio).all() and gpu.audio.shape == cpu.audio.shape
    rel = np.abs(gpu.latents.numpy() - cpu.latents.numpy()).max() / np.abs(cpu.latents.numpy()).max()
    assert rel < 0.1, rel


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_compiled_and_batched_generation_match_eager():
    """`cutscore serve --compile reduce-overhead` (torch.compile + CUDA graphs) and windows batched
    on the GPU give the eager single-window music for the same seeds, within bf16 noise."""
    w = WindowFeatures.zeros(8, 0.0, 8.0)
    eager = Pipeline.load("debug", device="cuda")
    a = eager.generate(w, seed=3, steps=4)
    b = Pipeline.load("debug", device="cuda", compile="reduce-overhead").generate(w, seed=3, steps=4)
    c = eager.generate_batch([w, w], seeds=[3, 4], steps=4)
    for other in (b.latents, c[0].latents):
        rel = (other - a.latents).abs().max() / a.latents.abs().max()
        assert rel < 0.05, rel
    assert not torch.allclose(c[0].latents, c[1].latents)


def test_the_samplers_are_named_once():
    """The engine implements exactly the samplers the request types, the command line and the panel offer."""
    from core.api import SAMPLER_NAMES
    from engine.model.sampling import SAMPLERS
    from ui.cli import build_parser
    from ui.panel.state import SAMPLERS as PANEL

    assert set(SAMPLERS) == set(SAMPLER_NAMES) == set(PANEL) and PANEL[0] == "dpmpp-2m"
    score = build_parser()._subparsers._group_actions[0].choices["score"]
    assert next(a for a in score._actions if "--sampler" in a.option_strings).choices == list(SAMPLER_NAMES)
