"""Neo4jStore against a real Bolt server (ArcadeDB started by the fixture, or Neo4j via KGRAG_NEO4J_URI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cypher_lint import browser_guide_queries
from neo4j import exceptions as neo4j_errors
from neo4j_graphs import INJECTION, NASTY_NAMES, corpus, evidence_for, synthetic_graph, write_passages
from neo4j_server_fixture import BoltServer, bolt_server  # noqa: F401
from pydantic import SecretStr
from typer.testing import CliRunner

from kgrag.builddir import BuildDir
from kgrag.cli import app
from kgrag.errors import KgragError
from kgrag.graph.networkx_store import NetworkXStore, to_networkx
from kgrag.neo4j import cypher
from kgrag.neo4j.export import export_cypher
from kgrag.neo4j.model import Batch
from kgrag.neo4j.store import Neo4jSettings, Neo4jStore, neo4j_store_from_env
from kgrag.records import Entity, ResolvedGraph, Triple
from kgrag.schema import GraphSchema


@pytest.fixture
def server(bolt_server: BoltServer) -> BoltServer:  # noqa: F811
    """The session's server, emptied for this test."""
    bolt_server.clear()
    return bolt_server


@pytest.fixture
def build(tmp_path: Path) -> tuple[Path, ResolvedGraph]:
    """A build directory (passages.sqlite, graph.json, schema.json) of a synthetic graph."""
    docs, passages = corpus(3, 4)
    write_passages(tmp_path / "passages.sqlite", docs, passages)
    graph = synthetic_graph(30, 60, passages, names=NASTY_NAMES)
    NetworkXStore(tmp_path / "graph.json").write(graph)
    schema = Path(__file__).resolve().parents[1] / "kgrag" / "schemas" / "default.yaml"
    (tmp_path / "schema.json").write_text(GraphSchema.load(schema).model_dump_json(), encoding="utf-8")
    return tmp_path, graph


def expected_counts(graph: ResolvedGraph) -> dict[str, int]:
    evidence = {(ev.doc_id, ev.passage_id) for t in graph.triples for ev in t.evidence}
    mentions = {(ev.doc_id, ev.passage_id, k) for t in graph.triples for ev in t.evidence for k in (t.head, t.tail)}
    return {
        "entities": len(graph.entities),
        "facts": len({(t.head, cypher.relationship_type(t.relation), t.tail) for t in graph.triples}),
        "documents": len({d for d, _ in evidence}),
        "passages": len(evidence),
        "has_passage": len(evidence),
        "mentions": len(mentions),
    }


def model_counts(store: Neo4jStore) -> dict[str, int]:
    counts = store.counts()
    return {k: counts[k] for k in ("entities", "facts", "documents", "passages", "has_passage", "mentions")}


def test_push_twice_leaves_the_counts_unchanged(server: BoltServer, build: tuple[Path, ResolvedGraph]) -> None:
    root, graph = build
    with server.store(passages_db=root / "passages.sqlite", batch_size=7) as store:
        store.write(graph)
        first = store.counts()
        assert model_counts(store) == expected_counts(graph)
        store.write(graph)
        assert store.counts() == first


def test_the_graph_reads_well_and_traces_each_fact_to_its_text(
    server: BoltServer, build: tuple[Path, ResolvedGraph]
) -> None:
    root, graph = build
    with server.store(passages_db=root / "passages.sqlite") as store:
        store.write(graph)
        t = graph.triples[0]
        rows = store.query(
            "MATCH (h:Entity {key: $head})-[f]->(t:Entity {key: $tail}) WHERE type(f) = $type "
            "MATCH (d:Document)-[:HAS_PASSAGE]->(p:Passage)-[:MENTIONS]->(h) WHERE p.key IN f.sources "
            "RETURN labels(h) AS labels, f.relation AS relation, f.confidence AS confidence, "
            "f.derived AS derived, d.source AS document, p.text AS text",
            head=t.head,
            tail=t.tail,
            type=cypher.relationship_type(t.relation),
        )
        assert len(rows) == len({ev.passage_id for ev in t.evidence})
        assert set(rows[0]["labels"]) == {"Entity", cypher.entity_label(t.head_type)}
        assert rows[0]["relation"] == t.relation and rows[0]["derived"] is False
        assert rows[0]["confidence"] == pytest.approx(t.confidence)
        assert rows[0]["document"].startswith("docs/") and "backslash" in rows[0]["text"]
        constraints = store.query("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")[0]["names"]
        assert set(cypher.CONSTRAINTS) <= set(constraints)


