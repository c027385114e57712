"""The build directory: where each artefact of a build lives, its manifest, and the lock that keeps
it to one writer."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kgrag.errors import KgragError
from kgrag.io import os_error, where, write_json_atomic


class BuildDir:
    """``manifest.json``, ``passages.sqlite``, ``index.faiss``, ``cache.sqlite``, ``graph.json``,
    ``graph.graphml`` and a copy of the schema (``schema.json``) under one folder; ``.lock`` (with
    ``.lock.json`` naming its holder) while a build or a push uses it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create(self) -> BuildDir:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error("create build directory", self.root, exc) from exc
        return self

    def require_built(self) -> BuildDir:
        if not self.graph.exists():
            raise KgragError(f"{self.root} holds no built graph (no graph.json): run `kgrag build` first")
        return self

    manifest = property(lambda self: self.root / "manifest.json")
    passages = property(lambda self: self.root / "passages.sqlite")
    index = property(lambda self: self.root / "index.faiss")
    cache = property(lambda self: self.root / "cache.sqlite")
    graph = property(lambda self: self.root / "graph.json")
    graphml = property(lambda self: self.root / "graph.graphml")
    schema = property(lambda self: self.root / "schema.json")
    lock_file = property(lambda self: self.root / ".lock")
    lock_info = property(lambda self: self.root / ".lock.json")

    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest.exists():
            return {}
        damaged = KgragError(
            f"{where(self.manifest)} is damaged (not a JSON object): move it away and run the build again, "
            "giving the seeds again (the build forgets the seeds it remembered)"
        )
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except OSError as exc:
            raise os_error("read", self.manifest, exc) from exc
        except ValueError as exc:
            raise damaged from exc
        if not isinstance(data, dict):
            raise damaged
        return data

    def write_manifest(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.manifest, data)

    @contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """Hold the directory's writer lock for ``purpose`` ("build", "push"). Another holder makes this
        one line naming it (PID, host, start time); the operating system releases the lock of a process
        that dies, so a crashed build never leaves the directory locked."""
        from filelock import FileLock, Timeout

        self.create()
        lock = FileLock(self.lock_file, timeout=0, thread_local=False, fallback_to_soft=False, preserve_lock_file=True)
        try:
            lock.acquire()
        except Timeout:
            raise KgragError(
                f"{self.root} is in use by {self._holder()}: wait for it to finish, or use another build directory"
            ) from None
        except OSError as exc:
            raise os_error("write to build directory", self.root, exc) from exc
        try:
            write_json_atomic(
                self.lock_info,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "purpose": purpose,
                    "command": " ".join(sys.argv),
                },
            )
            yield
        finally:
            self.lock_info.unlink(missing_ok=True)
            lock.release()

    def _holder(self) -> str:
        try:
            info = json.loads(self.lock_info.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "another kgrag process"
        purpose, pid, host, started = (info.get(k) for k in ("purpose", "pid", "host", "started"))
        return f"a kgrag {purpose or 'build'} (pid {pid} on {host}, since {started})"
