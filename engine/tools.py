"""The engine's own command line: the `cutscore` commands that need torch (features, serve, train,
evaluate, import-official, model-info and doctor's runtime half), run in a process of their own.

    python -m engine.tools model-info '{"config": "debug", "json": true}'

The editor's command line (ui/cli) parses and checks the options, then runs this with them as one
JSON object (core.client.run_tool): each command's options are one typed record (core/tool_options.py)
that both sides build and check, and the editor's side never imports torch (docs/ARCHITECTURE.md). What this prints is what `cutscore` prints.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from core.errors import CutscoreError
from core.terminal import err, out, run_command
from core.tool_options import options


def runtime(args) -> int:
    """doctor's half that needs torch: the Python, torch and its device, the weights, the tools."""
    from engine.info import runtime_info

    out(json.dumps(runtime_info()))
    return 0


def weights(args) -> int:
    """`cutscore weights list|get NAME` (engine/weights.py)."""
    from engine import weights as w

    if args.weights_cmd == "list":
        rows = w.listing()
        if args.json:
            out(json.dumps(rows, indent=2))
            return 0
        for r in rows:
            size = (f"{r['size_bytes'] / w.GB:.2f} GB" if r["path"] and r["size_bytes"] else
                    f"about {r['size_bytes'] / w.GB:.1f} GB" if r["size_bytes"] else "size: see the hub")
            state = ("verified" if r["verified"] else "HASH DIFFERS" if r["verified"] is False else
                     "here" if r["path"] else "not here")
            out(f"{r['name']:<9} {r['file']:<32} {size:<18} {state}")
            out(f"          {r['what']}; {r['repo'] or 'converted here'}; licence: {r['licence']}"
                + ("; gated: log in and accept it on " + r["page"] if r["gated"] else ""))
            if r["path"]:
                out(f"          at {r['path']}" + (f" (sha256 pinned by {r['pinned']})" if r["pinned"] else ""))
        return 0
    for line in w.get(args.name, config=args.config, allow_pickle=args.allow_pickle, log=lambda m: err(f"cutscore: {m}")):
        out(line)
    return 0


