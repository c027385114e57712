"""``kgrag push`` writes a build to Neo4j; ``kgrag serve-graph`` runs a local Bolt server."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kgrag.cli.common import console, friendly_errors, setup_logging
from kgrag.neo4j.cypher import BATCH_SIZE

DEFAULT_SERVER_DIR = Path(".kgrag/graph")


def _quiet_driver() -> None:
    """The driver logs every Bolt message (with its parameters) at DEBUG; -v is about kgrag's own work."""
    logging.getLogger("neo4j").setLevel(logging.WARNING)


@friendly_errors
def push(
    build_dir: Annotated[Path, typer.Argument(help="build directory")],
    uri: Annotated[Optional[str], typer.Option(help="neo4j:// or bolt:// URI [env: NEO4J_URI]")] = None,
    database: Annotated[Optional[str], typer.Option(help="database name [env: NEO4J_DATABASE]")] = None,
    username: Annotated[Optional[str], typer.Option(help="user [env: NEO4J_USERNAME]")] = None,
    env_file: Annotated[
        Optional[Path], typer.Option(help="NEO4J_* settings file (default: ./.env when present)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="rows per transaction")] = BATCH_SIZE,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Write a built graph to Neo4j (idempotent: push again after a rebuild to add what is new).

    The password comes from NEO4J_PASSWORD (or the settings file), never from the command line.
    """
    from kgrag.api import KnowledgeGraph

    setup_logging(verbose)
    _quiet_driver()
    kg = KnowledgeGraph.open(build_dir)
    counts = kg.push(uri=uri, database=database, username=username, env_file=env_file, batch_size=batch_size)
    table = Table(title=f"pushed {build_dir}", show_header=False)
    for label in ("entities", "facts", "documents", "passages", "mentions"):
        table.add_row(label, str(counts[label]))
    style = kg.write_browser_style()
    if style is not None:
        table.add_row("Browser style", f"{style} (drag it onto Neo4j Browser)")
    console.print(table)


@friendly_errors
def serve_graph(
    folder: Annotated[Path, typer.Option("--dir", help="data folder (kept between runs)")] = DEFAULT_SERVER_DIR,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Bolt port on 127.0.0.1")] = 7687,
    http_port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port on 127.0.0.1")] = 2480,
    env_file: Annotated[
        Optional[Path], typer.Option(help="NEO4J_* settings file (default: ./.env when present)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a local Bolt graph server (ArcadeDB) for users without Neo4j; Ctrl-C stops it.

    It uses NEO4J_PASSWORD and NEO4J_DATABASE when set; otherwise it generates a password, keeps it
    in the folder's neo4j.env and prints the export lines that make `kgrag push` find it.
    """
    from kgrag.neo4j.server import ENV_FILE, LocalGraphServer, resolve_config
    from kgrag.neo4j.store import Neo4jSettings

    setup_logging(verbose)
    _quiet_driver()
    env = Neo4jSettings.load(env_file)
    given = env.model_fields_set
    config, origin = resolve_config(
        folder,
        port,
        http_port,
        env.username if "username" in given else None,
        env.password.get_secret_value() if env.password and "password" in given else None,
        env.database if "database" in given else None,
    )

    def ready() -> None:
        cfg = config
        # plain writes, not rich: the export lines must survive any terminal width and a pipe
        lines = [
            f"graph server ready (data in {cfg.dir})",
            f"  Bolt: {cfg.bolt_uri}   database {cfg.database!r}, user {cfg.username!r}",
            f"  web:  {cfg.http_url}   (ArcadeDB's HTTP API; the PyPI wheel ships no Studio)",
            "Paste into the shell where you run `kgrag push`:",
            *(f"export {line}" for line in cfg.env_lines(with_password=origin != "environment")),
        ]
        if origin == "environment":
            lines.append("# NEO4J_PASSWORD: the one already set in your environment")
        lines.append(f"(the same settings are in {cfg.dir / ENV_FILE}; Ctrl-C stops the server)")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    from kgrag.signals import serve_until_stopped

    server = LocalGraphServer(config)
    cwd = Path.cwd()
    try:
        serve_until_stopped(server.start, server.stop, ready)
    finally:
        os.chdir(cwd)
    console.print("graph server stopped", highlight=False)
