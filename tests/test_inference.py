"""engine/inference.py: what a window is conditioned on, read when the window needs it."""

from __future__ import annotations

from types import SimpleNamespace

from core.api import Settings
from plugin.commands.plan import make_plan
from plugin.commands.score import build_request
from plugin.formats.timeline import read_timeline
from tests.conftest import ROOT

DEMO = ROOT / "resources" / "demo" / "demo.otio"


def test_a_clips_features_are_read_when_a_window_first_needs_them_and_dropped_behind(tmp_path, monkeypatch):
    """The demo edit (5 clips, 20 s) in three 8 s windows: the first window reads only the clips under
    its seconds, the next drops the clips that ended before it, and a clip whose media is gone is
    told at once (cut-only conditioning) and never read. `extract` is a recorder standing in for the
    feature extractor (engine/features, tested on its own in tests/test_features.py)."""
    import engine.features
    from engine.inference import ClipFeatures, window_features

    read = []

    def extract(media, start_s, end_s, cuts_s, config):
        read.append(round(start_s, 3))
        n = max(1, int(end_s - start_s + 0.999))
        return SimpleNamespace(seconds=n, clip=[[1.0] * 4] * n, color=[[0.5] * 3072] * n, beat=[0.25] * n)

    monkeypatch.setattr(engine.features, "extract", extract)
    plan = make_plan(read_timeline(DEMO), window_s=8.0, overlap_s=1.0)
    req = build_request(plan, "demo", Settings(seed=1), tmp_path)
    gone = req.clips[3].model_copy(update={"media": str(tmp_path / "moved.mp4")})
    req = req.model_copy(update={"clips": [*req.clips[:3], gone, req.clips[4]]})
    warnings: list[str] = []
    pipe = SimpleNamespace(cfg=SimpleNamespace(clip_model=None, clip_pretrained=None))
    feats = ClipFeatures(req, pipe, warnings)
    assert read == [] and len(warnings) == 1 and "clip 3 'metal': media not found" in warnings[0]

    w0 = req.windows[0]
    under = [c for c in req.clips if c.start_s < w0.start_s + w0.duration_s]
    wf = window_features(req, 0, feats, clip_dim=4)
    assert read == [round(c.source_start_s, 3) for c in under]  # the clips under window 0, each once
    assert float(wf.beat[0]) == 0.25
    window_features(req, 0, feats, clip_dim=4)
    assert len(read) == len(under)  # kept while the windows need them

    w1 = req.windows[1]
    feats.forget_before(w1.start_s)
    kept = {i for i in feats._feats if feats._feats[i] is not None}
    assert kept == {c.index for c in req.clips if c.start_s + c.duration_s > w1.start_s} & {c.index for c in under}
    per_window = {0: wf}
    for i in range(1, len(req.windows)):
        feats.forget_before(req.windows[i].start_s)
        per_window[i] = window_features(req, i, feats, clip_dim=4)
    assert sorted(set(read)) == sorted(round(c.source_start_s, 3) for c in req.clips if c.index != 3)
    assert len(read) == len(set(read)) == 4  # no clip read twice, the gone one never
    # every second whose middle lies in the clip whose media is gone is cut-only (zeros), the others not
    for i, w in enumerate(req.windows):
        for k, beat in enumerate(per_window[i].beat):
            t = w.start_s + min(k + 0.5, w.duration_s - 1e-3)
            assert float(beat) == (0.0 if gone.start_s <= t < gone.start_s + gone.duration_s else 0.25), (i, k, t)
