"""The one exception type users see: a message that names the file and the fix (torch-free)."""


class CutscoreError(Exception):
    """An error the user can act on. ui/cli.py prints it as one line and exits non-zero."""
