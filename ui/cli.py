"""The `cutscore` command: the editor's command line, and the only code that talks to the terminal.

    cutscore --help
    cutscore plan resources/demo/demo.otio --json
    cutscore doctor

Torch-free at import (ARCHITECTURE.md): each subcommand imports what it needs when it runs, and
reaches the model only through engine.client. Errors the user can act on (CutscoreError) print as
one line `cutscore: error: ...` and exit 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from engine.api import SAMPLER_NAMES
from engine.errors import CutscoreError
from engine.paths import DEFAULT_CLIP, DEFAULT_PORT, DEMO_MODEL, ROOT

DEMO_TIMELINE = ROOT / "resources" / "demo" / "demo.otio"


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    """One message, one line: a control character in it (a file name holding a newline) is written
    escaped, as in a quoted name."""
    print(_one_line(text), file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return "".join(c.encode("unicode_escape").decode("ascii") if ord(c) < 32 or ord(c) == 127 else c for c in text)


def _shown(path) -> str:
    """A path as the terminal shows it: quoted and escaped when it holds a control character."""
    text = str(path)
    return f'"{_one_line(text)}"' if _one_line(text) != text else text


# ---- subcommands ---------------------------------------------------------------------------------

def cmd_doctor(args) -> int:
    from engine.client import find_server
    from engine.info import runtime_info

    info = runtime_info()
    server = find_server()
    info["server"] = server or "not running"
    if args.json:
        _out(json.dumps(info, indent=2))
        return 0
    _out(f"python     {info['python']}")
    _out(f"torch      {info['torch']} on {info['device']}")
    for name, where in info["weights"].items():
        _out(f"weights    {name}: {where}")
    for tool in ("ffmpeg", "melt"):
        _out(f"{tool:<10} {info['tools'][tool] or 'not found (apt-get install ' + tool + ')'}")
    _out(f"server     {info['server']}")
    return 0


def cmd_model_info(args) -> int:
    from engine.model.checkpoint import model_info

    info = model_info(args.config)
    if args.json:
        _out(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            _out(f"{k:<18} {v:>15,}  ({v / 1e6:,.1f} M)")
    return 0


def cmd_import_official(args) -> int:
    from engine.model.official import import_official

    out = Path(args.output)
    if out.exists() and not args.force:
        raise CutscoreError(f"{out}: already exists; choose another -o or pass --force")
    summary = import_official(args.checkpoint, out, ema=args.ema, allow_pickle=args.allow_pickle, config=args.config)
    _out(f"converted {summary['parameters']} tensors ({'EMA' if args.ema else 'online'} DiT) "
         f"and {summary['vae_parameters']} VAE tensors into {summary['out']}")
    if summary["dropped_unused"]:
        _out(f"dropped {len(summary['dropped_unused'])} tensors the released code builds but never uses")
    return 0


def _finite(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1 or v > 1_000_000:
        raise argparse.ArgumentTypeError(f"{v} is outside 1..1000000")
    return v


def _seconds(text: str) -> float:
    """A time in seconds: finite and not negative."""
    v = _finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v:g} s is before 0")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= v <= 2**62:  # the engine adds window numbers; torch takes seeds below 2**64
        raise argparse.ArgumentTypeError(f"{v} is outside 0..{2**62}")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{v} is outside 1..65535")
    return v


def _positive_float(text: str) -> float:
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v:g} must be more than 0")
    return v


def _limits(args):
    from plugin.timeline import Limits

    return Limits(max_hours=args.max_hours, max_clips=args.max_clips, max_file_mb=args.max_file_mb)


def _steps(text: str) -> int:
    v = _positive_int(text)
    if v > 1000:
        raise argparse.ArgumentTypeError(f"{v} is outside 1..1000")
    return v


def _loudness(text: str) -> float:
    v = _finite(text)
    if not -70.0 <= v <= 0.0:
        raise argparse.ArgumentTypeError(f"{v:g} LUFS is outside -70..0 (music for video: -23 to -14)")
    return v


def _sample_rate(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of Hz") from None
    if not 8000 <= v <= 192000:
        raise argparse.ArgumentTypeError(f"{v} Hz is outside 8000..192000 (editors use 48000)")
    return v


def _seconds_list(text: str) -> list[float]:
    out = []
    for part in filter(None, text.split(",")):
        v = _finite(part)
        if v < 0:
            raise argparse.ArgumentTypeError(f"{v:g} s is before the timeline start")
        out.append(v)
    return out


def _frame_rate(text: str) -> float:
    v = _finite(text)
    if not 1.0 <= v <= 1000.0:
        raise argparse.ArgumentTypeError(f"{v:g} fps is outside 1..1000 (e.g. 24, 25 or 29.97)")
    return v


def _window_s(text: str) -> float:
    v = _finite(text)
    if not 5.0 <= v <= 600.0:
        raise argparse.ArgumentTypeError(f"{v:g} s is outside 5..600 (a window holds two 2 s overlaps and more)")
    return v


def cmd_plan(args) -> int:
    from engine.model.config import model_window_s
    from plugin.plan import make_plan
    from plugin.score import default_model
    from plugin.timeline import read_timeline

    tl = read_timeline(args.timeline, rate=args.rate, relink=args.relink, limits=_limits(args), sequence=args.sequence)
    window = args.window if args.window is not None else model_window_s(args.model or default_model()[0])
    plan = make_plan(tl, window_s=window)
    for w in tl.warnings:
        _err(f"cutscore: warning: {w}")
    if args.json:
        _out(json.dumps(plan.to_dict(), indent=2))
    else:
        _out(plan.describe())
    return 0


def cmd_demo(args) -> int:
    import time

    from engine.client import connect
    from engine.eval.metrics import cut_alignment
    from engine.model.config import model_window_s
    from plugin.plan import make_plan
    from plugin.score import ScoreOptions, score_timeline
    from plugin.timeline import read_timeline

    t0 = time.monotonic()
    have_model = (DEMO_MODEL / "config.json").exists()
    tl = read_timeline(DEMO_TIMELINE)
    plan = make_plan(tl, window_s=model_window_s(str(DEMO_MODEL)) if have_model else 30.0)
    _out(plan.describe())
    if not have_model:
        _out("")
        _out("No model is installed yet: the demo model (resources/models/demo) is not built, so this demo "
             "stops at the score plan. See README.md, 'Weights'.")
        return 0
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "demo-scored.otio"
    _out("")
    _out(f"scoring with the demo model (small, trained on synthetic music: see {DEMO_MODEL / 'MODEL_CARD.md'})")
    r = score_timeline(DEMO_TIMELINE, out, connect(args.engine or "local"), ScoreOptions(model=str(DEMO_MODEL),
                       seed=args.seed, force=True), on_progress=_Progress())
    a = cut_alignment(r["music"], r["sample_rate"], r["cuts_s"])
    _out(f"wrote {out} (open it in Resolve or Kdenlive, or `cutscore panel {out}`)")
    _out(f"music: {r['sidecar']} ({r['segments']} WAVs, 24-bit {r['sample_rate']} Hz, {r['gain_db']:+.1f} dB to -14 LUFS)")
    _out(f"cut alignment: {a['hit']}/{len(r['cuts_s'])} cuts have a musical onset within 100 ms; "
         f"onset F-measure against the cuts {a['f']:.2f} (precision {a['p']:.2f}, recall {a['r']:.2f})")
    for c, d in zip(r["cuts_s"], a["nearest_ms"]):
        _out(f"  cut at {c:7.3f} s: nearest onset {d:+.0f} ms")
    _out(f"done in {time.monotonic() - t0:.0f} s")
    return 0


def cmd_features(args) -> int:
    from engine.features import FeatureConfig, extract_report

    cfg = FeatureConfig(clip_model=None if args.no_clip else args.clip_model, clip_pretrained=args.clip_pretrained or None)
    result = extract_report(args.video, start_s=args.start, end_s=args.end, config=cfg)
    if args.json:
        _out(json.dumps(result, indent=2))
        return 0
    _out(f"{result['media']}  [{result['start_s']:.3f} s, +{result['duration_s']:.3f} s)  "
         f"scene onsets by {result['scene_source']}")
    _out(f"{'second':>6} {'onset':>5} {'beat':>6} {'hue':>5} {'sat':>5} {'bright':>6} {'clip|v|':>7}")
    for i, (s, b, c, n) in enumerate(zip(result["scene_onset"], result["beat"], result["color_summary"],
                                         result["clip_norm"])):
        _out(f"{i:>6} {s:>5} {b:>6.3f} {c['hue']:>5.0f} {c['saturation']:>5.2f} {c['brightness']:>6.2f} {n:>7.2f}")
    return 0


class _Progress:
    """Engine progress on stderr: a line when the stage changes or every 10 %."""

    def __init__(self):
        self.last = None

    def __call__(self, st) -> None:
        key = (st.stage, int(st.progress * 10))
        if key != self.last and st.state in ("running", "done"):
            self.last = key
            _err(f"cutscore: {st.progress:4.0%} {st.stage}: {st.message}")


def cmd_score(args) -> int:
    from engine.client import connect
    from plugin.score import ScoreOptions, score_timeline

    opts = ScoreOptions(model=args.model, seed=args.seed, steps=args.steps, guidance=args.guidance,
                        sampler=args.sampler, loudness=args.loudness, sample_rate=args.sample_rate, force=args.force,
                        hits_s=args.hits or [], hit_sync=not args.no_hit_sync, at_cuts=args.at_cuts,
                        sequence=args.sequence)
    client = connect(args.engine)
    r = score_timeline(args.timeline, args.output, client, opts, rate=args.rate, relink=args.relink,
                       on_progress=_Progress(), limits=_limits(args))
    for n in r["notices"]:
        _err(f"cutscore: warning: {n}")
    _out(f"wrote {_shown(r['out'])} with the track 'cutscore music' ({r['segments']} clips, model {r['model']}, "
         f"gain {r['gain_db']:+.1f} dB to {args.loudness:g} LUFS)")
    _out(f"music: {_shown(r['sidecar'])}")
    return 0


def cmd_regenerate(args) -> int:
    from engine.client import connect
    from plugin.regenerate import regenerate_clip

    r = regenerate_clip(args.scored, args.clip, connect(args.engine), out_path=args.output, seed=args.seed,
                        force=args.force, on_progress=_Progress())
    _out(f"regenerated clip {r['clip']} {r['name']!r} (seed {r['seed']}): {r['wav']}")
    _out(f"wrote {_shown(r['out'])}")
    return 0


def cmd_resolve(args) -> int:
    from plugin.resolve import ResolveError, install

    if args.resolve_cmd == "run":
        return _resolve_run(args)
    try:
        paths = install(ROOT, sys.executable, dry_run=args.dry_run, system=args.os)
    except (ResolveError, OSError) as e:
        raise CutscoreError(str(e).removeprefix("cutscore: ")) from e
    verb = "would write" if args.dry_run else "wrote"
    for p in paths:
        _out(f"{verb} {_shown(p)}")
    if not args.dry_run:
        _out("in Resolve: Workspace > Scripts > Edit > cutscore (restart Resolve if the menu does not list it)")
    return 0


def _resolve_run(args) -> int:
    """`cutscore resolve run score|regenerate`: the Lua launchers' half outside Resolve. Prints
    "cutscore-clip\tWAV\tSTART\tEND\tRECORD" per music clip to place (score) or "cutscore-take\tWAV"
    (regenerate), then "cutscore-done" (plugin/resolve_launcher.lua reads them)."""
    from plugin import resolve as rs

    extra = list(args.extra or [])
    try:
        if args.action == "score":
            src = Path(args.target)
            rate = rs.exact_rate(args.rate)
            out = src.with_name(f"{src.stem}-scored.otio")
            if args.no_panel:
                hits = ["--hits", ",".join(f"{f / rate:.6f}" for f in args.markers)] if args.markers else []
                code = main(["score", str(src), "-o", str(out), "--force", *hits, *extra])
            else:
                code = main(["panel", str(src), *extra])  # the panel writes <stem>-scored.otio
            if code:
                return code
            side = out.with_name(out.stem + ".cutscore")
            if not (side / rs.STATE_FILE).exists():
                raise CutscoreError("no music was written (the panel was closed before Generate?)")
            state = json.loads((side / rs.STATE_FILE).read_text())
            for wav, first, last, record in rs.placements(state, side, args.start_frame, rate):
                _out(f"cutscore-clip\t{wav}\t{first}\t{last}\t{record}")
        else:
            side, state, seg = rs.segment_for_wav(Path(args.target))
            scored = Path(state["scored"])
            out = scored.with_name(scored.stem + "-regenerated.otio")
            code = main(["regenerate", str(scored), "--clip", str(seg["index"]), "-o", str(out), "--force", *extra])
            if code:
                return code
            state = json.loads((side / rs.STATE_FILE).read_text())
            seg = next(s for s in state["segments"] if s["kind"] == "clip" and s["index"] == seg["index"])
            _out(f"cutscore-take\t{side / seg['wav']}")
    except rs.ResolveError as e:
        raise CutscoreError(str(e).removeprefix("cutscore: ")) from e
    _out("cutscore-done")
    return 0


def cmd_serve(args) -> int:
    from engine.service.server import serve

    serve(host=args.host, port=args.port, model=args.model, store=args.store, announce=_out, compile=args.compile)
    return 0


def cmd_panel(args) -> int:
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ui.panel.window import run_panel

    code = run_panel(args.timeline, args.screenshot)
    if args.screenshot:
        _out(f"wrote {args.screenshot}")
    return code


def cmd_train(args) -> int:
    if args.train_cmd == "preprocess":
        from engine.train.preprocess import preprocess

        meta = preprocess(args.source, args.output, vae_dir=args.vae, rhythm=args.rhythm,
                          clip_model=None if args.no_clip else args.clip_model,
                          clip_pretrained=args.clip_pretrained or None, vocals=not args.keep_vocals,
                          log=lambda m: _err(f"cutscore: {m}"))
        _out(f"wrote {args.output}: {meta['splits']} segments (train/val/test), "
             f"{meta['dropped_for_silence']} dropped for silence")
        return 0
    if args.train_cmd == "fit":
        from engine.train.fit import fit, read_train_config

        fit(args.config)
        out = Path(read_train_config(args.config).out_dir) / "model"
        _out(f"trained: {out}")
        return 0
    if args.train_cmd == "synth":
        from engine.train.synth import write_corpus

        paths = write_corpus(args.output, count=args.count, seed=args.seed, duration_s=args.duration, music=args.music)
        _out(f"wrote {len(paths)} video/music pairs into {args.output}")
        return 0
    raise CutscoreError(f"unknown train step: {args.train_cmd}")


def cmd_evaluate(args) -> int:
    from engine.eval.metrics import evaluate

    table = evaluate(args.generated, args.reference, args.videos)
    if args.json:
        _out(json.dumps(table, indent=2))
        return 0
    for k, v in table.items():
        _out(f"{k:<32} {v:.4f}" if isinstance(v, float) else f"{k:<32} {v}")
    return 0


# ---- parser ----------------------------------------------------------------------------------------

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
    _engine_commands(add)
    _model_commands(add)
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
    sp.add_argument("--steps", type=_steps, help="sampler steps, 1..1000 (default: the model's)")
    sp.add_argument("--guidance", type=_finite, help="classifier-free guidance scale (default: the model's)")
    sp.add_argument("--sampler", choices=list(SAMPLER_NAMES), help="sampler (default: the model's)")


def _edit_commands(add) -> None:
    """The editor's commands: demo, plan, score, regenerate."""
    sp = add("demo", cmd_demo, "Score the bundled demo timeline (resources/demo) with the demo model.")
    sp.add_argument("-o", "--output", default=str(ROOT / "out" / "demo"), help="output folder (default ./out/demo)")
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
    sp.add_argument("--at-cuts", choices=["continue", "change"], default="continue",
                    help="a window that starts at a cut continues the music (default) or changes character")
    sp.add_argument("--no-hit-sync", action="store_true",
                    help="leave the music as generated (default: move the nearest strong onset onto each cut and hit)")
    sp.add_argument("--hits", type=_seconds_list, metavar="S,S,...",
                    help="extra hit points in seconds from the timeline start (e.g. Resolve's markers)")
    sp.add_argument("--loudness", type=_loudness, default=-14.0, help="integrated loudness target, LUFS (default -14)")
    sp.add_argument("--sample-rate", type=_sample_rate, default=48000, help="WAV sample rate, 8000..192000 (default 48000)")
    sp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")

    sp = add("regenerate", cmd_regenerate, "Regenerate the music under one clip of a scored timeline.")
    sp.add_argument("scored", help="a timeline written by `cutscore score`")
    sp.add_argument("--clip", required=True, help="clip index (from `cutscore plan`) or name")
    sp.add_argument("-o", "--output", help="the new timeline (default: next to SCORED, versioned)")
    sp.add_argument("--seed", type=_seed, help="random seed (default: a new one)")
    sp.add_argument("--engine", help="engine URL, or `local`")
    sp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def _engine_commands(add) -> None:
    """The engine and the applications: features, resolve, serve, panel."""
    sp = add("features", cmd_features, "Per-second visual features of a video (scene onsets, beats, colour, CLIP).")
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

    sp = add("serve", cmd_serve, "Run the local engine (HTTP on 127.0.0.1) that keeps the model warm.")
    sp.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    sp.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others print a warning)")
    sp.add_argument("--model", help="model folder or preset to load before the first job")
    sp.add_argument("--store", help="the SQLite job store (default: jobs.sqlite3 in the user's config folder)")
    sp.add_argument("--compile", choices=["default", "reduce-overhead", "max-autotune"],
                    help="torch.compile the DiT (GPU; reduce-overhead adds CUDA graphs: 2.8x faster sampling steps "
                         "of the paper-size model on an H200 after about a minute of compiling)")

    sp = add("panel", cmd_panel, "Open the editor's panel (PyQt6).")
    sp.add_argument("timeline", nargs="?", help="a timeline to open")
    sp.add_argument("--screenshot", metavar="PNG", help="render the window to PNG and exit")


