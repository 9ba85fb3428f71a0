"""The editor's commands (demo, plan, score, regenerate, resolve, panel, doctor) and the door to
the engine's own (features, serve, train, evaluate, import-official, model-info: engine/tools.py, in
a child process through core.client.run_tool). Torch-free: docs/ARCHITECTURE.md, layers.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from core.errors import CutscoreError
from core.paths import DEMO_MODEL, DEMO_TIMELINE, ROOT
from core.terminal import err as _err
from core.terminal import out as _out
from core.terminal import shown as _shown
from plugin.names import TRACK_NAME


def cmd_doctor(args) -> int:
    from core.client import find_server, tool_json
    from core.tool_options import Runtime

    info = tool_json(Runtime())  # torch and its device: asked of the engine's own process
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


def _limits(args):
    from plugin.formats.timeline import Limits

    return Limits(max_hours=args.max_hours, max_clips=args.max_clips, max_file_mb=args.max_file_mb)


def cmd_plan(args) -> int:
    from core.model_config import model_window_s
    from plugin.commands.plan import make_plan
    from plugin.commands.score import default_model
    from plugin.formats.timeline import read_timeline

    tl = read_timeline(args.timeline, rate=args.rate, relink=args.relink, limits=_limits(args), sequence=args.sequence)
    window = args.window if args.window is not None else model_window_s(args.model or default_model()[0])
    plan = make_plan(tl, window_s=window)
    for w in tl.warnings:
        _err(f"cutscore: warning: {w}")
    state = _scored(args.timeline, tl)
    rhythm = _scored_rhythm(state)
    like = state.like if state is not None else None
    if args.json:
        _out(json.dumps({**plan.to_dict(), "rhythm": rhythm, "like": like.model_dump() if like else None}, indent=2))
    else:
        _out(plan.describe())
        if rhythm is not None:
            edited = sum(rhythm["edited"])
            _out("  rhythm (per second): " + " ".join(f"{v:+.2f}" for v in rhythm["values"])
                 + (f"  ({edited} s edited)" if edited else ""))
        if like is not None:
            _out(f"  reference: {like.describe()}")
    return 0


def _scored(path, tl):
    """A scored timeline's sidecar record; None for a timeline not scored."""
    from plugin.commands.state import load_state
    from plugin.formats.timeline import music_track

    if music_track(tl.otio) is None:
        return None
    try:
        return load_state(path, tl.otio)[1]
    except CutscoreError:
        return None


def _scored_rhythm(state) -> dict | None:
    """A scored timeline's rhythm (plugin/commands/rhythm.py curve_doc: the prediction and the editor's curve),
    the form `--rhythm FILE` reads; None for a timeline not scored."""
    from plugin.commands.rhythm import curve_doc
    from plugin.commands.state import predicted_rhythm

    return None if state is None else curve_doc(predicted_rhythm(state), state.request.rhythm)


def cmd_demo(args) -> int:
    import time

    from core.client import connect
    from core.model_config import model_window_s
    from core.signal import cut_alignment
    from plugin.commands.plan import make_plan
    from plugin.commands.score import ScoreOptions, score_timeline
    from plugin.formats.timeline import read_timeline

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
    a = cut_alignment(r.music, r.sample_rate, r.cuts_s)
    _out(f"wrote {out} (open it in Resolve or Kdenlive, or `cutscore panel {out}`)")
    _out(f"music: {r.sidecar} ({r.segments} WAVs, 24-bit {r.sample_rate} Hz, {r.gain_db:+.1f} dB to -14 LUFS)")
    _out(f"cut alignment: {a['hit']}/{len(r.cuts_s)} cuts have a musical onset within 100 ms; "
         f"onset F-measure against the cuts {a['f']:.2f} (precision {a['p']:.2f}, recall {a['r']:.2f})")
    for c, d in zip(r.cuts_s, a["nearest_ms"]):
        _out(f"  cut at {c:7.3f} s: nearest onset {d:+.0f} ms")
    _out(f"done in {time.monotonic() - t0:.0f} s")
    return 0


