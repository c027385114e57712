"""The ``kgrag`` command line: :mod:`kgrag.cli.app` wires the commands of the modules beside it."""

from kgrag.cli.app import app, main

__all__ = ["app", "main"]
