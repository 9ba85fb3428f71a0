"""Bad input (issue 18): a deterministic, bounded fuzz run of the real command line over malformed
and hostile inputs built from the shared timelines and synthetic ones. Each case runs in its own
process under a memory cap and a timeout and must end with exit 0, or exit 2 and exactly one line
naming the file (or flag) and the fix: no traceback, crash, hang, memory blow-up, leftover file or
changed input."""

import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

TL = FIXTURES / "timelines"
SOURCES = ["simple_cut.otio", "multitrack.otio", "premiere_example.xml", "screening_example.edl",
           "kdenlive_example_v221170.kdenlive", "short_edit.kdenlive", "mix_markers_25.kdenlive"]
MEM_CAP = 3 << 30  # bytes of data (heap and anonymous memory) per case
TIMEOUT_S = 60  # generous: the suite may share the machine


def _source(name: str) -> Path:
    for p in (TL / name, ROOT.parent / "shared" / "timelines" / name):
        if p.exists():
            return p
    pytest.skip(f"{name} not found")


def _deep_json(depth: int) -> str:
    return '{"OTIO_SCHEMA": "Timeline.1", "metadata": ' + "[" * depth + "]" * depth + "}"


def _otio_with(mutate) -> str:
    d = json.loads(_source("simple_cut.otio").read_text())
    mutate(d)
    return json.dumps(d, allow_nan=True)


def _first_clip(d):
    return d["tracks"]["children"][0]["children"][0]


def _set_range(**kw):
    def mutate(d):
        rng = _first_clip(d)["source_range"]
        for k, v in kw.items():
            rng["duration"][k] = v
    return mutate


def _many_clips(n: int) -> str:
    clip = {"OTIO_SCHEMA": "Clip.2", "name": "c", "source_range": {
        "OTIO_SCHEMA": "TimeRange.1", "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24, "value": 0},
        "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24, "value": 1}}}
    track = {"OTIO_SCHEMA": "Track.1", "kind": "Video", "children": [dict(clip, name=f"c{i}") for i in range(n)]}
    return json.dumps({"OTIO_SCHEMA": "Timeline.1", "name": "many",
                       "tracks": {"OTIO_SCHEMA": "Stack.1", "children": [track]}})


BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;'
        '&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;'
        '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><xmeml version="4"><sequence><name>&lol4;</name>'
        '</sequence></xmeml>')
XXE = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><mlt><profile '
       'frame_rate_num="25" frame_rate_den="1"/><tractor id="t"><track producer="p"/></tractor>&xxe;</mlt>')