class _Progress:
    """Engine progress on stderr: a line when the stage changes or every 10 %, with the time left."""

    def __init__(self):
        from core.terminal import TimeLeft

        self.last, self.left = None, TimeLeft()

    def __call__(self, st) -> None:
        key = (st.stage, int(st.progress * 10))
        left = self.left(st.progress) if st.state == "running" else ""
        if key != self.last and st.state in ("running", "done"):
            self.last = key
            _err(f"cutscore: {st.progress:4.0%} {st.stage}: {st.message}" + (f" ({left})" if left else ""))


def score_options(args, hits_s: list[float] = ()):
    """The score's options as `cutscore score`'s flags give them (and hit points given as numbers:
    Resolve's markers)."""
    from plugin.commands.score import ScoreOptions

    return ScoreOptions(model=args.model, seed=args.seed, steps=args.steps, guidance=args.guidance,
                        sampler=args.sampler, loudness=args.loudness, sample_rate=args.sample_rate, force=args.force,
                        hits_s=[*(args.hits or []), *hits_s], hit_sync=not args.no_hit_sync, at_cuts=args.at_cuts,
                        sequence=args.sequence, ending=args.ending, tail_s=args.tail, duck_db=args.duck,
                        duck_attack_s=args.duck_attack, duck_release_s=args.duck_release, rhythm_file=args.rhythm,
                        beat_markers=args.beat_markers, like=args.like, like_strength=args.like_strength)


def cmd_score(args, hits_s: list[float] = ()) -> int:
    from core.client import connect
    from plugin.commands.score import score_timeline

    r = score_timeline(args.timeline, args.output, connect(args.engine), score_options(args, hits_s), rate=args.rate,
                       relink=args.relink, on_progress=_Progress(), limits=_limits(args))
    for n in r.notices:
        _err(f"cutscore: warning: {n}")
    _out(f"wrote {_shown(r.out)} with the track '{TRACK_NAME}' ({r.segments} clips, model {r.model}, "
         f"gain {r.gain_db:+.1f} dB to {args.loudness:g} LUFS)")
    if r.ducking is not None:
        _out(f"{r.ducking.report()}")
    _out(f"music: {_shown(r.sidecar)}")
    _rights(r.like)
    return 0


def _rights(like) -> None:
    if like is not None:
        from plugin.commands.like import RIGHTS

        _out("cutscore: " + RIGHTS.format(what=f"track {like.track!r}" if like.track else like.source,
                                          strength=like.strength))


def cmd_regenerate(args) -> int:
    from core.client import connect
    from plugin.commands.regenerate import regenerate_clip

    r = regenerate_clip(args.scored, args.clip, connect(args.engine), out_path=args.output, seed=args.seed,
                        force=args.force, on_progress=_Progress(), rhythm_file=args.rhythm,
                        beat_markers=args.beat_markers, like=args.like, like_strength=args.like_strength,
                        vary=args.vary)
    _out(f"regenerated clip {r.clip} {r.name!r} (seed {r.seed}): {r.wav}")
    _rights(r.like if args.like else None)
    _out(f"wrote {_shown(r.out)}")
    return 0


