"""A local Bolt server for users without Neo4j: ArcadeDB (embedded, from PyPI) with its Bolt plugin.

ArcadeDB answers the official Neo4j driver with Neo4j-5 Cypher, so ``kgrag push`` and Neo4j's tools
work against it. It binds 127.0.0.1 only, keeps its data, its log and the credentials it was set up
with in one folder, and stops cleanly on Ctrl-C / SIGTERM; starting it again on the same folder keeps
the data. The folder's ``neo4j.env`` holds the ``NEO4J_*`` settings for ``push`` (``--env-file``).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import socket
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, SecretStr

from kgrag.errors import KgragError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
USERNAME = "root"  # ArcadeDB's administrator; the Bolt plugin authenticates its users
BOLT_PLUGIN = "Bolt:com.arcadedb.bolt.BoltProtocolPlugin"
ENV_FILE = "neo4j.env"
DATABASE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")

_JUL_PROPERTIES = """\
handlers = java.util.logging.FileHandler
.level = INFO
java.util.logging.FileHandler.pattern = {log_dir}/arcadedb.%g.log
java.util.logging.FileHandler.limit = 10000000
java.util.logging.FileHandler.count = 3
java.util.logging.FileHandler.formatter = java.util.logging.SimpleFormatter
java.util.logging.SimpleFormatter.format = %1$tF %1$tT %4$s %5$s%6$s%n
"""


class ServerConfig(BaseModel):
    """Everything a local server needs; ``password`` is never logged or shown in a repr."""

    dir: Path
    bolt_port: int = 7687
    http_port: int = 2480
    database: str = "neo4j"
    username: str = USERNAME
    password: SecretStr
    heap: str = "512m"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://{HOST}:{self.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/"

    def env_lines(self, with_password: bool = True) -> list[str]:
        """``NAME=value`` lines (shell-quoted values) for ``export`` and for the folder's neo4j.env."""
        values = {"NEO4J_URI": self.bolt_uri, "NEO4J_USERNAME": self.username}
        if with_password:
            values["NEO4J_PASSWORD"] = self.password.get_secret_value()
        values["NEO4J_DATABASE"] = self.database
        return [f"{name}={shlex.quote(value)}" for name, value in values.items()]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def resolve_config(
    folder: Path,
    bolt_port: int,
    http_port: int,
    username: str | None,
    password: str | None,
    database: str | None,
) -> tuple[ServerConfig, str]:
    """The server's settings from NEO4J_* values and the folder's ``neo4j.env``; a password that
    neither gives is generated. Returns the config and where its password came from
    (``environment``, ``folder`` or ``generated``)."""
    folder = Path(folder).expanduser().resolve()
    stored = {k: v for k, v in dotenv_values(folder / ENV_FILE).items() if v} if (folder / ENV_FILE).exists() else {}
    if username not in (None, "", USERNAME):
        raise KgragError(
            f"the local server's user is {USERNAME!r}, but NEO4J_USERNAME is {username!r}: "
            f"unset it or set it to {USERNAME}"
        )
    origin = "environment"
    if not password:
        password, origin = stored.get("NEO4J_PASSWORD"), "folder"
    elif stored.get("NEO4J_PASSWORD") not in (None, password):
        raise KgragError(
            f"the server in {folder} was set up with another password than NEO4J_PASSWORD: "
            f"unset NEO4J_PASSWORD to use the one in {folder / ENV_FILE}"
        )
    if not password:
        password, origin = secrets.token_urlsafe(18), "generated"
    if len(password) < 8:
        raise KgragError("NEO4J_PASSWORD must have at least 8 characters for the local server")
    database = database or stored.get("NEO4J_DATABASE") or "neo4j"
    if not DATABASE_RE.fullmatch(database):
        raise KgragError(f"database name {database!r} must be letters, digits, '_' or '-', starting with a letter")
    config = ServerConfig(
        dir=folder,
        bolt_port=bolt_port,
        http_port=http_port,
        database=database,
        password=SecretStr(password),
    )
    return config, origin


class LocalGraphServer:
    """ArcadeDB with the Bolt plugin on 127.0.0.1, data under ``dir/arcadedb``, log under ``dir/log``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._server: Any = None

    def _prepare(self) -> None:
        folder = self.config.dir
        for port, what in ((self.config.bolt_port, "Bolt"), (self.config.http_port, "HTTP")):
            if not port_free(port):
                option = "--port" if what == "Bolt" else "--http-port"
                raise KgragError(f"{what} port {port} on {HOST} is in use: choose another with {option}")
        try:
            (folder / "log").mkdir(parents=True, exist_ok=True)
            (folder / "arcadedb").mkdir(exist_ok=True)
            (folder / "log" / "logging.properties").write_text(
                _JUL_PROPERTIES.format(log_dir=(folder / "log").as_posix()), encoding="utf-8"
            )
            env_path = folder / ENV_FILE
            env_path.write_text("\n".join(self.config.env_lines()) + "\n", encoding="utf-8")
            env_path.chmod(0o600)
        except OSError as exc:
            raise KgragError(f"cannot use {folder} for the graph server: {exc}") from exc
        # the JVM writes crash logs (and ArcadeDB its default log folder) relative to the working directory
        os.chdir(folder)

    def start(self) -> None:
        try:
            import arcadedb_embedded
        except ImportError as exc:
            raise KgragError("serve-graph needs ArcadeDB: pip install arcadedb-embedded==26.10.2.post1") from exc
        self._prepare()

        folder = self.config.dir
        logger.debug("starting ArcadeDB in %s (Bolt %s)", folder, self.config.bolt_uri)
        try:
            self._server = arcadedb_embedded.ArcadeDBServer(
                str(folder / "arcadedb"),
                self.config.password.get_secret_value(),
                jvm_kwargs={
                    "heap_size": self.config.heap,
                    "jvm_args": [f"-Djava.util.logging.config.file={folder / 'log' / 'logging.properties'}"],
                    "common_pool_parallelism": 2,
                },
                config={
                    "host": HOST,
                    "http_port": self.config.http_port,
                    "server_plugins": BOLT_PLUGIN,
                    "bolt_port": self.config.bolt_port,
                    "bolt_host": HOST,
                },
            )
            self._server.start()
            if not (folder / "arcadedb" / "databases" / self.config.database).exists():
                self._server.create_database(self.config.database)
        except Exception as exc:  # the wrapper's errors carry the Java exception text
            self.stop()
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise KgragError(f"the graph server did not start: {first} (log in {folder / 'log'})") from exc

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            logger.debug("ArcadeDB stopped")