def build_cases(work: Path) -> list[dict]:
    """[{name, files: {name: bytes | 'fifo' | 'dir' | 'devzero'}, argv}]: at least 200 cases."""
    rng = random.Random(18)
    cases = []

    def add(name, content, argv_tail=("plan",), extra=None, suffix=None):
        fname = f"in{suffix or Path(name).suffix}"
        cases.append({"name": name, "file": fname, "content": content, "argv": list(argv_tail), "extra": extra or []})

    for src_name in SOURCES:
        raw = _source(src_name).read_bytes()
        suffix = Path(src_name).suffix
        rate = ["--rate", "24"] if suffix == ".edl" else []
        for _ in range(12):  # truncated copies
            cut = rng.randrange(1, len(raw))
            add(f"{src_name}:truncated@{cut}", raw[:cut], ("plan",), rate, suffix)
        for k in range(8):  # bit flips
            b = bytearray(raw)
            for _ in range(rng.randint(1, 20)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            add(f"{src_name}:flipped#{k}", bytes(b), ("plan",), rate, suffix)
        text = raw.decode("utf-8", "replace")
        numbers = [m for m in __import__("re").finditer(r"\d+(\.\d+)?", text)]
        for k in range(8):  # a number replaced by junk, huge, zero, negative or not a number
            m = rng.choice(numbers)
            junk = rng.choice(["NaN", "inf", "-1", "0", "1e300", "999999999999", "x7", ""])
            add(f"{src_name}:number->{junk}#{k}", (text[:m.start()] + junk + text[m.end():]).encode(), ("plan",), rate, suffix)
        for _ in range(3):  # scoring a damaged copy (still readable ones are scored for real)
            cut = rng.randrange(1, len(raw))
            add(f"{src_name}:score-truncated@{cut}", raw[:cut], ("score",), rate + ["-o", "OUT.otio", "--engine", "local"], suffix)
        add(f"{src_name}:empty", b"", ("plan",), rate, suffix)
    # impossible times in an otherwise good OTIO
    for label, mutate in [("rate0", _set_range(rate=0)), ("rateNaN", _set_range(rate=float("nan"))),
                          ("rate-inf", _set_range(rate=float("inf"))), ("value-inf", _set_range(value=float("inf"))),
                          ("value1e12", _set_range(value=1e12)), ("value1e300", _set_range(value=1e300)),
                          ("rate1e-9", _set_range(rate=1e-9)), ("value-NaN", _set_range(value=float("nan")))]:
        add(f"otio:{label}", _otio_with(mutate).encode(), ("plan",), suffix=".otio")
        add(f"otio:{label}:score", _otio_with(mutate).encode(), ("score",), ["-o", "OUT.otio", "--engine", "local"], ".otio")

    def nan_marker(d):
        d["tracks"].setdefault("markers", []).append({"OTIO_SCHEMA": "Marker.2", "name": "m", "marked_range": {
            "OTIO_SCHEMA": "TimeRange.1", "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24, "value": float("nan")},
            "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24, "value": 0}}})
    add("otio:nan-marker", _otio_with(nan_marker).encode(), suffix=".otio")
    add("otio:no-tracks", json.dumps({"OTIO_SCHEMA": "Timeline.1", "tracks": {"OTIO_SCHEMA": "Stack.1"}}).encode(),
        suffix=".otio")
    add("otio:audio-only", _otio_with(lambda d: d["tracks"]["children"][0].update(kind="Audio")).encode(), suffix=".otio")
    add("otio:unknown-kind", _otio_with(lambda d: d["tracks"]["children"][0].update(kind="Smell")).encode(), suffix=".otio")
    add("otio:disabled", _otio_with(lambda d: d["tracks"]["children"][0].update(enabled=False)).encode(), suffix=".otio")
    for depth in (300, 3000, 20000):
        add(f"otio:nested{depth}", _deep_json(depth).encode(), suffix=".otio")
    add("otio:10000-clips", _many_clips(10000).encode(), suffix=".otio")
    add("otio:10000-clips:score", _many_clips(10000).encode(), ("score",), ["-o", "OUT.otio", "--engine", "local"],
        ".otio")
    long = _otio_with(_set_range(value=24 * 1e7))
    add("otio:1e7-seconds:score", long.encode(), ("score",), ["-o", "OUT.otio", "--engine", "local"], ".otio")
    # special files and bad paths
    for suffix in (".otio", ".xml", ".kdenlive", ".edl"):
        add(f"fifo{suffix}", "fifo", suffix=suffix, extra=["--rate", "24"] if suffix == ".edl" else [])
        add(f"dir{suffix}", "dir", suffix=suffix)
    for suffix in (".xml", ".kdenlive", ".edl"):
        add(f"devzero{suffix}", "devzero", suffix=suffix, extra=["--rate", "24"] if suffix == ".edl" else [])
    add("xml-bomb.xml", BOMB.encode(), suffix=".xml")
    add("xml-bomb.kdenlive", BOMB.replace("xmeml", "mlt").encode(), suffix=".kdenlive")
    add("xxe.kdenlive", XXE.encode(), suffix=".kdenlive")
    add("xxe.xml", XXE.replace("mlt", "xmeml").encode(), suffix=".xml")
    add("kdenlive-rate0", _source("short_edit.kdenlive").read_text().replace('frame_rate_num="30000"',
                                                                             'frame_rate_num="0"').encode(), suffix=".kdenlive")
    add("edl-no-events", b"TITLE: nothing\nFCM: NON-DROP FRAME\n", suffix=".edl", extra=["--rate", "24"])
    add("edl-audio-only", b"TITLE: a\n\n001  AX       A     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n",
        suffix=".edl", extra=["--rate", "24"])
    add("edl-huge-timecode", b"TITLE: a\n\n001  AX       V     C        00:00:00:00 99:59:59:23 01:00:00:00 99:59:59:23\n",
        suffix=".edl", extra=["--rate", "24"])
    add("unsupported.mp4", b"\x00\x00\x00\x18ftypmp42", suffix=".mp4")
    add("missing", None, suffix=".otio")
    add("long-name", _source("simple_cut.otio").read_bytes(), ("score",), ["-o", "x" * 300 + ".otio", "--engine", "local"],
        ".otio")
    good = _source("simple_cut.otio").read_bytes()
    for flags in (["--window", "nan"], ["--window", "inf"], ["--window", "0"], ["--window", "-1"], ["--window", "4"],
                  ["--rate", "nan"], ["--max-hours", "0"], ["--max-clips", "x"]):
        add(f"plan{' '.join(flags)}", good, ("plan",), flags, ".otio")
    for flags in (["--engine", "not a url"], ["--sample-rate", "0"], ["--steps", "0"], ["--loudness", "nan"],
                  ["--guidance", "inf"], ["--hits", "nan"], ["-o", "missing-folder/x.otio"], ["-o", "x.mp4"],
                  ["-o", "x"], ["-o", "x.edl"]):
        tail = flags if "-o" in flags else ["-o", "OUT.otio", *flags]
        add(f"score{' '.join(flags)}", good, ("score",), tail, ".otio")
    return cases


def _run_case(case: dict, root: Path) -> dict:
    d = root / f"case{case['index']:04d}"
    d.mkdir()
    p = d / case["file"]
    c = case["content"]
    if c == "fifo":
        os.mkfifo(p)
    elif c == "dir":
        p.mkdir()
    elif c == "devzero":
        p.symlink_to("/dev/zero")
    elif c is not None:
        p.write_bytes(c)
    before = hashlib.sha256(c).hexdigest() if isinstance(c, bytes) else None
    extra = [a.replace("OUT.otio", str(d / "out.otio")) if a.endswith(".otio") and a.startswith("OUT") else a
             for a in case["extra"]]
    extra = [str(d / a) if a.startswith("missing-folder/") or a in ("x.mp4", "x", "x.edl") or a.startswith("xxx")
             else a for a in extra]
    if case["argv"][0] == "score":  # a damaged file that still reads is scored for real: keep that quick
        for flag, value in (("--model", "debug"), ("--steps", "1"), ("--no-hit-sync", None)):
            if flag not in extra:  # (a case testing that flag keeps its own value)
                extra += [flag] if value is None else [flag, value]
    argv = [sys.executable, "-m", "ui.cli", case["argv"][0], str(p), *extra]

    def limit():
        resource.setrlimit(resource.RLIMIT_DATA, (MEM_CAP, MEM_CAP))  # heap + anonymous maps, not torch's libraries

    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=d, preexec_fn=limit,
                           env=dict(os.environ, CUTSCORE_DEBUG=""))
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = "hang", (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    problems = []
    errors = [ln for ln in err.strip().splitlines() if ln.strip() and not ln.startswith("cutscore: warning:")
              and "%" not in ln[:16]]
    if rc not in (0, 2):
        problems.append(f"exit {rc}")
    if "Traceback" in err:
        problems.append("traceback")
    if rc == 2:
        if len(errors) != 1:
            problems.append(f"{len(errors)} lines: {errors[:3]}")
        elif not (str(p) in errors[0] or " argument " in errors[0] or "--" in errors[0] or str(d) in errors[0]):
            problems.append(f"names no file or flag: {errors[0][:160]}")
    if before is not None and p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() != before:
        problems.append("input changed")
    left = sorted(x.name for x in d.iterdir() if x.name != p.name and not (rc == 0 and x.name.startswith("out")))
    if left:
        problems.append(f"leftovers {left}")
    return {"name": case["name"], "rc": rc, "problems": problems, "error": errors[0] if errors else ""}


@pytest.mark.slow  # 97 s on 2 cores: the default run must stay under 15 minutes
def test_fuzz_the_command_line(tmp_path):
    cases = build_cases(tmp_path)
    assert len(cases) >= 200
    for i, c in enumerate(cases):
        c["index"] = i
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: _run_case(c, tmp_path), cases))
    bad = [r for r in results if r["problems"]]
    counts = {"cases": len(results), "exit 0": sum(r["rc"] == 0 for r in results),
              "clean one-line errors": sum(r["rc"] == 2 and not r["problems"] for r in results), "bad": len(bad)}
    print(json.dumps(counts))
    assert not bad, "\n".join(f"{r['name']}: {r['problems']}" for r in bad[:40])
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_sigterm_mid_score_leaves_nothing_behind(tmp_path):
    """SIGTERM while sampling unwinds like Ctrl-C: the partial music folder and temporaries go."""
    import signal
    import time

    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, tmp_path / f)
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "score", str(tmp_path / "demo.otio"), "-o",
                             str(tmp_path / "out.otio"), "--engine", "local", "--model", "debug", "--steps", "400"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    seen = ""
    deadline = time.time() + 120
    while "sampling" not in seen and time.time() < deadline:
        seen += proc.stderr.readline()
    assert "sampling" in seen, seen
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    left = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("cache", "config"))  # (the test's own user dirs)
    assert left == ["demo.otio", "testvideo.mp4"]


