"""The `cutscore` command line's options, declared once: the editor's commands and the engine's
(whose options are checked here, then handed to engine/tools.py as parsed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.api import SAMPLER_NAMES, Settings
from core.paths import DEFAULT_CLIP, DEFAULT_PORT
from core.terminal import one_line as _one_line
from plugin.commands.like import VARY
from plugin.commands.score import ScoreOptions
from plugin.finish.ducking import DUCK_DB
from ui.cli.commands import (
    cmd_conform,
    cmd_demo,
    cmd_doctor,
    cmd_panel,
    cmd_plan,
    cmd_regenerate,
    cmd_resolve,
    cmd_score,
    engine_command,
)
from ui.cli.types import (
    _beat_markers,
    _duck,
    _frame_rate,
    _port,
    _positive_float,
    _positive_int,
    _seconds,
    _seconds_list,
    _seed,
    _window_s,
    field_bounds,
    field_choices,
    field_default,
    field_type,
)

S = ScoreOptions  # the score's options: each flag below that sets one takes its type, range, choices and default there
_STEPS = field_bounds(Settings, "steps")


class _Parser(argparse.ArgumentParser):
    """One line for bad options, naming the fix, exit 2 (argparse prints the whole usage)."""

    def error(self, message: str):
        self.exit(2, _one_line(f"{self.prog}: error: {message} (see `{self.prog} --help`)") + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cutscore", description="Music for an edited video, written into your timeline "
                                "(Diff-V2M through OpenTimelineIO: Kdenlive, DaVinci Resolve, Premiere).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def add(name: str, fn, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    _edit_commands(add)
    _conform_command(add)
    _engine_commands(add)
    _model_commands(add)
    _weights_command(add)
    return p


def _timeline_opts(sp) -> None:
    sp.add_argument("timeline", help=".otio/.otioz/.otiod, FCP7 .xml, CMX 3600 .edl or .kdenlive")
    sp.add_argument("--rate", type=_frame_rate, help="frame rate for an EDL (EDLs carry none), e.g. 24 or 29.97")
    sp.add_argument("--relink", metavar="DIR", help="find missing media in DIR by file name")
    sp.add_argument("--sequence", metavar="NAME",
                    help="a Kdenlive project's sequence other than the active one (its name in the bin, or its uuid)")
    sp.add_argument("--max-hours", type=_positive_float, default=6.0, help="longest timeline read (default 6)")
    sp.add_argument("--max-clips", type=_positive_int, default=5000, help="most picture clips read (default 5000)")
    sp.add_argument("--max-file-mb", type=_positive_float, default=256.0,
                    help="largest timeline file read (default 256 MB)")


def _engine_opts(sp) -> None:
    sp.add_argument("--model", help="model folder or preset (default: the demo model, else debug)")
    sp.add_argument("--engine", help="engine URL, or `local` for in-process (default: a running server, else local)")
    sp.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    sp.add_argument("--steps", type=field_type(S, "steps", whole=True),
                    help=f"sampler steps, {_STEPS[0]:g}..{_STEPS[2]:g} (default: the model's)")
    sp.add_argument("--guidance", type=field_type(S, "guidance"), help="classifier-free guidance scale (default: the model's)")
    sp.add_argument("--sampler", choices=list(SAMPLER_NAMES), help="sampler (default: the model's)")


def _edit_commands(add) -> None:
    """The editor's commands: demo, plan, score, regenerate."""
    sp = add("demo", cmd_demo, "Score the bundled demo timeline (resources/demo) with the demo model.")
    sp.add_argument("-o", "--output", default=str(Path("out") / "demo"), help="output folder (default ./out/demo)")
    sp.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    sp.add_argument("--engine", help="engine URL, or `local` (default: in-process)")

    sp = add("plan", cmd_plan, "Show how a timeline is split into generation windows.")
    _timeline_opts(sp)
    sp.add_argument("--model", help="the model score will use, whose window the plan follows (default: as score)")
    sp.add_argument("--window", type=_window_s,
                    help="longest generation window in seconds (default: the model's, as `score` will use)")
    sp.add_argument("--json", action="store_true", help="print the plan as JSON")

    sp = add("score", cmd_score, "Write music for a timeline and a new timeline with the music track.")
    _timeline_opts(sp)
    _engine_opts(sp)
    sp.add_argument("-o", "--output", required=True, help="the new timeline (.otio, .otioz, .xml, .kdenlive)")
    sp.add_argument("--at-cuts", choices=field_choices(S, "at_cuts"), default=field_default(S, "at_cuts"),
                    help="a window that starts at a cut continues the music (default) or changes character")
    sp.add_argument("--no-hit-sync", action="store_true",
                    help="leave the music as generated (default: move the nearest strong onset onto each cut and hit)")
    sp.add_argument("--hits", type=_seconds_list, metavar="S,S,...",
                    help="extra hit points in seconds from the timeline start (e.g. Resolve's markers)")
    sp.add_argument("--ending", choices=field_choices(S, "ending"), default=field_default(S, "ending"),
                    help="how the music ends on the last frame: ring (default: it decays to silence, from the final "
                         "cut when the edit ends on one), fade (the last 2 s), cut (stopped as generated)")
    sp.add_argument("--tail", type=field_type(S, "tail_s", " s", "a ring may run that far past the last frame"),
                    default=field_default(S, "tail_s"), metavar="S",
                    help="let the ring run S seconds past the last frame (music generated that far; default 0: "
                         "silent by the last frame); only with --ending ring")
    sp.add_argument("--duck", type=_duck, default=field_default(S, "duck_db"), metavar="auto|off|DB",
                    help="lower the music under the dialogue of the timeline's audio tracks: auto (default, "
                         f"{DUCK_DB:g} dB), off, or a level in dB")
    sp.add_argument("--duck-attack", type=field_type(S, "duck_attack_s", " s"), default=field_default(S, "duck_attack_s"),
                    metavar="S", help=f"seconds the music takes to go down before speech (default "
                                      f"{field_default(S, 'duck_attack_s'):g})")
    sp.add_argument("--duck-release", type=field_type(S, "duck_release_s", " s"),
                    default=field_default(S, "duck_release_s"), metavar="S",
                    help=f"seconds it takes to come back after speech (default {field_default(S, 'duck_release_s'):g})")
    _rhythm_opts(sp)
    _like_opts(sp)
    _level_opts(sp)
    sp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")

    _regenerate_command(add)


