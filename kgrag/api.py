"""The Python API: ``KnowledgeGraph`` opens, builds, looks up, exports and pushes a build directory.

The CLI is a thin layer over this class; everything a command does with a build goes through here."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import networkx as nx

from kgrag.builddir import BuildDir
from kgrag.config import Settings
from kgrag.errors import KgragError
from kgrag.graph.export import export_graphml, export_json
from kgrag.graph.networkx_store import NetworkXStore, from_networkx
from kgrag.index.passage_store import PassageStore
from kgrag.neo4j.browser_style import write_grass
from kgrag.neo4j.cypher import BATCH_SIZE
from kgrag.neo4j.export import export_cypher, export_neo4j_csv
from kgrag.records import BuildReport, Entity, Evidence, Fact
from kgrag.schema import GraphSchema
from kgrag.text import is_alias, normalize


class KnowledgeGraph:
    """A built graph. ``KnowledgeGraph.open("build/curie").lookup("marie curie")``."""

    def __init__(self, root: Path, graph: nx.MultiDiGraph) -> None:
        self.dir = BuildDir(root)
        self.graph = graph
        self._names: dict[str, list[str]] = {}
        for key, data in graph.nodes(data=True):
            for name in [data["name"], *data.get("aliases", [])]:
                self._names.setdefault(normalize(name), []).append(key)

    @classmethod
    def open(cls, root: Path | str) -> KnowledgeGraph:
        build = BuildDir(Path(root)).require_built()
        return cls(build.root, NetworkXStore.load(build.graph))

    @classmethod
    def build(
        cls,
        inputs: Sequence[Path | str],
        seeds: Sequence[str],
        out: Path | str,
        settings: Settings | None = None,
        push: bool = False,
        **overrides: Any,
    ) -> KnowledgeGraph:
        """Build (or resume) a graph from documents and seed entities, refresh its GraphML export and
        open it. With ``push`` the graph is also written to Neo4j (``NEO4J_*`` settings) as it grows;
        the connection is checked before any work starts."""
        from kgrag.neo4j.store import neo4j_store_from_env
        from kgrag.pipeline import Pipeline

        out = Path(out)
        settings = settings.model_copy(update=overrides) if settings else Settings.load(**overrides)
        stores = [neo4j_store_from_env(out)] if push else []
        try:
            Pipeline(settings, out, stores=stores).run([Path(p) for p in inputs], seeds)
        finally:
            for store in stores:
                store.close()
        kg = cls.open(out)
        kg.export("graphml")
        return kg

    # -- reading ----------------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        return self.dir.read_manifest()

    @property
    def report(self) -> BuildReport:
        """What the last build into this directory did (from its manifest)."""
        return BuildReport.model_validate(self.manifest.get("report", {}))

    @property
    def schema(self) -> GraphSchema | None:
        """The schema the graph was built with (None for a build directory without one)."""
        return GraphSchema.load(self.dir.schema) if self.dir.schema.exists() else None

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def entities(self) -> list[Entity]:
        return [self._entity(key) for key in sorted(self.graph.nodes)]

    def find(self, name: str) -> list[str]:
        """Keys of entities whose name or alias matches ``name`` (case, punctuation, articles,
        left-out middle names); the closest spelling when nothing matches exactly."""
        wanted = normalize(name)
        keys = list(self._names.get(wanted, []))
        if not keys:
            keys = [k for n, ks in self._names.items() if is_alias(wanted, n) or is_alias(n, wanted) for k in ks]
        if not keys:
            close = difflib.get_close_matches(wanted, list(self._names), n=1, cutoff=0.85)
            keys = self._names[close[0]] if close else []
        return sorted(set(keys), key=lambda k: (-self.graph.degree(k), k))

    def lookup(self, name: str) -> Entity | None:
        """The best-connected entity matching ``name``, with its facts (strongest first)."""
        keys = self.find(name)
        return self._entity(keys[0]) if keys else None

    def _entity(self, key: str) -> Entity:
        data = self.graph.nodes[key]
        facts = [self._fact(d, "out", t) for _, t, d in self.graph.out_edges(key, data=True)]
        facts += [self._fact(d, "in", h) for h, _, d in self.graph.in_edges(key, data=True)]
        facts.sort(key=lambda f: (f.derived, -f.confidence, f.relation, f.target))
        return Entity(key=key, name=data["name"], type=data["type"], aliases=data.get("aliases", []), facts=facts)

    def _fact(self, data: dict[str, Any], direction: str, other: str) -> Fact:
        node = self.graph.nodes[other]
        return Fact(
            relation=data["relation"],
            direction=direction,
            target=node["name"],
            target_type=node["type"],
            confidence=data["confidence"],
            derived=data.get("derived", False),
            sources=[Evidence(**e) for e in data.get("evidence", [])],
        )

    def evidence_text(self, evidence: Evidence) -> tuple[str, str]:
        """(document source, the evidence span's text) for one piece of provenance (no text when the
        build directory has no passages.sqlite). Reading writes nothing (PassageStore.open_readonly)."""
        if not self.dir.passages.exists():
            return evidence.doc_id, ""
        store = PassageStore.open_readonly(self.dir.passages)
        try:
            doc = store.document(evidence.doc_id)
        finally:
            store.close()
        if doc is None:
            return evidence.doc_id, ""
        return doc.source, doc.text[evidence.start : evidence.end]

    # -- export -----------------------------------------------------------------------------------
    def export(self, fmt: str = "graphml", path: Path | str | None = None) -> Path:
        """Write the graph as ``graphml``, node-link ``json``, a Neo4j ``cypher`` script or ``neo4j-csv``
        import files (a folder); returns the file written."""
        schema = self.schema if fmt == "cypher" else None
        writers = {
            "graphml": (export_graphml, self.dir.graphml.name),
            "json": (export_json, "graph.nodelink.json"),
            "cypher": (
                partial(
                    export_cypher,
                    passages_db=self.dir.passages,
                    entity_types=schema.entity_type_names if schema else None,
                ),
                "graph.cypher",
            ),
            "neo4j-csv": (partial(export_neo4j_csv, passages_db=self.dir.passages), "neo4j-import"),
        }
        if fmt not in writers:
            raise KgragError(f"unknown export format {fmt!r}: choose one of {', '.join(writers)}")
        writer, default_name = writers[fmt]
        return writer(self.graph, Path(path) if path else self.dir.root / default_name)

    def push(
        self,
        uri: str | None = None,
        database: str | None = None,
        username: str | None = None,
        env_file: Path | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> dict[str, int]:
        """Write the graph to Neo4j (``NEO4J_*`` variables or ``env_file``; the arguments override
        them); idempotent. Returns the database's counts afterwards."""
        from kgrag.neo4j.store import neo4j_store_from_env

        store = neo4j_store_from_env(self.dir.root, env_file, uri=uri, database=database, username=username)
        try:
            store.batch_size = batch_size
            store.write(from_networkx(self.graph))
            return store.counts()
        finally:
            store.close()

    def write_browser_style(self, path: Path | str | None = None) -> Path | None:
        """A Neo4j Browser style (``neo4j.grass`` in the build directory unless ``path``) colouring the
        schema's entity types; None when the build has no schema."""
        schema = self.schema
        if schema is None:
            return None
        return write_grass(schema.entity_type_names, Path(path) if path else self.dir.root / "neo4j.grass")