# ---- issue 36: the last bad inputs ----------------------------------------------------------------

def _numeric_options():
    """(command words, option) for every option of every command whose value is a number."""
    import argparse

    from ui import cli
    from ui.cli import types as t

    numeric = {int, float, t._finite, t._positive_int, t._positive_float, t._seconds, t._seed, t._port,
               t._frame_rate, t._window_s, t._seconds_list}
    out = []

    def walk(parser, words):
        positionals = []
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, [*words, name])
            elif not a.option_strings and a.nargs is None:
                positionals.append(a.choices and next(iter(a.choices)) or "x")
            elif a.option_strings and (a.type in numeric or getattr(a.type, "field", None)):  # field_type's
                out.append((words, positionals, a.option_strings[-1]))
    walk(cli.build_parser(), [])
    return [(w, p, o) for w, p, o in out]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_numeric_option_refuses_nan_and_infinities(capsys, value):
    from ui.cli import main

    options = _numeric_options()
    assert len(options) >= 20 and ("--start" in [o for _, _, o in options])
    for words, positionals, opt in options:
        with pytest.raises(SystemExit) as exited:  # refused while parsing, before any work
            main([*words, *positionals, f"{opt}={value}"])
        err = capsys.readouterr().err
        assert exited.value.code == 2, (words, opt)
        assert err.count("\n") == 1 and opt in err and "Traceback" not in err, (words, opt, err)


