"""The one exception type users see: a message that names the file and the fix (torch-free)."""


class CutscoreError(Exception):
    """An error the user can act on. core/terminal.py run_command prints it as one line and exits 2."""


class EngineUnreachable(CutscoreError):
    """The engine's address answers nothing (no server, a dropped connection): a submit may be sent
    again under its idempotency key."""
