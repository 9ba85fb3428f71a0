"""Where the engine runs (engine/device.py): auto picks CUDA, then Apple's Metal (MPS), then the CPU;
--device / CUTSCORE_DEVICE choose; a device that is not there is refused in one line. The backends
are faked here (this machine has neither a GPU nor a Mac): cutscore has not run on Apple hardware."""

from __future__ import annotations

import os

import pytest
import torch

from core.errors import CutscoreError
from engine.device import ENV, pick


@pytest.fixture
def backends(monkeypatch):
    """Set which backends torch reports: backends(cuda=..., mps=...)."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)

    def set_(cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return set_


def test_auto_picks_cuda_then_mps_then_the_cpu(backends):
    backends(cuda=True, mps=True)
    assert pick() == "cuda"
    backends(cuda=False, mps=True)
    assert pick() == "mps" and os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] == "1"  # an op Metal lacks: on the CPU
    backends(cuda=False, mps=False)
    assert pick() == "cpu" and pick("auto") == "cpu"


def test_the_flag_and_the_environment_choose_and_an_absent_device_is_refused(backends, monkeypatch):
    backends(cuda=False, mps=True)
    assert pick("cpu") == "cpu"
    monkeypatch.setenv(ENV, "cpu")
    assert pick() == "cpu" and pick("mps") == "mps"  # the flag wins over the environment
    for want, words in (("cuda", "no CUDA GPU"), ("cuda:1", "no CUDA GPU"), ("tpu", "choose auto, cuda, mps, cpu")):
        with pytest.raises(CutscoreError, match=words) as e:
            pick(want)
        assert "\n" not in str(e.value)
    backends(cuda=True, mps=False)
    with pytest.raises(CutscoreError, match="Metal"):
        pick("mps")
    assert pick("cuda:1") == "cuda:1"


def test_the_pipeline_loads_on_the_device_chosen(backends, monkeypatch):
    from engine.model.pipeline import Pipeline

    backends(cuda=False, mps=False)
    monkeypatch.setenv(ENV, "cpu")
    assert Pipeline.load("debug").device.type == "cpu"
    monkeypatch.setenv(ENV, "mps")
    with pytest.raises(CutscoreError, match="Metal"):
        Pipeline.load("debug")
