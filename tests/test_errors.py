"""Ordinary operating system and database failures are one line naming the file and what to do:
a read-only build directory (a read-only bind mount or tmpfs: root ignores chmod), a full disk, a
locked or corrupt SQLite file, a damaged index.faiss or graph.json; and reading a build writes
nothing, not even SQLite's -wal/-shm files. Real files, real SQLite and FAISS, the fake generator."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fakes import SCHEMAS
from test_pipeline import N_SOURCE_PASSAGES, build, one_error_line
from test_pipeline import corpus as corpus  # a fixture
from typer.testing import CliRunner

import kgrag.db
from kgrag.api import KnowledgeGraph
from kgrag.cli import app
from kgrag.errors import KgragError
from kgrag.extract.cache import ExtractionCache
from kgrag.index.embedder import MiniLMEmbedder
from kgrag.index.faiss_index import FaissIndex
from kgrag.index.passage_store import PassageStore
from kgrag.io import write_json_atomic
from kgrag.records import Extraction


@pytest.fixture(scope="module")
def finished(corpus: Path, tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder) -> Path:
    """One complete build; tests that change it work on a copy (:func:`copy_of`)."""
    out = tmp_path_factory.mktemp("finished")
    assert build(corpus, out, embedder).status == "complete"
    return out


def copy_of(build_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / f"build-{uuid.uuid4().hex[:6]}"
    shutil.copytree(build_dir, target)
    return target


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file in ``folder`` with its size and modification time."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


# -- mounts (root only) --------------------------------------------------------------------------------


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _umount(target: Path) -> None:
    subprocess.run(["umount", "--lazy", str(target)], check=False, capture_output=True)  # even when still open


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """An empty folder that tests mount over; unmounted afterwards. Skips where mounting is not
    permitted (not root, no CAP_SYS_ADMIN)."""
    target = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    target.mkdir()
    yield target
    _umount(target)


def mount_or_skip(*args: str, target: Path) -> None:
    try:
        _mount(*args, str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        _umount(target)
        why = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
        pytest.skip(f"cannot mount here (needs root or CAP_SYS_ADMIN): {why[0] if why else exc}")


def readonly_bind(source: Path, target: Path) -> Path:
    """``source`` seen read-only at ``target`` (a bind mount, remounted read-only)."""
    mount_or_skip("--bind", str(source), target=target)
    mount_or_skip("-o", "remount,bind,ro", target=target)
    probe = target / ".probe"
    try:
        probe.touch()
    except OSError as exc:
        assert exc.errno == errno.EROFS
    else:
        probe.unlink()
        pytest.skip("the read-only remount did not take")
    return target


def tmpfs(target: Path, options: str) -> Path:
    mount_or_skip("-t", "tmpfs", "-o", options, "tmpfs", target=target)
    return target


# -- a read-only build directory -----------------------------------------------------------------------------


def test_lookup_and_export_on_a_read_only_build(finished: Path, tmp_path: Path, mount_point: Path) -> None:
    source = copy_of(finished, tmp_path)
    before = listing(source)
    readonly = readonly_bind(source, mount_point)
    table = CliRunner().invoke(app, ["lookup", str(readonly), "Pierre Curie"])  # shows each fact's evidence
    assert table.exit_code == 0, table.output
    assert "spouse" in table.stdout
    kg = KnowledgeGraph.open(readonly)
    fact = kg.lookup("Marie Curie").facts[0]  # type: ignore[union-attr]
    assert kg.evidence_text(fact.sources[0])[1]
    as_json = CliRunner().invoke(app, ["lookup", str(readonly), "marie curie", "--json"])
    assert as_json.exit_code == 0, as_json.output
    cypher = tmp_path / "graph.cypher"  # the lexical layer reads passages.sqlite too
    exported = CliRunner().invoke(app, ["export", str(readonly), "--format", "cypher", "--output", str(cypher)])
    assert exported.exit_code == 0, exported.output
    assert "Marie Curie was born in Warsaw" in cypher.read_text(encoding="utf-8")
    # the default GraphML export goes into the build directory itself
    line = one_error_line(CliRunner().invoke(app, ["export", str(readonly)]))
    assert str(readonly / "graph.graphml") in line and "read-only file system" in line
    assert listing(source) == before  # nothing written, no -wal or -shm left


def test_a_read_leaves_no_wal_or_shm(finished: Path, tmp_path: Path) -> None:
    out = copy_of(finished, tmp_path)
    before = listing(out)
    assert not any(name.endswith(("-wal", "-shm")) for name in before)
    for args in (["lookup", str(out), "Pierre Curie"], ["export", str(out), "-f", "neo4j-csv", "-o", str(tmp_path)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    kg = KnowledgeGraph.open(out)
    fact = kg.lookup("Marie Curie").facts[0]  # type: ignore[union-attr]
    assert kg.evidence_text(fact.sources[0])[1]
    assert listing(out) == before


def test_a_reader_beside_a_running_writer(finished: Path, tmp_path: Path) -> None:
    """While a build holds passages.sqlite (its -wal and -shm exist), a read sees its committed rows
    and leaves the files to it; once the writer closes, they are gone."""
    out = copy_of(finished, tmp_path)
    writer = PassageStore(out / "passages.sqlite")
    writer.forget_reads()
    assert (out / "passages.sqlite-wal").exists()
    reader = PassageStore.open_readonly(out / "passages.sqlite")
    assert reader.reads() == {} and reader.counts()["passages"] == N_SOURCE_PASSAGES
    with pytest.raises(KgragError, match=r"cannot write passages\.sqlite in"):
        reader.forget_reads()  # the reader cannot write
    reader.close()
    writer.close()
    assert not list(out.glob("*-wal")) and not list(out.glob("*-shm"))
    # and when the writer closes first, the reader, closing last, removes them
    writer = PassageStore(out / "passages.sqlite")
    reader = PassageStore.open_readonly(out / "passages.sqlite")
    writer.add_reads({0: 0.5})
    writer.close()
    assert reader.reads() == {0: 0.5}
    reader.close()
    assert not list(out.glob("*-wal")) and not list(out.glob("*-shm"))


def test_open_readonly_never_creates_the_file(tmp_path: Path) -> None:
    with pytest.raises(KgragError, match=r"passages\.sqlite in .* is missing"):
        PassageStore.open_readonly(tmp_path / "passages.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_build_into_a_read_only_directory(corpus: Path, mount_point: Path, tmp_path: Path) -> None:
    """The build takes the directory's lock before anything else, so it fails before loading a model."""
    empty = tmpfs(mount_point, "ro")
    args = ["build", str(corpus), "--seeds", "Marie Curie", "--schema", str(SCHEMAS / "default.yaml")]
    args += ["--model", "smollm2-135m"]
    line = one_error_line(CliRunner().invoke(app, [*args, "--out", str(empty)]))
    assert str(empty) in line and "read-only file system" in line
    line = one_error_line(CliRunner().invoke(app, [*args, "--out", str(empty / "new")]))
    assert f"cannot create build directory {empty / 'new'}" in line and "read-only file system" in line


