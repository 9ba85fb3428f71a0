"""cutscore's torch-free core: what the editor's side (plugin/, ui/) and the engine share.

errors (CutscoreError), files (atomic writes, the sidecar lock), paths (folders, presets, ports),
api (the request, status and result types, the generation Settings), model_config (the model
configs: data only), signal (loudness and cut/onset helpers on numpy arrays) and client (the
EngineClient protocol, its transports and the engine's own command line as a child process).
Nothing here imports torch or the engine at import time; docs/ARCHITECTURE.md draws the layers.
"""