def test_injection_is_stored_as_a_literal_name_and_harms_nothing(server: BoltServer) -> None:
    with server.store() as store:
        store.write(ResolvedGraph(entities=[Entity(key="person:bystander", name="Bystander", type="Person")]))
        entities = [
            Entity(key=f"person:nasty {i}", name=name, type="Person", aliases=[name, f"{name}'"])
            for i, name in enumerate(NASTY_NAMES)
        ]
        triples = [
            Triple(
                head=entities[0].key,
                head_type="Person",
                relation="collaborated_with",
                tail=e.key,
                tail_type="Person",
                confidence=0.5,
            )
            for e in entities[1:]
        ]
        store.write(ResolvedGraph(entities=entities, triples=triples))
        stored = {
            r["key"]: r for r in store.query("MATCH (e:Entity) RETURN e.key AS key, e.name AS name, e.aliases AS a")
        }
        assert "person:bystander" in stored and len(stored) == len(NASTY_NAMES) + 1
        for e in entities:
            assert stored[e.key]["name"] == e.name
            assert stored[e.key]["a"] == [f"{e.name}'"]
        assert stored["person:nasty 0"]["name"] == INJECTION
        assert store.counts()["facts"] == len(NASTY_NAMES) - 1


def test_keyword_named_types_and_relations_work(server: BoltServer) -> None:
    entities = [Entity(key="match:a", name="A", type="Match"), Entity(key="order:b", name="B", type="order")]
    triple = Triple(
        head="match:a", head_type="Match", relation="delete", tail="order:b", tail_type="order", confidence=1
    )
    with server.store() as store:
        store.write(ResolvedGraph(entities=entities, triples=[triple]))
        rows = store.query("MATCH (a:Match)-[f:DELETE]->(b:Order) RETURN a.name AS a, b.name AS b")
        assert rows == [{"a": "A", "b": "B"}]


def test_repush_after_an_incremental_build_adds_only_what_is_new(server: BoltServer) -> None:
    _, passages = corpus(2, 3)
    p0, p1, p2 = passages[0], passages[1], passages[4]
    curie = Entity(key="person:marie curie", name="Marie Curie", type="Person", aliases=["Marie Skłodowska"])
    paris = Entity(key="location:paris", name="Paris", type="Location")
    fact = Triple(
        head=curie.key,
        head_type="Person",
        relation="died_in",
        tail=paris.key,
        tail_type="Location",
        confidence=0.4,
        evidence=[evidence_for(p0)],
        derived=True,
    )
    with server.store() as store:
        store.write(ResolvedGraph(entities=[curie, paris], triples=[fact]))
        before = store.counts()
        # the next build: a new canonical name and alias, new evidence, a lower score, a new fact
        curie2 = curie.model_copy(update={"name": "Marie Skłodowska Curie", "aliases": ["Madame Curie"]})
        warsaw = Entity(key="location:warsaw", name="Warsaw", type="Location")
        fact2 = fact.model_copy(update={"confidence": 0.3, "evidence": [evidence_for(p1)], "derived": False})
        born = fact.model_copy(
            update={"relation": "born_in", "tail": warsaw.key, "confidence": 0.9, "evidence": [evidence_for(p2)]}
        )
        store.write(ResolvedGraph(entities=[curie2, paris, warsaw], triples=[fact2, born]))
        after = store.counts()
        assert after["entities"] == before["entities"] + 1 and after["facts"] == before["facts"] + 1
        [row] = store.query(
            "MATCH (e:Entity {key: $key})-[f:DIED_IN]->() RETURN e.name AS name, e.aliases AS aliases, "
            "f.confidence AS confidence, f.sources AS sources, f.derived AS derived",
            key=curie.key,
        )
        assert row["name"] == "Marie Skłodowska Curie"
        assert set(row["aliases"]) == {"Marie Skłodowska", "Madame Curie", "Marie Curie"}
        assert row["confidence"] == pytest.approx(0.4)  # the highest seen
        assert row["sources"] == [f"{p0.doc_id}:{p0.id}", f"{p1.doc_id}:{p1.id}"]
        assert row["derived"] is False  # now supported by a document of its own
        store.write(ResolvedGraph(entities=[curie2, paris, warsaw], triples=[fact2, born]))
        assert store.counts() == after


