"""The build directory: where each artefact of a build lives, and its manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kgrag.errors import KgragError
from kgrag.io import write_json_atomic


class BuildDir:
    """``manifest.json``, ``passages.sqlite``, ``index.faiss``, ``cache.sqlite``, ``graph.json``,
    ``graph.graphml`` and a copy of the schema (``schema.json``) under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create(self) -> BuildDir:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KgragError(f"cannot create build directory {self.root}: {exc}") from exc
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

    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest.exists():
            return {}
        return json.loads(self.manifest.read_text(encoding="utf-8"))

    def write_manifest(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.manifest, data)