def _level_opts(sp) -> None:
    """The music's loudness and the WAVs' rate."""
    lo, _, hi, _ = field_bounds(S, "sample_rate")
    sp.add_argument("--loudness", type=field_type(S, "loudness", " LUFS", "music for video: -23 to -14"),
                    default=field_default(S, "loudness"),
                    help=f"integrated loudness target, LUFS (default {field_default(S, 'loudness'):g})")
    sp.add_argument("--sample-rate", type=field_type(S, "sample_rate", " Hz", "editors use 48000", whole=True),
                    default=field_default(S, "sample_rate"),
                    help=f"WAV sample rate, {lo}..{hi} (default {field_default(S, 'sample_rate')})")


def _regenerate_command(add) -> None:
    sp = add("regenerate", cmd_regenerate, "Regenerate the music under one clip of a scored timeline.")
    sp.add_argument("scored", help="a timeline written by `cutscore score`")
    sp.add_argument("--clip", required=True, help="clip index (from `cutscore plan`) or name")
    sp.add_argument("-o", "--output", help="the new timeline (default: next to SCORED, versioned)")
    sp.add_argument("--seed", type=_seed, help="random seed (default: a new one)")
    sp.add_argument("--engine", help="engine URL, or `local`")
    _rhythm_opts(sp, regenerate=True)
    _like_opts(sp, regenerate=True)
    sp.add_argument("--vary", choices=list(VARY),
                    help="a new take that keeps the current take's feel: the take itself as the reference, subtle "
                         f"(strength {VARY['subtle']:g}) or strong ({VARY['strong']:g}); not with --like")
    sp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def _like_opts(sp, regenerate: bool = False) -> None:
    """A reference the music follows (plugin/commands/like.py)."""
    keep = " (default: the score's reference, if it had one)" if regenerate else ""
    sp.add_argument("--like", metavar="SOURCE",
                    help="music like this: an audio file (WAV, FLAC, OGG, MP3...) laid from the first frame, or "
                         f"track:NAME, the timeline's own audio track (its temp music) as it plays{keep}; you need "
                         "the rights to it")
    sp.add_argument("--like-strength", type=field_type(S, "like_strength", hint="0: no reference, 1: the reference as it is"),
                    default=None if regenerate else field_default(S, "like_strength"), metavar="X",
                    help="how closely the music follows the reference: 0 (not at all) to 1 (the reference as it is; "
                         + ("default: the score's)" if regenerate else f"default {field_default(S, 'like_strength'):g})"))


