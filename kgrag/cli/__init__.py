"""The ``kgrag`` command line."""

from kgrag.cli.build import _setup_logging, app, console, friendly_errors, main

__all__ = ["_setup_logging", "app", "console", "friendly_errors", "main"]