def _model_commands(add) -> None:
    """Models: train, evaluate, import-official, model-info, doctor."""
    sp = add("train", cmd_train, "Prepare data and train Diff-V2M.")
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

    sp = add("evaluate", cmd_evaluate, "FAD, FD, KL, density and coverage of generated music against references "
             "(VGGish, PANNs CNN14 and LAION-CLAP weights as local files: a column says what is missing), and the "
             "onsets against the videos' cuts.")
    sp.add_argument("generated", help="a folder of generated audio (paired with the references by file name)")
    sp.add_argument("reference", help="a folder of reference audio")
    sp.add_argument("--videos", metavar="DIR", help="the videos (their cuts.json or scene detection), for cut alignment")
    sp.add_argument("--json", action="store_true", help="print JSON")

    sp = add("import-official", cmd_import_official, "Convert the authors' Diff-V2M checkpoint (model_odf.ckpt).")
    sp.add_argument("checkpoint", help="model_odf.ckpt from the Hugging Face repo TaylorJi/Diff-V2M")
    sp.add_argument("-o", "--output", required=True, help="the model folder to write")
    sp.add_argument("--ema", action="store_true", help="take the EMA copy of the DiT (default: the online DiT)")
    sp.add_argument("--allow-pickle", action="store_true", help="allow unpickling objects beyond tensors (trusted files only)")
    sp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    sp.add_argument("--config", default="official",
                    help="the model config the checkpoint was built from (default: the `official` preset)")

    sp = add("model-info", cmd_model_info, "Parameter counts by part of a config or model folder.")
    sp.add_argument("config", help="a preset (paper, official, debug), a config .json or a model folder")
    sp.add_argument("--json", action="store_true", help="print JSON")

    sp = add("doctor", cmd_doctor, "Check Python, torch and its device, weights, ffmpeg, melt and the server.")
    sp.add_argument("--json", action="store_true", help="print JSON")


def _quiet_libraries() -> None:
    """Libraries log progress at INFO; the command line shows their warnings only, one line each."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="cutscore: %(name)s: %(message)s")
    for name in ("pyscenedetect", "huggingface_hub", "open_clip", "root"):
        logging.getLogger(name).setLevel(logging.ERROR if name == "root" else logging.WARNING)
    # OpenCV and its FFmpeg print straight to stderr ("moov atom not found", "VIDEOIO(FFMPEG)"):
    # a corrupt video gets our one line naming the file instead (set before cv2 is imported)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _terminated(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C, so every temporary file is removed on the way out
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return int(args.fn(args) or 0)
    except CutscoreError as e:
        _err(f"cutscore: error: {e}")
        return 2
    except OSError as e:  # a path the user gave: too long, unwritable, not found, a disk full
        where = e.filename or "a file"
        _err(f"cutscore: error: {where}: {e.strerror or e}; check the path, its folder and the free space")
        return 2
    except KeyboardInterrupt:
        _err("cutscore: interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - last resort: one line, details only on request
        if os.environ.get("CUTSCORE_DEBUG"):
            raise
        _err(f"cutscore: internal error: {type(e).__name__}: {e} (set CUTSCORE_DEBUG=1 for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
