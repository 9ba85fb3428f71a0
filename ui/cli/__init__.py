"""The `cutscore` command: the editor's command line, and the only code that talks to the terminal.

    cutscore --help
    cutscore plan resources/demo/demo.otio --json
    cutscore doctor

Torch-free (docs/ARCHITECTURE.md): the options are declared in parser.py, the editor's commands run
in commands.py, and the commands that need torch run in the engine's own process (engine/tools.py)
through core.client. Errors the user can act on (CutscoreError) print as one line
`cutscore: error: ...` and exit 2; nothing half-written is left behind.
"""

from __future__ import annotations

import sys

from core.paths import DEMO_MODEL  # noqa: F401 - where the demo looks for its model
from core.terminal import run_command
from ui.cli.commands import DEMO_TIMELINE  # noqa: F401
from ui.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
