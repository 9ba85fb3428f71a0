"""The import path the client had before it moved into the torch-free core (docs/ARCHITECTURE.md):
`engine.client` is `core.client`, kept for scripts that import it so (torch-free, as before)."""

from core.client import *  # noqa: F401,F403
