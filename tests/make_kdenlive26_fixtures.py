"""How the Kdenlive 26.08 fixtures in tests/fixtures/timelines were made (run once by hand; needs the
forky root of tests/kdenlive_root.py, and root):

    python tests/make_kdenlive26_fixtures.py OUT_DIR

- kdenlive26_example.kdenlive: the shared kdenlive_example_v221170.kdenlive (OTIO's sample, Apache-2.0)
  opened in Kdenlive 26.08.2 and saved (Save As): document 1.1, one sequence, two AV groups.
- kdenlive26_sequences.kdenlive: mix_markers_25.kdenlive (cutscore's own) saved by 26.08, then, in
  the text, a guide on its sequence and a second sequence ("Sequence 2": a copy of the first with
  its last clip removed and a guide of its own), opened in 26.08 again and saved: what 26.08 kept.
  Two sequences, a same-track mix, guides per sequence, clip markers on a bin clip.
Kdenlive writes media paths relative to the document's `root`; the tests set `root` to the folder
they copy the fixture into.
"""

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import kdenlive_app, kdenlive_root  # noqa: E402

UUID2 = "{5eb2c0de-0000-4000-8000-0000000000a2}"


def second_sequence(text: str) -> str:
    """mix26's text with a guide on Sequence 1 and a Sequence 2 beside it."""
    seq1 = re.search(r'<tractor id="(\{[^"]+\})".*?</tractor>\n', text, re.S)
    uuid1 = seq1.group(1)
    guide = '[\n    {\n        "comment": "Drop",\n        "duration": 0,\n        "pos": 60,\n        "type": 0\n    }\n]\n'
    s1 = seq1.group(0).replace('<property name="kdenlive:sequenceproperties.guides">[\n]\n',
                               f'<property name="kdenlive:sequenceproperties.guides">{guide}')
    # copies of the sequence's black track, its two track tractors, their playlists and producers
    block_start = text.index(' <producer id="producer1"')
    block = text[block_start:seq1.start()]
    copy = re.sub(r'id="(producer|playlist|tractor|transition)(\d+)"', r'id="s2_\1\2"', block)
    copy = re.sub(r'producer="(producer|playlist)(\d+)"', r'producer="s2_\1\2"', copy)
    # Sequence 2 ends after its second clip: drop the third (on playlist2, from source 16 s)
    copy = re.sub(r'\s*<blank length="00:00:03.600"/>\s*<entry in="00:00:16.000".*?</entry>', "", copy, flags=re.S)
    s2 = seq1.group(0).replace(uuid1, UUID2).replace(">Sequence 1<", ">Sequence 2<")
    s2 = re.sub(r'producer="(producer|tractor)(\d+)"', r'producer="s2_\1\2"', s2)
    s2 = re.sub(r'id="transition(\d+)"', r'id="s2_transition\1"', s2)
    s2 = s2.replace('<property name="kdenlive:id">4</property>', '<property name="kdenlive:id">9</property>')
    s2 = s2.replace('<property name="kdenlive:sequenceproperties.guides">[\n]\n',
                    '<property name="kdenlive:sequenceproperties.guides">' + guide.replace('"Drop"', '"Hit"')
                    .replace('"pos": 60', '"pos": 50'))
    text = text[:seq1.start()] + s1 + copy + s2 + text[seq1.end():]
    entry = re.search(rf'\s*<entry [^>]*producer="{re.escape(uuid1)}"/>', text).group(0)
    return text.replace(entry, entry + entry.replace(uuid1, UUID2).replace("00:00:10.600", "00:00:07.600"))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", out)
    prefix = kdenlive_root.prefix()
    src = out / "kdenlive_example_v221170.kdenlive"
    shutil.copy(ROOT / "tests" / "fixtures" / "timelines" / src.name, src)
    kdenlive_app.make_media(src)
    kdenlive_app.save_as(src, out / "kdenlive26_example.kdenlive", prefix=prefix)
    src = out / "mix_markers_25.kdenlive"
    shutil.copy(ROOT / "tests" / "fixtures" / "timelines" / src.name, src)
    kdenlive_app.save_as(src, out / "mix26.kdenlive", prefix=prefix)
    two = out / "mix26-two.kdenlive"
    two.write_text(second_sequence((out / "mix26.kdenlive").read_text()))
    kdenlive_app.save_as(two, out / "kdenlive26_sequences.kdenlive", prefix=prefix)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
