"""The embedded graph store: a NetworkX MultiDiGraph saved as node-link JSON (graph.json)."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from kgrag.io import write_json_atomic
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
    """graph.json in node-link form is the source of truth for lookup and export."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.graph = self.load(path) if path.exists() else nx.MultiDiGraph()

    @staticmethod
    def load(path: Path) -> nx.MultiDiGraph:
        data = json.loads(path.read_text(encoding="utf-8"))
        return nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")

    def write(self, graph: ResolvedGraph) -> None:
        self.graph = to_networkx(graph)
        write_json_atomic(self.path, nx.node_link_data(self.graph, edges="edges"))

    def close(self) -> None:
        pass
