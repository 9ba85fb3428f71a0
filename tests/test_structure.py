"""Issue 32: the structure a maintainer can rely on. The names written into projects are spelled
once, no source file or function outgrows what one reading holds, the sidecar is one typed record
that loads earlier versions through its upgrade, and generation owns the seed rule."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCES = [p for d in ("core", "engine", "plugin", "ui") for p in (ROOT / d).rglob("*.py")]


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def _lua_strings(path: Path) -> list[str]:
    """The string literals of Lua code, its comments left out."""
    code = re.sub(r"--\[\[.*?\]\]", "", path.read_text(), flags=re.S)
    code = re.sub(r"--[^\n]*", "", code)
    return re.findall(r'"([^"\n]*)"', code)


def test_the_names_written_into_projects_are_spelled_once():
    names = ROOT / "plugin" / "names.py"
    spelled = {"cutscore music": [], "cutscore.json": [], "take naming": []}
    for path in SOURCES + [ROOT / "plugin" / "resolve_launcher.lua"]:
        strings = _code_strings(path) if path.suffix == ".py" else _lua_strings(path)
        for s in strings:
            if s in ("cutscore music", "cutscore.json"):
                spelled[s].append(path)
            if re.search(r"-v\{|-v\\\\d|-v%d|-v\(\?P", s):
                spelled["take naming"].append(path)
    assert all(where == [names] for where in spelled.values()), spelled


def test_the_timeline_suffixes_are_spelled_only_in_the_format_registry():
    from plugin.formats import FORMATS

    registry = ROOT / "plugin" / "formats" / "__init__.py"
    # plugin/resolve.py runs in Resolve's own Python with the standard library only: its ".otio" is the
    # file Resolve's Timeline export and import use, not a choice among cutscore's formats
    resolve = ROOT / "plugin" / "resolve.py"
    suffixes = {s for f in FORMATS for s in f.suffixes}
    spelled = {str(p.relative_to(ROOT)): sorted(set(_code_strings(p)) & suffixes) for p in SOURCES
               if p not in (registry, resolve)}
    assert not {k: v for k, v in spelled.items() if v}
    assert set(_code_strings(resolve)) & suffixes == {".otio"}


def test_no_source_file_over_500_lines_and_no_function_over_50():
    long_files = {str(p.relative_to(ROOT)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 500}
    long_functions = [f"{p.relative_to(ROOT)}:{n.name} ({n.end_lineno - n.lineno + 1})" for p in SOURCES
                      for n in ast.walk(ast.parse(p.read_text()))
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno >= 50]
    assert not long_files and not long_functions, (long_files, long_functions)


@pytest.fixture
def scored(tmp_path, local_engine):
    from plugin.commands.score import ScoreOptions, score_timeline

    out = tmp_path / "s.otio"
    result = score_timeline(ROOT / "resources/demo/demo.otio", out, local_engine,
                            ScoreOptions(model="debug", steps=1, seed=5))
    return out, result


def test_generation_owns_the_seed_rule_and_regenerate_never_repeats_the_score(scored, local_engine):
    from plugin.commands.regenerate import regenerate_clip
    from plugin.commands.state import load_state

    out, result = scored
    assert [w.seed for w in result.windows] == [5 + i for i in range(len(result.windows))]
    r = regenerate_clip(out, "1", local_engine, seed=5)  # the score's own seed would sample the same take
    assert r.seed == 6
    _, state = load_state(out)
    assert state.history[-1].seed == 6 and state.history[-1].wav == r.wav.name


def test_a_version_1_sidecar_loads_through_the_upgrade_and_others_are_one_line(scored, local_engine):
    from core.errors import CutscoreError
    from plugin.commands.regenerate import regenerate_clip
    from plugin.commands.state import STATE_VERSION, load_state

    out, _ = scored
    path = out.with_name("s.cutscore") / "cutscore.json"
    current = json.loads(path.read_text())
    assert current["version"] == STATE_VERSION == 2
    v1 = {k: v for k, v in current.items() if k not in ("history", "choices")} | {"version": 1}
    path.write_text(json.dumps(v1))  # as the untyped sidecar of earlier sessions wrote it
    _, state = load_state(out)
    assert state.version == 2 and state.history == [] and state.segments[0].wav == "clip000-v1.wav"
    r = regenerate_clip(out, "2", local_engine, seed=9)  # and it is used as it was
    assert json.loads(path.read_text())["version"] == 2 and r.wav.name == "clip002-v2.wav"
    for bad, says in (({**v1, "version": 3}, "another cutscore version"),
                      ({**v1, "gain_db": "loud"}, "gain_db")):
        path.write_text(json.dumps(bad))
        with pytest.raises(CutscoreError) as e:
            load_state(out)
        assert says in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)


def test_the_wheel_lists_every_package():
    """pyproject.toml names the packages one by one (resources/ is mapped to `cutscore_resources`):
    a package folder it does not name would be missing from the installed wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {str(p.parent.relative_to(ROOT)).replace("/", ".") for top in ("core", "engine", "plugin", "ui")
             for p in (ROOT / top).rglob("__init__.py")}
    assert listed == found | {"cutscore_resources"}
