"""`python -m ui.cli`: the `cutscore` command (torchrun and the launchers run it so)."""

import sys

from ui.cli import main

sys.exit(main())