def test_features_start_nan_is_one_line(tmp_path):
    for opt in ("--start", "--end"):
        r = subprocess.run([sys.executable, "-m", "ui.cli", "features", str(ROOT / "resources/demo/testvideo.mp4"), opt,
                            "nan"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "finite" in r.stderr, r.stderr


def test_regenerate_with_the_clips_wav_deleted_says_which_and_leaves_nothing(tmp_path, local_engine):
    from plugin.commands.score import ScoreOptions, score_timeline

    out = tmp_path / "s.otio"
    score_timeline(ROOT / "resources/demo/demo.otio", out, local_engine, ScoreOptions(model="debug", steps=1))
    side = tmp_path / "s.cutscore"
    (side / "clip001-v1.wav").unlink()
    before = sorted(p.name for p in side.rglob("*"))
    r = subprocess.run([sys.executable, "-m", "ui.cli", "regenerate", str(out), "--clip", "1", "--engine", "local"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "clip001-v1.wav" in r.stderr and "score the timeline again" in r.stderr and "restore" in r.stderr
    assert sorted(p.name for p in side.rglob("*")) == before and not list(tmp_path.glob("s-r*"))


def test_an_engine_failure_mid_regenerate_leaves_no_window_files(tmp_path, local_engine, monkeypatch):
    from plugin.commands import regenerate
    from plugin.commands.score import ScoreOptions, score_timeline

    out = tmp_path / "s.otio"
    score_timeline(ROOT / "resources/demo/demo.otio", out, local_engine, ScoreOptions(model="debug", steps=1))
    side = tmp_path / "s.cutscore"
    before = sorted(p.name for p in side.rglob("*"))

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(regenerate, "write_wav", broken)  # the engine ran; writing the take fails
    with pytest.raises(OSError):
        regenerate.regenerate_clip(out, "1", local_engine, seed=5)
    assert sorted(p.name for p in side.rglob("*")) == before


def test_a_name_holding_a_newline_is_one_quoted_line(tmp_path):
    odd = tmp_path / "no\nsuch" / "out.otio"
    r = subprocess.run([sys.executable, "-m", "ui.cli", "score", str(ROOT / "resources/demo/demo.otio"), "-o", str(odd),
                        "--model", "debug"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no\\nsuch" in r.stderr, r.stderr
    ok = tmp_path / "a\nb.otio"
    r = subprocess.run([sys.executable, "-m", "ui.cli", "score", str(ROOT / "resources/demo/demo.otio"), "-o", str(ok),
                        "--model", "debug", "--steps", "1", "--engine", "local"], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0 and f'wrote "{tmp_path}/a\\nb.otio"' in r.stdout, r.stdout
    assert all(line.count('"') in (0, 2) for line in r.stdout.splitlines())