def cmd_conform(args) -> int:
    import json

    from core.client import connect
    from plugin.commands.conform import conform

    r = conform(args.scored, args.new, args.output, connect(args.engine), seed=args.seed, force=args.force,
                rate=args.rate, on_progress=None if args.json else _Progress())
    for n in r.notices:
        _err(f"cutscore: warning: {n}")
    if args.json:
        _out(json.dumps(r.to_json(), indent=2))
        return 0
    _out(f"{'new':>4} {'old':>4}  {'kind':<9} {'record (s)':>17}  {'kept s':>7} {'made s':>7}")
    for c in r.changes:
        kept = sum(b - a for a, b, _ in c.kept)
        made = sum(max(0.0, min(b, c.record_s[1]) - max(a, c.record_s[0])) for a, b in r.generated)
        old = "-" if c.old_clip is None else str(c.old_clip)
        _out(f"{c.new_clip:>4} {old:>4}  {c.kind:<9} {c.record_s[0]:8.3f}-{c.record_s[1]:8.3f}  {kept:7.3f} {made:7.3f}")
    if r.deleted:
        _out(f"deleted old clips: {', '.join(str(i) for i in r.deleted)}")
    _out(f"music kept {r.kept_s:.3f} s (sample for sample), generated {r.generated_s:.3f} s "
         f"in {len(r.generated)} span(s)")
    _out(f"wrote {_shown(r.out)}")
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
    """`cutscore resolve run score|regenerate`: the Lua launchers' half outside Resolve. Scores (or
    regenerates) through the plugin, with the flags the launcher passes on read by the same parser
    as `cutscore score` (`regenerate`) and Resolve's markers as hit points, then reads the sidecar
    once and prints "cutscore-clip\tWAV\tSTART\tEND\tRECORD" per music clip to place (score) or
    "cutscore-take\tWAV" (regenerate), "cutscore-marker\tWAV\tFRAME\tCOLOR\tNAME" per beat marker on
    the item playing WAV, then "cutscore-done" (plugin/resolve_launcher.lua reads them)."""
    from plugin import resolve as rs
    from ui.cli.parser import build_parser

    extra = list(args.extra or [])
    rate = rs.exact_rate(args.rate)
    try:
        if args.action == "score":
            src = Path(args.target)
            out = src.with_name(f"{src.stem}-scored.otio")
            if args.no_panel:
                cmd_score(build_parser().parse_args(["score", str(src), "-o", str(out), "--force", *extra]),
                          hits_s=[f / rate for f in args.markers])
            else:
                cmd_panel(build_parser().parse_args(["panel", str(src), *extra]))  # it writes <stem>-scored.otio
            view = rs.read_view(out.with_name(out.stem + ".cutscore"))
            placed = rs.placements(view, args.start_frame, rate)
            for wav, first, last, record in placed:
                _out(f"cutscore-clip\t{wav}\t{first}\t{last}\t{record}")
            for wav, *_ in placed:
                _marker_lines(view, wav, rate)
            if note := view.ducking_note():
                _out(note)
        else:
            view, seg = rs.segment_for_wav(Path(args.target))
            out = Path(view.scored).with_name(Path(view.scored).stem + "-regenerated.otio")
            cmd_regenerate(build_parser().parse_args(["regenerate", view.scored, "--clip", str(seg.index), "-o",
                                                      str(out), "--force", *extra]))
            view = rs.read_view(view.side)  # the regenerate's new take
            take = view.side / view.segment(seg.wav).wav
            _out(f"cutscore-take\t{take}")
            _marker_lines(view, take, rate)
    except rs.ResolveError as e:
        raise CutscoreError(str(e).removeprefix("cutscore: ")) from e
    _out("cutscore-done")
    return 0


def _marker_lines(view, wav: Path, rate: float) -> None:
    """The beat markers of the item playing `wav`, for the Lua launcher (M.mark_beats)."""
    for frame, color, name in view.beat_marks(wav.name, rate):
        _out(f"cutscore-marker\t{wav}\t{frame}\t{color}\t{name}")


def cmd_panel(args) -> int:
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ui.panel.window import run_panel

    code = run_panel(args.timeline, args.screenshot)
    if args.screenshot:
        _out(f"wrote {args.screenshot}")
    return code


def engine_command(args) -> int:
    """An engine command (engine/tools.py): the options as parsed here, run in the engine's process."""
    from core.client import run_tool
    from core.tool_options import options

    return run_tool(options(args.command, {k: v for k, v in vars(args).items() if k not in ("fn", "command")}))