def _conform_command(add) -> None:
    sp = add("conform", cmd_conform, "The cut changed: move the scored music with the picture, keep what is kept, "
             "generate only the new seconds.")
    sp.add_argument("scored", help="a timeline written by `cutscore score` (found through its sidecar)")
    sp.add_argument("new", help="the new cut, in any format cutscore reads (the scored file re-saved, or a new export)")
    sp.add_argument("-o", "--output", required=True, help="the conformed timeline (.otio, .otioz, .otiod, .xml, "
                    ".kdenlive when NEW is a .kdenlive)")
    sp.add_argument("--json", action="store_true", help="print the change list as JSON")
    sp.add_argument("--seed", type=_seed, help="random seed of the new seconds (default: the score's)")
    sp.add_argument("--rate", type=_frame_rate, help="frame rate for an EDL (EDLs carry none), e.g. 24 or 29.97")
    sp.add_argument("--engine", help="engine URL, or `local`")
    sp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def _rhythm_opts(sp, regenerate: bool = False) -> None:
    """The editor's rhythm and the beats handed back (plugin/commands/rhythm.py, plugin/finish/beats.py)."""
    keep = "; default: the curve the score used" if regenerate else "; default: the prediction"
    sp.add_argument("--rhythm", metavar="FILE",
                    help="the rhythm to follow: a CSV (seconds,value) or JSON ({\"seconds\": [...], \"values\": [...]}, "
                         f"as `cutscore plan SCORED --json` prints it); an empty value keeps the prediction{keep}")
    sp.add_argument("--beat-markers", type=_beat_markers, default=None if regenerate else field_default(S, "beat_markers"),
                    metavar="{downbeats,all,off}",
                    help="which of the music's beats to write as markers on its clips: the downbeats (the bars), "
                         "every beat, or none " + ("(default: as the score did)" if regenerate else "(default downbeats)"))


