"""The runner's error types: bad input is one of these, printed by the CLI as one line (exit status 2)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file is missing, malformed, or has an unknown key or a bad value."""


class RunDirError(ConfigError):
    """A run directory is missing, unfinished, damaged, or not what `compmech run` writes; or an output path
    cannot be a run directory."""


class SweepIncomplete(ValueError):
    """Some points of a sweep failed or did not finish (the table marks them; the same command retries them)."""
