"""``kgrag serve-graph``: the local ArcadeDB Bolt server (credentials, loopback only, restarts, Ctrl-C)."""

from __future__ import annotations

import socket
import stat
import urllib.request
from pathlib import Path

import pytest
from neo4j_server_fixture import BoltServer, bolt_server  # noqa: F401

from kgrag.errors import KgragError
from kgrag.neo4j.server import ENV_FILE, LocalGraphServer, free_port, resolve_config
from kgrag.records import Entity, ResolvedGraph


@pytest.fixture
def local(bolt_server: BoltServer) -> BoltServer:  # noqa: F811
    if not bolt_server.local:
        pytest.skip("KGRAG_NEO4J_URI points the tests at another server")
    return bolt_server


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on ``port`` (Linux /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, ::ffff:127.0.0.1


def test_it_prints_the_uri_the_web_address_and_the_export_lines(local: BoltServer) -> None:
    output = "\n".join(local.output)
    assert f"Bolt: bolt://127.0.0.1:{local.bolt_port}" in output
    assert f"web:  http://127.0.0.1:{local.http_port}/" in output
    assert f"export NEO4J_URI=bolt://127.0.0.1:{local.bolt_port}" in output
    assert "export NEO4J_USERNAME=root" in output and "export NEO4J_DATABASE=neo4j" in output
    password = local.settings.password.get_secret_value() if local.settings.password else ""
    assert len(password) >= 20  # generated, since the test environment sets no NEO4J_PASSWORD
    assert local.folder is not None
    env_file = local.folder / ENV_FILE
    assert f"NEO4J_PASSWORD={password}" in env_file.read_text(encoding="utf-8")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert (local.folder / "log").is_dir() and not (local.folder.parent / "log").exists()


def test_it_listens_on_loopback_only(local: BoltServer) -> None:
    for port in (local.bolt_port, local.http_port):
        addresses = listening_addresses(port)
        if not addresses:
            pytest.skip("no /proc/net/tcp to read listening sockets from")
        assert addresses <= LOOPBACK, f"port {port} listens on {addresses}"
    with urllib.request.urlopen(f"http://127.0.0.1:{local.http_port}/api/v1/ready", timeout=10) as response:
        assert response.status in (200, 204)


def test_ctrl_c_stops_it_and_a_restart_keeps_the_data(local: BoltServer) -> None:
    local.clear()
    with local.store() as store:
        store.write(ResolvedGraph(entities=[Entity(key="person:kept", name="Kept", type="Person")]))
    password = local.settings.password
    assert local.stop() == 0
    assert "graph server stopped" in local.output
    exports = local.start()  # no NEO4J_PASSWORD: the folder's password is used, and printed again
    assert local.settings.password == password and "NEO4J_PASSWORD" in exports
    with local.store() as store:
        assert store.query("MATCH (e:Entity {key: 'person:kept'}) RETURN e.name AS name") == [{"name": "Kept"}]


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    config, _ = resolve_config(tmp_path / "srv", free_port(), free_port(), None, "password123", None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", config.bolt_port))
        busy.listen()
        with pytest.raises(KgragError, match=f"Bolt port {config.bolt_port} on 127.0.0.1 is in use"):
            LocalGraphServer(config).start()


def test_credentials_come_from_the_environment_or_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "srv"
    config, origin = resolve_config(folder, 7687, 2480, None, None, None)
    assert origin == "generated" and config.username == "root" and config.database == "neo4j"
    folder.mkdir()
    (folder / ENV_FILE).write_text("\n".join(config.env_lines()) + "\n", encoding="utf-8")
    again, origin = resolve_config(folder, 7687, 2480, None, None, None)
    assert origin == "folder" and again.password == config.password
    same, origin = resolve_config(folder, 7687, 2480, "root", config.password.get_secret_value(), None)
    assert origin == "environment" and same.password == config.password
    with pytest.raises(KgragError, match="another password"):
        resolve_config(folder, 7687, 2480, None, "some-other-password", None)
    with pytest.raises(KgragError, match="user is 'root'"):
        resolve_config(tmp_path / "x", 7687, 2480, "neo4j", None, None)
    with pytest.raises(KgragError, match="at least 8"):
        resolve_config(tmp_path / "y", 7687, 2480, None, "short", None)
    with pytest.raises(KgragError, match="database name"):
        resolve_config(tmp_path / "z", 7687, 2480, None, None, "bad name;")
    quoted, _ = resolve_config(tmp_path / "q", 7687, 2480, None, "it's a pass phrase", "kg")
    assert "NEO4J_PASSWORD='it'\"'\"'s a pass phrase'" in quoted.env_lines()
    assert "it's" not in repr(quoted)