def _engine_commands(add) -> None:
    """The engine and the applications: features, resolve, serve, panel."""
    sp = add("features", engine_command, "Per-second visual features of a video (scene onsets, beats, colour, CLIP).")
    sp.add_argument("video", help="a video file")
    sp.add_argument("--start", type=_seconds, default=0.0, help="source start in seconds (default 0)")
    sp.add_argument("--end", type=_seconds, help="source end in seconds (default: the end of the file)")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.add_argument("--clip-model", default=DEFAULT_CLIP[0], help=f"open_clip model name (default {DEFAULT_CLIP[0]})")
    sp.add_argument("--clip-pretrained", default="openai", help="open_clip pretrained tag or a local checkpoint (default openai)")
    sp.add_argument("--no-clip", action="store_true", help="skip CLIP (its column shows 0)")

    sp = add("resolve", cmd_resolve, "DaVinci Resolve: install the Workspace > Scripts > Edit > cutscore launchers.")
    rsub = sp.add_subparsers(dest="resolve_cmd", metavar="ACTION", required=True, parser_class=_Parser)
    ri = rsub.add_parser("install", help="write the launchers into Resolve's per-user scripts folder",
                         description="Write the launchers into Resolve's per-user scripts folder (Edit page).")
    ri.add_argument("--dry-run", action="store_true", help="print where the launchers would go, write nothing")
    ri.add_argument("--os", choices=["linux", "darwin", "win32"], help="the OS whose folder to use (default: this one)")
    rr = rsub.add_parser("run", help="the Lua launchers' work outside Resolve (they call it)",
                         description="Score an exported Resolve timeline, or regenerate the take of a music WAV, and "
                                     "print what to place where (for plugin/resolve_launcher.lua).")
    rr.add_argument("action", choices=["score", "regenerate"])
    rr.add_argument("target", help="score: the exported .otio; regenerate: the music WAV under the playhead")
    rr.add_argument("--rate", type=_frame_rate, default=24.0, help="the timeline's timelineFrameRate setting (score)")
    rr.add_argument("--start-frame", type=_seed, default=0, help="the timeline's GetStartFrame() (score)")
    rr.add_argument("--markers", type=_seconds_list, default=[],
                    help="the timeline's marker frames, from its start (score)")
    rr.add_argument("--no-panel", action="store_true", help="score without opening the panel")
    rr.add_argument("--extra", action="append", metavar="=ARG",
                    help="an argument for `cutscore score`/`regenerate`/`panel` (repeat; write --extra=--steps)")

    sp = add("serve", engine_command, "Run the local engine (HTTP on 127.0.0.1) that keeps the model warm.")
    sp.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    sp.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others print a warning)")
    sp.add_argument("--model", help="model folder or preset to load before the first job")
    sp.add_argument("--store", help="the SQLite job store (default: jobs.sqlite3 in the user's config folder)")
    sp.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"],
                    help="where the model runs (default auto: CUDA, then Apple's Metal, then the CPU; or "
                         "CUTSCORE_DEVICE)")
    sp.add_argument("--compile", choices=["default", "reduce-overhead", "max-autotune"],
                    help="torch.compile the DiT (GPU; reduce-overhead adds CUDA graphs: 2.8x faster sampling steps "
                         "of the paper-size model on an H200 after about a minute of compiling)")

    sp = add("panel", cmd_panel, "Open the editor's panel (PyQt6).")
    sp.add_argument("timeline", nargs="?", help="a timeline to open")
    sp.add_argument("--screenshot", metavar="PNG", help="render the window to PNG and exit")