def test_build_over_a_read_only_build(finished: Path, tmp_path: Path, mount_point: Path) -> None:
    source = copy_of(finished, tmp_path)
    readonly = readonly_bind(source, mount_point)
    args = ["build", str(tmp_path), "--seeds", "Marie Curie", "--model", "smollm2-135m", "--out", str(readonly)]
    line = one_error_line(CliRunner().invoke(app, args))
    assert f"cannot write to build directory {readonly}" in line and "read-only file system" in line


# -- a full disk --------------------------------------------------------------------------------------------------


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` to the last byte."""
    with (folder / "filler").open("wb", buffering=0) as handle:
        for size in (65536, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC


def test_a_full_disk(mount_point: Path) -> None:
    disk = tmpfs(mount_point, "size=256k")
    cache = ExtractionCache(disk / "cache.sqlite")
    index = FaissIndex(disk / "index.faiss", 8)
    index.add(np.ones((50, 8), dtype=np.float32))
    fill(disk)
    with pytest.raises(KgragError) as raised:
        for i in range(200):
            cache.put(f"key{i}", Extraction(passage_id=i, error="x" * 2000))
    assert str(raised.value) == (
        f"cannot write cache.sqlite in {disk}: the disk is full: free some space and run the command again"
    )
    cache.close()
    with pytest.raises(KgragError, match=f"cannot write {disk / 'index.faiss'}: the disk is full"):
        index.save()
    with pytest.raises(KgragError, match=f"cannot write {disk / 'manifest.json'}: the disk is full"):
        write_json_atomic(disk / "manifest.json", {"x": "y" * 100_000})
    assert not list(disk.glob(".*.tmp"))  # failed atomic writes leave no temporary file


# -- damaged and locked files ----------------------------------------------------------------------------------


def test_corrupt_passages_sqlite(corpus: Path, finished: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = copy_of(finished, tmp_path)
    (out / "passages.sqlite").write_bytes(b"not a database, just some bytes " * 200)
    expected = f"passages.sqlite in {out} is not a SQLite database (corrupt?): move it and index.faiss away"
    line = one_error_line(CliRunner().invoke(app, ["lookup", str(out), "Marie Curie"]))
    assert line.startswith(f"error: {expected}")
    with pytest.raises(KgragError, match=r"passages.sqlite in .* is not a SQLite database \(corrupt\?\)"):
        build(corpus, out, embedder)


def test_corrupt_cache_sqlite(corpus: Path, finished: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = copy_of(finished, tmp_path)
    (out / "cache.sqlite").write_bytes(os.urandom(8192))
    with pytest.raises(KgragError) as raised:
        build(corpus, out, embedder)
    assert str(raised.value) == (
        f"cache.sqlite in {out} is not a SQLite database (corrupt?): move it away and run the build again "
        "(its passages are sent to the model again)"
    )


def test_truncated_index_faiss_is_deleted_and_embedded_again(
    corpus: Path,
    finished: Path,
    tmp_path: Path,
    embedder: MiniLMEmbedder,
) -> None:
    out = copy_of(finished, tmp_path)
    index = out / "index.faiss"
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    with pytest.raises(KgragError) as raised:
        build(corpus, out, embedder)
    assert str(raised.value) == (
        f"index.faiss in {out} is damaged (truncated, or not a FAISS index): delete it and run the build again "
        "(the passages are embedded again)"
    )
    index.unlink()  # what the message says
    assert build(corpus, out, embedder).status == "complete"
    assert FaissIndex(index, embedder.dim).size == PassageStore.open_readonly(out / "passages.sqlite").next_passage_id()


def test_truncated_graph_json(corpus: Path, finished: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = copy_of(finished, tmp_path)
    graph = out / "graph.json"
    graph.write_bytes(graph.read_bytes()[:100])
    line = one_error_line(CliRunner().invoke(app, ["lookup", str(out), "Marie Curie"]))
    assert line.startswith(f"error: graph.json in {out} is damaged (not a graph in node-link JSON: ")
    assert line.endswith(
        "run `kgrag build` on it again (same inputs and model), which writes it anew from the extraction cache"
    )
    backend_calls = build(corpus, out, embedder).model_calls  # what the message says
    assert backend_calls == 0
    assert KnowledgeGraph.open(out).lookup("Marie Curie") is not None


def test_a_locked_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kgrag.db, "BUSY_TIMEOUT", 0.2)
    path = tmp_path / "cache.sqlite"
    cache = ExtractionCache(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program writing to it
    try:
        with pytest.raises(KgragError) as raised:
            cache.put("key", Extraction(passage_id=0))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert str(raised.value) == (
        f"cache.sqlite in {tmp_path} is locked by another process (another kgrag command, or a program that has "
        "it open): wait for it to finish and run the command again"
    )
    cache.put("key", Extraction(passage_id=0))  # free again
    assert len(cache) == 1
    cache.close()


# -- the safety net for what no module caught ------------------------------------------------------------------


def test_a_stray_os_error_is_one_line_and_verbose_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "somewhere.bin"))

    monkeypatch.setattr(KnowledgeGraph, "build", full)
    args = ["build", str(tmp_path), "--seeds", "Marie Curie", "--out", str(tmp_path / "out")]
    line = one_error_line(CliRunner().invoke(app, args))
    assert line == f"error: {tmp_path / 'somewhere.bin'}: the disk is full: free some space and run the command again"
    verbose = CliRunner().invoke(app, [*args, "-v"])
    assert verbose.exit_code == 1
    assert "Traceback" in verbose.stderr and "OSError" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == line


def test_a_stray_sqlite_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(KnowledgeGraph, "open", locked)
    line = one_error_line(CliRunner().invoke(app, ["lookup", str(tmp_path), "Marie Curie"]))
    assert line == "error: SQLite: database is locked"
