"""A Bolt server for the Neo4j tests: ``kgrag serve-graph`` (ArcadeDB) on free loopback ports in a temp
dir, started once per test session and stopped with Ctrl-C (SIGINT) at its end — or, when
``KGRAG_NEO4J_URI`` is set, a genuine Neo4j (``KGRAG_NEO4J_USERNAME`` / ``_PASSWORD`` / ``_DATABASE``).

Import the fixture in each test module: ``from neo4j_server_fixture import bolt_server  # noqa: F401``.
Every module that imports it shares the one server (the handle is a module-level singleton).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from kgrag.neo4j.server import free_port
from kgrag.neo4j.store import Neo4jSettings, Neo4jStore

logger = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0
EXPORT_RE = re.compile(r"^export (NEO4J_[A-Z]+)=(.*)$")


class BoltServer:
    """The server the tests talk to; ``local`` servers can be restarted on the same folder."""

    def __init__(self, settings: Neo4jSettings, folder: Path | None = None) -> None:
        self.settings = settings
        self.folder = folder
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.bolt_port = 0
        self.http_port = 0

    @property
    def local(self) -> bool:
        return self.folder is not None

    def store(self, **kwargs: object) -> Neo4jStore:
        return Neo4jStore(self.settings, **kwargs)  # type: ignore[arg-type]

    def clear(self) -> None:
        """Delete every node and relationship (constraints stay)."""
        with self.store() as store:
            store._write("MATCH (n) DETACH DELETE n", {})

    # -- the local server ---------------------------------------------------------------------------
    def start(self, env_extra: dict[str, str] | None = None) -> dict[str, str]:
        """Run ``kgrag serve-graph`` and wait until it answers; returns the NEO4J_* lines it printed."""
        assert self.folder is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
        env.update(env_extra or {})
        command = [sys.executable, "-c", "from kgrag.cli import main; main()", "serve-graph"]
        command += ["--dir", str(self.folder), "--port", str(self.bolt_port), "--http-port", str(self.http_port)]
        self.output = []
        self.proc = subprocess.Popen(
            command,
            cwd=self.folder.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()
        reader = threading.Thread(target=self._read_output, args=(self.proc, ready), daemon=True)
        reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        ready.wait(START_TIMEOUT_S)
        exports = {m[1]: shlex.split(m[2])[0] for m in map(EXPORT_RE.match, list(self.output)) if m}
        if "NEO4J_URI" not in exports:
            self.stop()
            raise RuntimeError("kgrag serve-graph did not start:\n" + "\n".join(self.output[-30:]))
        password = exports.get("NEO4J_PASSWORD") or env.get("NEO4J_PASSWORD", "")
        self.settings = Neo4jSettings(
            uri=exports["NEO4J_URI"],
            username=exports["NEO4J_USERNAME"],
            password=SecretStr(password),
            database=exports["NEO4J_DATABASE"],
        )
        self._wait_until_it_answers(deadline)
        return exports

    def _read_output(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        """Keep reading the server's output (a full pipe would block it); ``ready`` once it says so."""
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line.rstrip("\n"))
            if "Ctrl-C stops the server" in line:
                ready.set()
        ready.set()

    def _wait_until_it_answers(self, deadline: float) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self.store() as store:
                    store.verify()
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        raise RuntimeError(f"the Bolt server did not answer in {START_TIMEOUT_S} s: {last}")

    def stop(self) -> int | None:
        """Ctrl-C the server and wait for it to exit; returns its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode


_SERVER: BoltServer | None = None


def _genuine() -> BoltServer | None:
    uri = os.environ.get("KGRAG_NEO4J_URI")
    if not uri:
        return None
    settings = Neo4jSettings(
        uri=uri,
        username=os.environ.get("KGRAG_NEO4J_USERNAME", "neo4j"),
        password=SecretStr(os.environ.get("KGRAG_NEO4J_PASSWORD", "")),
        database=os.environ.get("KGRAG_NEO4J_DATABASE", "neo4j"),
    )
    return BoltServer(settings)


@pytest.fixture(scope="session")
def bolt_server() -> Iterator[BoltServer]:
    """One Bolt server for the whole session, however many test modules import this fixture."""
    global _SERVER
    if _SERVER is not None:
        yield _SERVER
        return
    server = _genuine()
    if server is not None:
        _SERVER = server
        yield server
        return
    with tempfile.TemporaryDirectory(prefix="kgrag-arcadedb-") as tmp:
        server = BoltServer(Neo4jSettings(), Path(tmp) / "graph")
        server.bolt_port, server.http_port = free_port(), free_port()
        server.start()
        _SERVER = server
        try:
            yield server
        finally:
            _SERVER = None
            code = server.stop()
            logger.info("serve-graph exited with %s", code)
