"""cutscore's beat markers in a Kdenlive project (torch-free): the music bin clips' kdenlive:markers
as Kdenlive writes them, in marker categories of cutscore's own among the project's
(kdenlive:docproperties.guidesCategories, the same JSON list in Kdenlive 22.12 and 26.08): two of
Kdenlive's nine default categories that the project does not use, renamed (ensure_categories)."""

from __future__ import annotations

import html
import json
import re

from core.errors import CutscoreError

# Kdenlive's marker categories of cutscore (added to the project's own, kdenlive:docproperties.guidesCategories)
KDENLIVE_CATEGORIES = {"downbeat": ("cutscore downbeat", "#e0552e"), "beat": ("cutscore beat", "#e0b02e")}


def markers_json(beats, rate: float, categories: dict[str, int], v11: bool, frames: int) -> str:
    """A bin clip's kdenlive:markers as Kdenlive writes them: pos in the clip's frames, the comment,
    the category index (type); document 1.1 adds the duration (0: a point marker)."""
    from plugin.names import BEAT_NAMES as NAMES

    out = []
    for t, kind in beats:
        pos = min(int(round(t * rate)), frames - 1)
        m = {"comment": NAMES[kind], **({"duration": 0} if v11 else {}), "pos": pos, "type": categories[kind]}
        out.append(m)
    return json.dumps(out, indent=4)


def ensure_categories(text: str) -> tuple[str, dict[str, int]]:
    """The project with cutscore's marker categories (KDENLIVE_CATEGORIES) among its
    own (kdenlive:docproperties.guidesCategories on main_bin; Kdenlive's nine defaults when the
    project had none written), and {kind: category index}. Categories already there are reused.

    A new one takes the place of one of Kdenlive's nine default categories that nothing in the
    project uses (its default colour, no marker or guide of its index), from the ninth down:
    Kdenlive 26.08 moves a bin clip marker of category 10 or above to category (index mod 9) when
    it opens a project (seen: 9 -> 0, 10 -> 1, 20 -> 2, 21 -> 3; as if it read the clip markers
    before the project's categories), so only the first nine keep cutscore's markers apart (22.12
    keeps any). Only when all nine are taken is one added at the end."""

    name = "kdenlive:docproperties.guidesCategories"
    m = re.search(rf'<property name="{name}">(.*?)</property>', text, re.S)
    try:
        cats = json.loads(html.unescape(m.group(1))) if m else [dict(c) for c in DEFAULT_CATEGORIES]
        if not isinstance(cats, list) or not all(isinstance(c, dict) for c in cats):
            raise ValueError
    except ValueError:
        raise CutscoreError(f"the Kdenlive project's {name} is not the JSON list Kdenlive writes; open and save "
                            "the project in Kdenlive once") from None
    used = {int(t) for t in re.findall(r'"type"\s*:\s*(\d+)', html.unescape(text))}  # markers' and guides'
    free = [c for c in reversed(cats) if _untouched_default(c) and int(c.get("index", -1)) not in used]
    out = {}
    for kind, (comment, color) in KDENLIVE_CATEGORIES.items():
        have = next((c for c in cats if c.get("comment") == comment), None)
        if have is None and free:
            have = free.pop(0)
            have.update(color=color, comment=comment)
        elif have is None:
            have = {"color": color, "comment": comment,
                    "index": 1 + max((int(c.get("index", 0)) for c in cats), default=-1)}
            cats.append(have)
        out[kind] = int(have["index"])
    value = html.escape(json.dumps(cats, indent=4), quote=False)
    if m:
        return text[:m.start(1)] + value + text[m.end(1):], out
    at = re.search(r'<playlist id="main_bin"\s*>\n?', text)
    if not at:
        raise CutscoreError("the Kdenlive project's bin (main_bin) is empty or malformed")
    return text[:at.end()] + f'  <property name="{name}">{value}</property>\n' + text[at.end():], out


def _untouched_default(cat: dict) -> bool:
    """One of Kdenlive's nine default categories as Kdenlive made it: its index, its default colour,
    a name of a word and its number ("Category 9", or the same in the editor's language)."""
    try:
        i = int(cat.get("index", -1))
    except (TypeError, ValueError):
        return False
    return (0 <= i < len(DEFAULT_CATEGORIES) and str(cat.get("color", "")).lower() == DEFAULT_CATEGORIES[i]["color"]
            and re.fullmatch(rf"\D+ {i + 1}", str(cat.get("comment", ""))) is not None)


# Kdenlive's own categories (22.12 and 26.08 write these nine into a new project)
DEFAULT_CATEGORIES = [{"color": c, "comment": f"Category {i + 1}", "index": i} for i, c in enumerate(
    ("#9b59b6", "#3daee9", "#1abc9c", "#1cdc9a", "#c9ce3b", "#fdbc4b", "#f39c1f", "#f47750", "#da4453"))]