def test_a_failed_batch_leaves_nothing_half_written(server: BoltServer) -> None:
    with server.store() as store:
        store.write(ResolvedGraph(entities=[Entity(key="person:x", name="X", type="Person")]))
        before = store.counts()
        rows: list[dict[str, Any]] = [
            {"key": f"organization:o{i}", "name": f"O{i}", "type": "Organization", "aliases": []} for i in range(500)
        ]
        # the last row carries a map where a property value must be a scalar or a list: the server refuses it
        rows.append({"key": "organization:bad", "name": "Bad", "type": "Organization", "aliases": {"a": 1}})
        with pytest.raises(neo4j_errors.CypherTypeError):
            store._write(cypher.merge_entities("Organization"), {"rows": rows})
        assert store.counts() == before
        # through write(): one line naming the batch, and still nothing of it written
        bad = Batch(kind="entity:Organization", statement=cypher.merge_entities("Organization"), rows=rows)
        store.batches = lambda graph: [bad]  # type: ignore[method-assign]
        with pytest.raises(KgragError, match=r"refused batch 1 of 1 \(entity:Organization, rolled back\)"):
            store.write(ResolvedGraph())
        assert store.counts() == before


class _Interrupted(Neo4jStore):
    """A store whose connection 'drops' (Ctrl-C) after a number of batches."""

    def __init__(self, settings: Neo4jSettings, after: int, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.left = after

    def _write(self, statement: str, params: dict[str, Any]) -> Any:
        if "rows" in params:
            if self.left == 0:
                raise KeyboardInterrupt
            self.left -= 1
        return super()._write(statement, params)


def test_an_interrupted_push_completes_when_run_again(server: BoltServer, build: tuple[Path, ResolvedGraph]) -> None:
    root, graph = build
    db = root / "passages.sqlite"
    with server.store(passages_db=db, batch_size=10) as store:
        total = len(store.batches(graph))
    broken = _Interrupted(server.settings, after=total // 2, passages_db=db, batch_size=10)
    with pytest.raises(KeyboardInterrupt):
        broken.write(graph)
    broken.close()
    with server.store(passages_db=db, batch_size=10) as store:
        partial = store.counts()
        assert partial["nodes"] > 0 and model_counts(store) != expected_counts(graph)
        store.write(graph)
        assert model_counts(store) == expected_counts(graph)


def test_the_exported_script_builds_the_same_graph(
    server: BoltServer, build: tuple[Path, ResolvedGraph], tmp_path: Path
) -> None:
    root, graph = build
    g = NetworkXStore.load(root / "graph.json")
    script = export_cypher(g, tmp_path / "graph.cypher", root / "passages.sqlite").read_text(encoding="utf-8")
    statements = list(cypher.split_statements(script))
    with server.store() as store:
        for _ in range(2):  # run twice: idempotent
            for statement in statements:
                store._write(statement, {})
            counts = store.counts()
            assert counts["entities"] == g.number_of_nodes()
            assert counts["facts"] == g.number_of_edges()
        names = {
            r["key"]: (r["name"], r["aliases"])
            for r in store.query("MATCH (e:Entity) RETURN e.key AS key, e.name AS name, e.aliases AS aliases")
        }
        for e in graph.entities:
            assert names[e.key] == (e.name, [a for a in e.aliases if a != e.name])
        texts = {r["t"] for r in store.query("MATCH (p:Passage) RETURN p.text AS t")}
        assert texts and all("backslash" in t and '"quoted"' in t for t in texts)
    with server.store(passages_db=root / "passages.sqlite") as store:
        before = store.counts()
        store.write(graph)  # the store and the script write one and the same graph
        assert store.counts() == before


def test_the_browser_guide_queries_run(server: BoltServer, build: tuple[Path, ResolvedGraph]) -> None:
    root, graph = build
    marie = Entity(key="person:marie curie", name="Marie Curie", type="Person", aliases=["Marie Skłodowska"])
    warsaw = Entity(key="location:warsaw", name="Warsaw", type="Location")
    _, passages = corpus(3, 4)
    link = Triple(
        head=marie.key,
        head_type="Person",
        relation="born_in",
        tail=warsaw.key,
        tail_type="Location",
        confidence=0.2,
        evidence=[evidence_for(passages[0])],
    )
    bridge = link.model_copy(update={"relation": "works_for", "tail": graph.entities[0].key, "tail_type": "Person"})
    graph = ResolvedGraph(entities=[*graph.entities, marie, warsaw], triples=[*graph.triples, link, bridge])
    with server.store(passages_db=root / "passages.sqlite") as store:
        store.write(graph)
        for name, query in browser_guide_queries().items():
            assert store.query(query), f"{name} returned nothing"


def test_push_command_and_errors(server: BoltServer, build: tuple[Path, ResolvedGraph]) -> None:
    root, graph = build
    s = server.settings
    env = {
        "NEO4J_URI": s.uri,
        "NEO4J_USERNAME": s.username,
        "NEO4J_PASSWORD": s.password.get_secret_value() if s.password else "",
        "NEO4J_DATABASE": s.database,
    }
    runner = CliRunner()
    result = runner.invoke(app, ["push", str(root)], env=env)
    assert result.exit_code == 0, result.output
    assert (root / "neo4j.grass").exists()
    with server.store() as store:
        assert model_counts(store) == expected_counts(graph)

    wrong = runner.invoke(app, ["push", str(root)], env={**env, "NEO4J_PASSWORD": "not-the-password-42"})
    assert wrong.exit_code == 1 and "refused the credentials" in wrong.output
    assert "not-the-password-42" not in wrong.output and env["NEO4J_PASSWORD"] not in wrong.output
    gone = runner.invoke(app, ["push", str(root), "--uri", "bolt://127.0.0.1:1"], env=env)
    assert gone.exit_code == 1 and "cannot reach Neo4j at bolt://127.0.0.1:1" in gone.output
    unbuilt = runner.invoke(app, ["push", str(root / "nothing")], env=env)
    assert unbuilt.exit_code == 1 and "no built graph" in unbuilt.output


def test_store_from_env_file(server: BoltServer, build: tuple[Path, ResolvedGraph], monkeypatch: Any) -> None:
    root, graph = build
    for name in ("NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    s = server.settings
    password = s.password.get_secret_value() if s.password else ""
    env_file = root / "neo4j.env"
    env_file.write_text(
        f"NEO4J_URI={s.uri}\nNEO4J_USERNAME={s.username}\nNEO4J_PASSWORD='{password}'\nNEO4J_DATABASE={s.database}\n",
        encoding="utf-8",
    )
    store = neo4j_store_from_env(BuildDir(root).root, env_file)
    try:
        assert store.settings.password == SecretStr(password) and password not in repr(store.settings)
        store.write(graph)
        assert model_counts(store) == expected_counts(graph)
    finally:
        store.close()
    with pytest.raises(KgragError, match="has no database"):
        neo4j_store_from_env(root, env_file, database="no_such_db")


def test_batches_are_what_the_store_sends(server: BoltServer) -> None:
    _, passages = corpus(1, 2)
    graph = synthetic_graph(40, 90, passages)
    with server.store(batch_size=25) as store:
        batches: list[Batch] = store.batches(graph)
        store.write(graph)
        assert set(store.statements_sent) == set(cypher.schema_statements()) | {b.statement for b in batches}
        assert store.counts()["facts"] == 90 and to_networkx(graph).number_of_edges() == 90


def test_neo4j_scheme_uris_work_too(server: BoltServer) -> None:
    s = server.settings
    if not s.uri.startswith("bolt://"):
        pytest.skip("the server under test is not reached through bolt://")
    routed = s.model_copy(update={"uri": "neo4j://" + s.uri.removeprefix("bolt://")})
    with Neo4jStore(routed) as store:
        store.write(ResolvedGraph(entities=[Entity(key="person:r", name="R", type="Person")]))
        assert store.counts()["entities"] == 1


PIPELINE_CORPUS = {
    "marie.txt": "Marie Curie was born in Warsaw. In 1895 Marie Curie married Pierre Curie. "
    "Marie Curie discovered polonium.",
    "pierre.txt": "Pierre Curie was born in Paris. Pierre Curie worked at the University of Paris.",
}
PIPELINE_OUTPUTS = {
    "born in Warsaw": [["Marie Curie", "Person", "born_in", "Warsaw", "Location"]],
    "married Pierre Curie": [["Marie Curie", "Person", "spouse", "Pierre Curie", "Person"]],
    "discovered polonium": [["Marie Curie", "Person", "discovered", "polonium", "Substance"]],
    "born in Paris": [["Pierre Curie", "Person", "born_in", "Paris", "Location"]],
    "University of Paris": [["Pierre Curie", "Person", "works_for", "University of Paris", "Organization"]],
}


def test_a_build_writes_to_neo4j_as_it_goes(server: BoltServer, tmp_path: Path, embedder: Any) -> None:
    """``Pipeline(stores=[neo4j_store_from_env(out)])`` — what ``kgrag build --push`` does — after an
    interrupted build and its resumption holds the same graph as graph.json, lexical layer included."""
    from fakes import SCHEMAS, FakeGenerator, triples_json

    from kgrag.config import Settings
    from kgrag.pipeline import Pipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in PIPELINE_CORPUS.items():
        (docs / name).write_text(text, encoding="utf-8")
    out = tmp_path / "build"
    settings = Settings(
        schema_path=SCHEMAS / "default.yaml", chunk_sentences=1, chunk_overlap=0, top_k=10, hops=2, n_threads=1
    )
    outputs = {k: triples_json(*v) for k, v in PIPELINE_OUTPUTS.items()}
    s = server.settings
    password = s.password.get_secret_value() if s.password else ""
    overrides = {"uri": s.uri, "username": s.username, "password": password, "database": s.database}

    for interrupt_on in (3, None):  # Ctrl-C during the first hop, then the same command again
        store = neo4j_store_from_env(out, **overrides)  # before the build dir has any passages
        try:
            backend = FakeGenerator(outputs, interrupt_on=interrupt_on)
            pipeline = Pipeline(settings, out, backend=backend, embedder=embedder, stores=[store], show_progress=False)
            if interrupt_on is None:
                pipeline.run([docs], ["Marie Curie"])
            else:
                with pytest.raises(KeyboardInterrupt):
                    pipeline.run([docs], ["Marie Curie"])
        finally:
            store.close()

    g = NetworkXStore.load(out / "graph.json")
    with server.store() as store:
        counts = store.counts()
        assert counts["entities"] == g.number_of_nodes() >= 6
        assert counts["facts"] == g.number_of_edges()
        texts = [r["t"] for r in store.query("MATCH (p:Passage) WHERE NOT p.derived RETURN p.text AS t")]
        assert texts and all(t for t in texts)
        assert any("Warsaw" in t for t in texts)
