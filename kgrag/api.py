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
from kgrag.records import BuildReport, Entity, Evidence, Fact, NameMatch
from kgrag.schema import GraphSchema
from kgrag.text import is_alias, normalize

CLOSEST_CUTOFF = 0.85  # difflib ratio a misspelt name needs for lookup to show the entity anyway
SUGGEST_CUTOFF = 0.7  # ... and for suggest to offer it (difflib's own 0.6 offers "Paris" for "Marie")


def _similarity(matcher: difflib.SequenceMatcher[str], name: str) -> float:
    """difflib's ratio of the wanted name (``matcher``'s second sequence) to ``name`` or to its best run
    of as many words as the wanted name has; 0.0 under :data:`SUGGEST_CUTOFF`. Both are normalized."""
    words, width = name.split(), len(matcher.b.split())
    runs = [" ".join(words[i : i + width]) for i in range(len(words) - width + 1)] if width < len(words) else []
    best = 0.0
    for candidate in [name, *runs]:
        matcher.set_seq1(candidate)
        # the cheap upper bounds first, as difflib.get_close_matches does
        if matcher.real_quick_ratio() >= SUGGEST_CUTOFF and matcher.quick_ratio() >= SUGGEST_CUTOFF:
            best = max(best, matcher.ratio())
    return best if best >= SUGGEST_CUTOFF else 0.0


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
        *,
        seeds_only: bool = False,
        reset: bool = False,
        reextract: bool = False,
        **overrides: Any,
    ) -> KnowledgeGraph:
        """Build a graph from documents and seed entities into ``out``, adding to what it holds, and
        open it (``seeds`` may be empty to expand the remembered ones again). ``seeds_only``,
        ``reset`` and ``reextract`` are :meth:`kgrag.pipeline.Pipeline.run`'s. With ``push`` the graph
        is also written to Neo4j (``NEO4J_*`` settings) as it grows; the connection is checked before
        any work starts."""
        from kgrag.neo4j.store import neo4j_store_from_env
        from kgrag.pipeline import Pipeline

        out = Path(out)
        settings = settings.model_copy(update=overrides) if settings else Settings.load(**overrides)
        stores = [neo4j_store_from_env(out)] if push else []
        try:
            Pipeline(settings, out, stores=stores).run(
                [Path(p) for p in inputs], seeds, seeds_only=seeds_only, reset=reset, reextract=reextract
            )
        finally:
            for store in stores:
                store.close()
        return cls.open(out)

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

    def match(self, name: str) -> NameMatch | None:
        """The entities ``name`` matches and how: its normalized form (case, accents, punctuation and
        articles aside) equal to a name or alias; else a name with middle words left out or added
        ("Marie Curie" / "Marie Skłodowska Curie"); else the closest spelling (difflib ratio 0.85 or
        more). None when nothing matches; :meth:`suggest` then offers names."""
        wanted = normalize(name)
        how = "exact"
        keys = list(self._names.get(wanted, []))
        if not keys:
            how = "alias"
            keys = [k for n, ks in self._names.items() if is_alias(wanted, n) or is_alias(n, wanted) for k in ks]
        if not keys:
            how = "closest"
            close = difflib.get_close_matches(wanted, list(self._names), n=1, cutoff=CLOSEST_CUTOFF)
            keys = self._names[close[0]] if close else []
        if not keys:
            return None
        keys = sorted(set(keys), key=lambda k: (-self.graph.degree(k), k))
        if how == "exact" and normalize(self.graph.nodes[keys[0]]["name"]) != wanted:
            how = "alias"  # the name is one of the entity's recorded aliases
        return NameMatch(query=name, keys=keys, how=how)

    def find(self, name: str) -> list[str]:
        """Keys of the entities :meth:`match` finds for ``name``, best connected first; [] for none."""
        found = self.match(name)
        return found.keys if found else []

    def lookup(self, name: str) -> Entity | None:
        """The best-connected entity matching ``name``, with its facts (strongest first); None for none.
        :meth:`match` says whether it matched by name, by alias or as the closest spelling."""
        found = self.match(name)
        return self._entity(found.key) if found else None

    def entity(self, key: str) -> Entity:
        """The entity with this key (as :meth:`match` returns them), with its facts (strongest first)."""
        if key not in self.graph:
            raise KgragError(f"no entity with key {key!r} in {self.dir.root}")
        return self._entity(key)

    def suggest(self, name: str, n: int = 5) -> list[str]:
        """Up to ``n`` entity names spelled like ``name``, closest first (best connected first among
        equals): the difflib ratio of the normalized ``name`` to each normalized name or alias, or to
        as many of its consecutive words (so "Curie" offers "Marie Curie"), 0.7 or more. Names are
        canonical, whichever of an entity's names was close, and each comes once."""
        wanted = normalize(name)
        if not wanted:
            return []
        matcher = difflib.SequenceMatcher(b=wanted)  # difflib indexes the second sequence once
        scored: list[tuple[float, str]] = []
        for normalized, keys in self._names.items():
            score = _similarity(matcher, normalized)
            scored += [(score, key) for key in keys] if score else []
        scored.sort(key=lambda sk: (-sk[0], -self.graph.degree(sk[1]), sk[1]))
        suggestions: list[str] = []
        for _, key in scored:
            canonical = self.graph.nodes[key]["name"]
            if canonical not in suggestions:
                suggestions.append(canonical)
        return suggestions[:n]

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

        with self.dir.lock("push"):  # a build in progress would change the graph under the push
            store = neo4j_store_from_env(self.dir.root, env_file, uri=uri, database=database, username=username)
            try:
                store.batch_size = batch_size
                store.write(from_networkx(NetworkXStore.load(self.dir.graph)))
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
