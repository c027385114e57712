"""Exports of a built graph: GraphML (Gephi, yEd, networkx.read_graphml) and node-link JSON."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from kgrag.io import atomic_path, write_json_atomic


def graphml_ready(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy whose list/dict attributes are JSON strings (GraphML holds scalars only)."""
    out = nx.MultiDiGraph()
    for key, data in g.nodes(data=True):
        out.add_node(key, **{k: _scalar(v) for k, v in data.items()})
    for head, tail, key, data in g.edges(keys=True, data=True):
        attrs = {k: _scalar(v) for k, v in data.items()}
        attrs["sources"] = len(data.get("evidence", []))
        out.add_edge(head, tail, key=key, **attrs)
    return out


def _scalar(value: object) -> object:
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return value


def export_graphml(g: nx.MultiDiGraph, path: Path) -> Path:
    with atomic_path(path) as tmp:
        nx.write_graphml(graphml_ready(g), tmp, named_key_ids=True)
    return path


def export_json(g: nx.MultiDiGraph, path: Path) -> Path:
    write_json_atomic(path, nx.node_link_data(g, edges="edges"))
    return path