def model_info(args) -> int:
    from engine.model.checkpoint import model_info

    info = model_info(args.config)
    if args.json:
        out(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            out(f"{k:<18} {v:>15,}  ({v / 1e6:,.1f} M)")
    return 0


def import_official(args) -> int:
    from engine.model.official import import_official

    dest = Path(args.output)
    if dest.exists() and not args.force:
        raise CutscoreError(f"{dest}: already exists; choose another -o or pass --force")
    summary = import_official(args.checkpoint, dest, ema=args.ema, allow_pickle=args.allow_pickle, config=args.config)
    out(f"converted {summary['parameters']} tensors ({'EMA' if args.ema else 'online'} DiT) "
        f"and {summary['vae_parameters']} VAE tensors into {summary['out']}")
    if summary["dropped_unused"]:
        out(f"dropped {len(summary['dropped_unused'])} tensors the released code builds but never uses")
    return 0


def features(args) -> int:
    from engine.features import FeatureConfig, extract_report

    cfg = FeatureConfig(clip_model=None if args.no_clip else args.clip_model, clip_pretrained=args.clip_pretrained or None)
    result = extract_report(args.video, start_s=args.start, end_s=args.end, config=cfg)
    if args.json:
        out(json.dumps(result, indent=2))
        return 0
    out(f"{result['media']}  [{result['start_s']:.3f} s, +{result['duration_s']:.3f} s)  "
        f"scene onsets by {result['scene_source']}")
    out(f"{'second':>6} {'onset':>5} {'beat':>6} {'hue':>5} {'sat':>5} {'bright':>6} {'clip|v|':>7}")
    for i, (s, b, c, n) in enumerate(zip(result["scene_onset"], result["beat"], result["color_summary"],
                                         result["clip_norm"])):
        out(f"{i:>6} {s:>5} {b:>6.3f} {c['hue']:>5.0f} {c['saturation']:>5.2f} {c['brightness']:>6.2f} {n:>7.2f}")
    return 0


def visual_beats(args) -> int:
    """The panel's visual-beat lane: per-second beats of each [media, start_s, end_s] of `ranges`
    (no CLIP, no scene detection: the timeline's cuts are the scenes); a range whose media cannot be
    read answers null."""
    from engine.features import FeatureConfig, extract_report

    beats = []
    for media, a, b in args.ranges:
        try:
            beats.append(extract_report(media, a, b, cuts_s=[], config=FeatureConfig(clip_model=None))["beat"])
        except CutscoreError:
            beats.append(None)
    out(json.dumps({"beats": beats}))
    return 0


def serve(args) -> int:
    from engine.service.server import serve

    if args.device:
        from engine.device import ENV, pick

        os.environ[ENV] = pick(args.device)  # refused here, in one line, when absent
    serve(host=args.host, port=args.port, model=args.model, store=args.store, announce=out, compile=args.compile)
    return 0


def train(args) -> int:
    if args.train_cmd == "preprocess":
        from engine.train.preprocess import preprocess

        meta = preprocess(args.source, args.output, vae_dir=args.vae, rhythm=args.rhythm,
                          clip_model=None if args.no_clip else args.clip_model,
                          clip_pretrained=args.clip_pretrained or None, vocals=not args.keep_vocals,
                          log=lambda m: err(f"cutscore: {m}"))
        out(f"wrote {args.output}: {meta['splits']} segments (train/val/test), "
            f"{meta['dropped_for_silence']} dropped for silence")
    elif args.train_cmd == "fit":
        from engine.train.fit import fit, read_train_config

        fit(args.config)
        out(f"trained: {Path(read_train_config(args.config).out_dir) / 'model'}")
    elif args.train_cmd == "synth":
        from engine.train.synth import write_corpus

        paths = write_corpus(args.output, count=args.count, seed=args.seed, duration_s=args.duration, music=args.music)
        out(f"wrote {len(paths)} video/music pairs into {args.output}")
    else:
        raise CutscoreError(f"unknown train step: {args.train_cmd}")
    return 0


def evaluate(args) -> int:
    from engine.eval.metrics import evaluate

    table = evaluate(args.generated, args.reference, args.videos)
    if args.json:
        out(json.dumps(table, indent=2))
        return 0
    for k, v in table.items():
        out(f"{k:<32} {v:.4f}" if isinstance(v, float) else f"{k:<32} {v}")
    return 0


COMMANDS = {"runtime": runtime, "model-info": model_info, "import-official": import_official, "weights": weights, "features": features,
            "visual-beats": visual_beats, "serve": serve, "train": train, "evaluate": evaluate}


def _follow_parent(pid: int) -> None:
    """End with the command line that started this (it may be killed without a word): a server
    must not hold its port for a parent that is gone."""
    def watch():
        while os.getppid() == pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="cutscore-parent", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in COMMANDS:
        err(f"usage: python -m engine.tools {{{','.join(COMMANDS)}}} JSON  (the options, as `cutscore` parsed them)")
        return 2
    try:
        values = json.loads(argv[1])
        if not isinstance(values, dict):
            raise TypeError
    except (json.JSONDecodeError, TypeError):
        err("cutscore: error: engine.tools: the options must be one JSON object")
        return 2
    parent = os.environ.pop("CUTSCORE_PARENT_PID", "")  # not for our own children (DDP's other ranks)
    if parent.isdigit() and int(parent) == os.getppid():
        _follow_parent(int(parent))
    # the command's record (core/tool_options.py): what the editor's side built, checked again here
    return run_command(lambda: COMMANDS[argv[0]](options(argv[0], values)))


if __name__ == "__main__":
    sys.exit(main())
