"""core/tool_options.py: each engine command's options, one record shared by the command line, the
panel, the spawned engine and the engine's own process (engine/tools.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from core.errors import CutscoreError
from core.tool_options import TOOLS, ModelInfo, Serve, VisualBeats, WeightsGet, command_of, options, to_json
from tests.conftest import ROOT
from ui.cli import build_parser

# one command line per engine command and step, the required arguments only: the rest are defaults
LINES = [
    ["model-info", "debug"],
    ["import-official", "model_odf.ckpt", "-o", "out"],
    ["weights", "list"],
    ["weights", "get", "clip"],
    ["features", "video.mp4"],
    ["serve"],
    ["train", "preprocess", "videos", "-o", "data"],
    ["train", "fit", "train.json"],
    ["train", "synth", "-o", "corpus"],
    ["evaluate", "generated", "reference"],
]


def _parsed(line: list[str]) -> dict:
    args = build_parser().parse_args(line)
    return {k: v for k, v in vars(args).items() if k not in ("fn", "command")}


@pytest.mark.parametrize("line", LINES, ids=[" ".join(x[:2]) for x in LINES])
def test_every_engine_command_line_is_its_record_with_the_same_defaults(line):
    values = _parsed(line)
    record = options(line[0], values)
    assert dataclasses.asdict(record) == values  # every name the parser writes is a field, and no field is missing
    # the defaults are declared once: what argparse fills in is the record's own default
    for f in dataclasses.fields(record):
        if f.default is not dataclasses.MISSING:
            assert values[f.name] == f.default, (line, f.name, values[f.name], f.default)


def test_the_engine_runs_exactly_the_commands_that_have_records():
    from engine.tools import COMMANDS

    assert set(COMMANDS) == set(TOOLS)
    parser_commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert set(TOOLS) - {"runtime", "visual-beats"} <= parser_commands  # those two only the panel and doctor run


def test_a_record_travels_as_json_and_comes_back_equal():
    for record in (Serve(port=9000, model="demo", device="cpu"), WeightsGet(name="all"),
                   VisualBeats(ranges=[("a.mp4", 0.0, 2.5)])):
        back = options(command_of(record), json.loads(to_json(record)))
        assert back == record


def test_a_misspelled_or_mistyped_option_is_refused_in_one_line():
    with pytest.raises(CutscoreError, match=r"^engine command model-info: jsn: Unexpected keyword argument$"):
        options("model-info", {"config": "debug", "jsn": True})
    with pytest.raises(CutscoreError, match=r"^engine command serve: port: Input should be a valid integer"):
        options("serve", {"port": "eighty"})
    with pytest.raises(CutscoreError, match=r"^engine command train: train_cmd must be one of preprocess, fit, synth$"):
        options("train", {"train_cmd": "tune"})
    with pytest.raises(CutscoreError, match="unknown engine command"):
        options("render", {})
    assert options("model-info", {"config": "debug"}) == ModelInfo(config="debug")


def test_the_engine_process_refuses_options_that_are_not_its_record():
    """The child checks what it is handed (a JSON written by another version of cutscore, or by hand)."""
    r = subprocess.run([sys.executable, "-m", "engine.tools", "model-info", '{"config": "debug", "jsn": true}'],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["cutscore: error: engine command model-info: jsn: Unexpected keyword argument"]
