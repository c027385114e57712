"""The graph store and its exports: node-link JSON (graph.json) and GraphML round trips."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from kgrag.graph.export import export_graphml, export_json
from kgrag.graph.networkx_store import NetworkXStore, from_networkx, to_networkx
from kgrag.records import Entity, Evidence, ResolvedGraph, Triple


def evidence(
    pid: int, start: int, end: int, p_doc: float = 0.6, p_triple: float = 0.5, derived: bool = False
) -> Evidence:
    return Evidence(
        doc_id=f"doc{pid}", passage_id=pid, start=start, end=end, p_doc=p_doc, p_triple=p_triple, derived=derived
    )


def sample_graph() -> ResolvedGraph:
    marie, pierre, warsaw, radium = "person:marie curie", "person:pierre curie", "location:warsaw", "substance:radium"
    return ResolvedGraph(
        entities=[
            Entity(key=marie, name="Marie Curie", type="Person", aliases=["Marie Skłodowska Curie", "marie curie"]),
            Entity(key=pierre, name="Pierre Curie", type="Person"),
            Entity(key=radium, name="radium", type="Substance"),
            Entity(key=warsaw, name="Warsaw", type="Location", aliases=['"Warszawa" <city>']),
        ],
        triples=[
            Triple(
                head=marie,
                head_type="Person",
                relation="spouse",
                tail=pierre,
                tail_type="Person",
                confidence=0.7,
                evidence=[evidence(1, 10, 42), evidence(2, 0, 30, p_doc=0.4, p_triple=1.0)],
            ),
            # a second edge between the same pair: the MultiDiGraph must keep both
            Triple(
                head=marie,
                head_type="Person",
                relation="collaborated_with",
                tail=pierre,
                tail_type="Person",
                confidence=0.25,
                evidence=[evidence(3, 5, 60, p_doc=0.5)],
            ),
            Triple(
                head=pierre,
                head_type="Person",
                relation="spouse",
                tail=marie,
                tail_type="Person",
                confidence=0.123457,
                evidence=[evidence(1, 10, 42, p_triple=0.205762)],
            ),
            Triple(
                head=marie,
                head_type="Person",
                relation="born_in",
                tail=warsaw,
                tail_type="Location",
                confidence=1.0,
                evidence=[evidence(4, 100, 120, p_doc=1.0, p_triple=1.0)],
            ),
            Triple(
                head=marie,
                head_type="Person",
                relation="discovered",
                tail=radium,
                tail_type="Substance",
                confidence=0.0,
                derived=True,
                evidence=[evidence(9, 0, 80, derived=True)],
            ),
        ],
    )


def canonical(graph: ResolvedGraph) -> tuple[list[Entity], list[Triple]]:
    return sorted(graph.entities, key=lambda e: e.key), sorted(graph.triples, key=lambda t: t.key)


def test_node_link_round_trip(tmp_path: Path) -> None:
    graph = sample_graph()
    path = tmp_path / "graph.json"
    store = NetworkXStore(path)
    store.write(graph)
    store.close()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert len(data["nodes"]) == 4 and len(data["edges"]) == 5
    loaded = NetworkXStore.load(path)
    assert isinstance(loaded, nx.MultiDiGraph)
    assert loaded.number_of_nodes() == 4 and loaded.number_of_edges() == 5
    assert loaded.nodes["person:marie curie"]["aliases"] == ["Marie Skłodowska Curie", "marie curie"]
    assert set(loaded["person:marie curie"]["person:pierre curie"]) == {"spouse", "collaborated_with"}
    assert canonical(from_networkx(loaded)) == canonical(graph)
    # a store opened on an existing file starts from it
    assert NetworkXStore(path).graph.number_of_edges() == 5


def test_writing_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    NetworkXStore(path).write(sample_graph())
    first = path.read_bytes()
    store = NetworkXStore(path)
    store.write(sample_graph())
    assert path.read_bytes() == first
    assert not list(tmp_path.glob("*.tmp"))


def test_export_json_is_node_link(tmp_path: Path) -> None:
    g = to_networkx(sample_graph())
    path = export_json(g, tmp_path / "graph.nodelink.json")
    back = nx.node_link_graph(json.loads(path.read_text(encoding="utf-8")), edges="edges")
    assert canonical(from_networkx(back)) == canonical(sample_graph())


def test_graphml_round_trip(tmp_path: Path) -> None:
    graph = sample_graph()
    store = NetworkXStore(tmp_path / "graph.json")
    store.write(graph)
    path = export_graphml(NetworkXStore.load(tmp_path / "graph.json"), tmp_path / "graph.graphml")
    assert path == tmp_path / "graph.graphml" and path.exists()
    assert not list(tmp_path.glob("*.tmp"))

    back = nx.read_graphml(path, force_multigraph=True)
    assert back.is_directed() and back.is_multigraph()
    assert back.number_of_nodes() == len(graph.entities)
    assert back.number_of_edges() == len(graph.triples)
    for entity in graph.entities:
        node = back.nodes[entity.key]
        assert node["name"] == entity.name
        assert node["type"] == entity.type
        assert json.loads(node["aliases"]) == entity.aliases
    edges = {(h, t, d["relation"]): d for h, t, d in back.edges(data=True)}
    assert len(edges) == len(graph.triples)
    for triple in graph.triples:
        data = edges[(triple.head, triple.tail, triple.relation)]
        assert isinstance(data["confidence"], float)
        assert data["confidence"] == pytest.approx(triple.confidence)
        assert data["derived"] is triple.derived
        assert data["sources"] == len(triple.evidence)
        assert [Evidence(**e) for e in json.loads(data["evidence"])] == triple.evidence
    # edge keys are the relation names
    assert set(back["person:marie curie"]["person:pierre curie"]) == {"spouse", "collaborated_with"}


def test_graphml_of_an_empty_graph(tmp_path: Path) -> None:
    path = export_graphml(to_networkx(ResolvedGraph()), tmp_path / "empty.graphml")
    back = nx.read_graphml(path)
    assert back.number_of_nodes() == 0 and back.number_of_edges() == 0


def test_graphml_is_plain_xml_with_typed_keys(tmp_path: Path) -> None:
    path = export_graphml(to_networkx(sample_graph()), tmp_path / "graph.graphml")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?xml")
    for attr, kind in [("confidence", "double"), ("name", "string"), ("evidence", "string"), ("derived", "boolean")]:
        assert f'attr.name="{attr}" attr.type="{kind}"' in text or f'attr.type="{kind}" attr.name="{attr}"' in text
