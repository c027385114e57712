"""The embedded graph store: a NetworkX MultiDiGraph saved as node-link JSON (graph.json)."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from kgrag.errors import KgragError
from kgrag.io import os_error, where, write_json_atomic
from kgrag.records import Entity, Evidence, ResolvedGraph, Triple


def to_networkx(graph: ResolvedGraph) -> nx.MultiDiGraph:
    """Nodes keyed by entity key; one edge per (head, relation, tail), keyed by the relation."""
    g = nx.MultiDiGraph()
    for e in graph.entities:
        g.add_node(e.key, name=e.name, type=e.type, aliases=list(e.aliases))
    for t in graph.triples:
        g.add_edge(
            t.head,
            t.tail,
            key=t.relation,
            relation=t.relation,
            confidence=round(t.confidence, 6),
            derived=t.derived,
            evidence=[ev.model_dump() for ev in t.evidence],
        )
    return g


def from_networkx(g: nx.MultiDiGraph) -> ResolvedGraph:
    entities = [
        Entity(key=k, name=d["name"], type=d["type"], aliases=list(d.get("aliases", []))) for k, d in g.nodes(data=True)
    ]
    triples = [
        Triple(
            head=h,
            head_type=g.nodes[h]["type"],
            relation=d["relation"],
            tail=t,
            tail_type=g.nodes[t]["type"],
            confidence=d["confidence"],
            derived=d.get("derived", False),
            evidence=[Evidence(**ev) for ev in d.get("evidence", [])],
        )
        for h, t, d in g.edges(data=True)
    ]
    return ResolvedGraph(entities=entities, triples=triples)


class NetworkXStore:
    """graph.json in node-link form is the source of truth for lookup and export. The file is read
    when ``graph`` is first used, so a build replaces a damaged one without reading it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._graph: nx.MultiDiGraph | None = None

    @property
    def graph(self) -> nx.MultiDiGraph:
        if self._graph is None:
            self._graph = self.load(self.path) if self.path.exists() else nx.MultiDiGraph()
        return self._graph

    @staticmethod
    def load(path: Path) -> nx.MultiDiGraph:
        """The graph in ``path``; an unreadable or damaged file is one :class:`KgragError`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")
        except OSError as exc:
            raise os_error("read", path, exc) from exc
        except (ValueError, TypeError, KeyError, AttributeError, nx.NetworkXError) as exc:
            raise KgragError(
                f"{where(path)} is damaged (not a graph in node-link JSON: {_first_line(exc)}): run `kgrag build` "
                "on it again (same inputs and model), which writes it anew from the extraction cache"
            ) from exc

    def write(self, graph: ResolvedGraph) -> None:
        self._graph = to_networkx(graph)
        write_json_atomic(self.path, nx.node_link_data(self._graph, edges="edges"))

    def close(self) -> None:
        pass


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