def _model_commands(add) -> None:
    """Models: train, evaluate, import-official, weights, model-info, doctor."""
    sp = add("train", engine_command, "Prepare data and train Diff-V2M.")
    tsub = sp.add_subparsers(dest="train_cmd", metavar="STEP", required=True)
    t = tsub.add_parser("preprocess", help="features, rhythm targets and latents of a corpus",
                        description="Preprocess a folder of music videos (or video + same-stem audio pairs) into a dataset.")
    t.add_argument("source", help="a folder of videos")
    t.add_argument("-o", "--output", required=True, help="the dataset folder to write")
    t.add_argument("--vae", help="a VAE folder (model_config.json + model.safetensors); default Stable Audio Open's")
    t.add_argument("--rhythm", choices=["odf", "mel", "tem"], default="odf", help="rhythm representation (default odf)")
    t.add_argument("--clip-model", default=DEFAULT_CLIP[0], help=f"open_clip model (default {DEFAULT_CLIP[0]})")
    t.add_argument("--clip-pretrained", default="openai", help="open_clip pretrained tag or file ('' for random init)")
    t.add_argument("--no-clip", action="store_true", help="no CLIP features (zeros)")
    t.add_argument("--keep-vocals", action="store_true", help="skip vocal removal")
    t = tsub.add_parser("fit", help="train from a config", description="Train with PyTorch Lightning (see README).")
    t.add_argument("config", help="a train config .json (engine/train/module.py, TrainConfig)")
    t = tsub.add_parser("synth", help="a synthetic paired corpus", description="Write a synthetic video/music corpus.")
    t.add_argument("-o", "--output", required=True, help="the folder to write")
    t.add_argument("--count", type=_positive_int, default=100, help="number of video/music pairs (default 100)")
    t.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    t.add_argument("--duration", type=_positive_float, default=40.0, help="seconds per pair (default 40)")
    t.add_argument("--music", choices=["synth", "gm"], default="synth",
                   help="synth: oscillators at 8 kHz (the shipped demo model's corpus); gm: General MIDI "
                        "instruments through FluidSynth at 16 kHz (needs fluidsynth and fluid-soundfont-gm)")

    sp = add("evaluate", engine_command, "FAD, FD, KL, density and coverage of generated music against references "
             "(VGGish, PANNs CNN14 and LAION-CLAP weights as local files: a column says what is missing), and the "
             "onsets against the videos' cuts.")
    sp.add_argument("generated", help="a folder of generated audio (paired with the references by file name)")
    sp.add_argument("reference", help="a folder of reference audio")
    sp.add_argument("--videos", metavar="DIR", help="the videos (their cuts.json or scene detection), for cut alignment")
    sp.add_argument("--json", action="store_true", help="print JSON")

    sp = add("import-official", engine_command, "Convert the authors' Diff-V2M checkpoint (model_odf.ckpt).")
    sp.add_argument("checkpoint", help="model_odf.ckpt from the Hugging Face repo TaylorJi/Diff-V2M")
    sp.add_argument("-o", "--output", required=True, help="the model folder to write")
    sp.add_argument("--ema", action="store_true", help="take the EMA copy of the DiT (default: the online DiT)")
    sp.add_argument("--allow-pickle", action="store_true", help="allow unpickling objects beyond tensors (trusted files only)")
    sp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    sp.add_argument("--config", default="official",
                    help="the model config the checkpoint was built from (default: the `official` preset)")

    sp = add("model-info", engine_command, "Parameter counts by part of a config or model folder.")
    sp.add_argument("config", help="a preset (paper, official, debug), a config .json or a model folder")
    sp.add_argument("--json", action="store_true", help="print JSON")

    sp = add("doctor", cmd_doctor, "Check Python, torch and its device, weights, ffmpeg, melt and the server.")
    sp.add_argument("--json", action="store_true", help="print JSON")


def _weights_command(add) -> None:
    """`cutscore weights list|get NAME` (engine/weights.py)."""
    sp = add("weights", engine_command, "The released weights: list them, or get one (download, verify, convert).")
    wsub = sp.add_subparsers(dest="weights_cmd", metavar="ACTION", required=True, parser_class=_Parser)
    w = wsub.add_parser("list", help="each model's files: source, size, licence, where on this machine, verified",
                        description="Each model's files: what, source, size, licence, gated, where, verified.")
    w.add_argument("--json", action="store_true", help="print JSON")
    w = wsub.add_parser("get", help="download (resumably), verify by sha256 and convert a model",
                        description="Download through the Hugging Face hub (its cache, HF_TOKEN or `hf auth login`), "
                                    "verify every file's sha256 and convert the official checkpoint once.")
    w.add_argument("name", choices=["official", "sao-vae", "clip", "all"],
                   help="official: the Diff-V2M checkpoint, converted; sao-vae: Stable Audio Open 1.0's autoencoder; "
                        "clip: open_clip ViT-B-32-quickgelu/openai; all: the three")
    w.add_argument("--config", help="the model config the official checkpoint was built from (default: "
                                     "CUTSCORE_OFFICIAL_CONFIG, else the `official` preset)")
    w.add_argument("--allow-pickle", action="store_true",
                   help="allow unpickling objects beyond tensors in the checkpoint (trusted files only)")
