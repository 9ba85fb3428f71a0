"""The commands: score, regenerate and conform, with the plan, the request's rhythm and reference, and
the sidecar they record (plugin/commands/state.py). They read timelines through plugin/formats and
finish music through plugin/finish."""
