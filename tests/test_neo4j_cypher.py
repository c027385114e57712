"""The Neo4j model without a server: identifiers, literals, rows, exports, and Neo4j's parser on it all."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from cypher_lint import browser_guide_queries, lint
from neo4j_graphs import INJECTION, NASTY_NAMES, corpus, synthetic_graph, write_passages

from kgrag.errors import KgragError
from kgrag.graph.networkx_store import to_networkx
from kgrag.neo4j import cypher
from kgrag.neo4j.browser_style import grass_style
from kgrag.neo4j.export import cypher_script, export_cypher, export_neo4j_csv
from kgrag.neo4j.model import PassageSource, batches, graph_rows, statement_for
from kgrag.records import Entity, Evidence, ResolvedGraph, Triple
from kgrag.schema import GraphSchema

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = sorted((REPO / "kgrag" / "schemas").glob("*.yaml"))


@pytest.mark.parametrize(
    ("relation", "expected"),
    [
        ("born_in", "BORN_IN"),
        ("Work_For", "WORK_FOR"),
        ("OrgBased_In", "ORG_BASED_IN"),
        ("birthPlace", "BIRTH_PLACE"),
        ("associatedBand/associatedMusicalArtist", "ASSOCIATED_BAND_ASSOCIATED_MUSICAL_ARTIST"),
        ("ISBN number", "ISBN_NUMBER"),
        ("1st place", "R_1ST_PLACE"),
        (INJECTION, "X_N_DETACH_DELETE_N"),
    ],
)
def test_relationship_types_are_upper_snake_case(relation: str, expected: str) -> None:
    assert cypher.relationship_type(relation) == expected
    assert cypher.REL_TYPE_RE.fullmatch(expected)


@pytest.mark.parametrize(
    ("type_name", "expected"),
    [("Person", "Person"), ("work of art", "WorkOfArt"), ("Peop", "Peop"), ("Entity", "EntityType"), ("Date", "Date")],
)
def test_entity_labels(type_name: str, expected: str) -> None:
    assert cypher.entity_label(type_name) == expected


@pytest.mark.parametrize("bad", ["", "person", "Per son", "A`B", "A-B", "Ä", "X:Y", "X)", "N{"])
def test_unsafe_identifiers_are_refused_before_any_query_is_made(bad: str) -> None:
    with pytest.raises(KgragError):
        cypher.check_label(bad)
    with pytest.raises(KgragError):
        cypher.check_rel_type(bad)
    with pytest.raises(KgragError):
        cypher.merge_entities(bad)
    with pytest.raises(KgragError):
        cypher.merge_relationships(bad)


@pytest.mark.parametrize("name", ["", "---", "ß"])
def test_names_without_ascii_letters_are_refused(name: str) -> None:
    with pytest.raises(KgragError):
        cypher.relationship_type(name)
    with pytest.raises(KgragError):
        cypher.entity_label(name)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
def test_every_bundled_schema_maps_to_distinct_valid_identifiers(path: Path) -> None:
    schema = GraphSchema.load(path)
    types = [cypher.relationship_type(r) for r in schema.relation_names]
    labels = [cypher.entity_label(t) for t in schema.entity_type_names]
    assert len(set(types)) == len(types), "two relations of one schema would share a relationship type"
    assert len(set(labels)) == len(labels)


def test_string_literals_escape_everything_that_could_end_or_change_them() -> None:
    assert cypher.quote("O'Brien") == "'O\\'Brien'"
    assert cypher.quote("a\\b") == "'a\\\\b'"
    assert cypher.quote("\\u0041") == "'\\\\u0041'"  # stays six characters, not "A"
    assert cypher.quote("line\nbreak\t\r") == "'line\\nbreak\\t\\r'"
    assert cypher.quote("\x00\x1b\u2028") == "'\\u0000\\u001b\\u2028'"
    assert cypher.quote("`}]->(n) 😀 Zoë") == "'`}]->(n) 😀 Zoë'"
    for name in NASTY_NAMES:
        body = cypher.quote(name)[1:-1]
        assert "\n" not in body and "\r" not in body
        assert re.search(r"(?<!\\)(\\\\)*'", body) is None, "an unescaped quote would end the literal"


def test_literals_of_rows() -> None:
    row = {"key": "k", "n": 3, "x": 0.25, "ok": True, "none": None, "aliases": ["a", "b'c"]}
    assert cypher.literal(row) == "{key: 'k', n: 3, x: 0.25, ok: true, none: null, aliases: ['a', 'b\\'c']}"
    with pytest.raises(KgragError):
        cypher.literal(float("nan"))
    with pytest.raises(KgragError):
        cypher.literal({"bad key": 1})


def test_split_statements_honours_quotes_and_comments() -> None:
    script = (
        "// header; with a semicolon\n"
        "CREATE (:A {s: 'a;b\\'c'});\n"
        'MERGE (:B {s: "x;y"}); /* block; comment */\n'
        "MATCH (n:`odd;label`) RETURN n\n"
    )
    assert list(cypher.split_statements(script)) == [
        "CREATE (:A {s: 'a;b\\'c'})",
        'MERGE (:B {s: "x;y"})',
        "/* block; comment */\nMATCH (n:`odd;label`) RETURN n",
    ]


# -- rows ---------------------------------------------------------------------------------------------
def test_rows_cover_both_layers_in_dependency_order(tmp_path: Path) -> None:
    docs, passages = corpus(2, 3)
    db = write_passages(tmp_path / "passages.sqlite", docs, passages)
    graph = synthetic_graph(12, 20, passages, names=NASTY_NAMES)
    rows = graph_rows(graph, PassageSource(db))
    kinds = list(rows)
    assert kinds[:2] == ["document", "passage"] and kinds[-1] == "mention"
    first_fact = next(i for i, k in enumerate(kinds) if k.startswith("fact:"))
    assert all(k.startswith("entity:") for k in kinds[2:first_fact])
    assert sum(len(v) for k, v in rows.items() if k.startswith("entity:")) == 12
    assert sum(len(v) for k, v in rows.items() if k.startswith("fact:")) == 20
    texts = {p.text for p in passages}
    assert all(r["text"] in texts and r["start"] is not None for r in rows["passage"])
    assert {r["source"] for r in rows["document"]} <= {d.source for d in docs}
    passage_keys = {r["key"] for r in rows["passage"]}
    for kind, group in rows.items():
        if kind.startswith("fact:"):
            assert all(set(r["sources"]) <= passage_keys for r in group)
    assert all(r["passage"] in passage_keys for r in rows["mention"])


def test_rows_without_a_passage_store_still_trace_facts() -> None:
    ev = Evidence(doc_id="d", passage_id=7, start=1, end=9, p_doc=0.5, p_triple=0.9)
    graph = ResolvedGraph(
        entities=[Entity(key="person:a", name="A", type="Person", aliases=["A", "Ay", "Ay"])],
        triples=[
            Triple(
                head="person:a",
                head_type="Person",
                relation="born_in",
                tail="location:b",
                tail_type="Location",
                confidence=0.4,
                evidence=[ev],
            )
        ],
    )
    rows = graph_rows(graph)
    assert rows["entity:Person"] == [{"key": "person:a", "name": "A", "type": "Person", "aliases": ["Ay"]}]
    assert rows["entity:Location"][0]["key"] == "location:b"  # a triple end the entity list lacked
    assert rows["passage"] == [
        {"key": "d:7", "id": 7, "doc_id": "d", "start": None, "end": None, "text": None, "derived": False}
    ]
    assert rows["fact:BORN_IN"][0]["sources"] == ["d:7"] and rows["fact:BORN_IN"][0]["spans"] == ["d:1-9"]


def test_batches_hold_at_most_batch_size_rows_of_one_kind() -> None:
    _, passages = corpus(1, 2)
    graph = synthetic_graph(50, 120, passages)
    out = batches(graph, size=25)
    assert all(0 < len(b.rows) <= 25 for b in out)
    assert sum(len(b.rows) for b in out if b.kind.startswith("fact:")) == 120
    assert all(b.statement == statement_for(b.kind) for b in out)


# -- exports ------------------------------------------------------------------------------------------
def test_cypher_script_is_parameter_free_and_complete(tmp_path: Path) -> None:
    docs, passages = corpus(2, 2)
    db = write_passages(tmp_path / "passages.sqlite", docs, passages)
    graph = synthetic_graph(10, 15, passages, names=NASTY_NAMES)
    types = GraphSchema.load(REPO / "kgrag" / "schemas" / "default.yaml").entity_type_names
    path = export_cypher(to_networkx(graph), tmp_path / "graph.cypher", db, types)
    script = path.read_text(encoding="utf-8")
    statements = list(cypher.split_statements(script))
    assert len(statements) == len(cypher.schema_statements()) + len(graph_rows(graph, PassageSource(db)))
    assert all(s.startswith(("CREATE CONSTRAINT", "CREATE INDEX", "UNWIND [\n")) for s in statements)
    assert (tmp_path / "graph.grass").exists()


def test_neo4j_csv_has_admin_import_headers_and_reads_back(tmp_path: Path) -> None:
    docs, passages = corpus(2, 2)
    db = write_passages(tmp_path / "passages.sqlite", docs, passages)
    graph = synthetic_graph(10, 15, passages, names=[*NASTY_NAMES, "semi;colon alias"])
    out = export_neo4j_csv(to_networkx(graph), tmp_path / "import", db)
    command = (out / "import.sh").read_text(encoding="utf-8")
    assert "neo4j-admin database import full" in command and "--multiline-fields=true" in command
    match = re.search(r"--array-delimiter=(\S+?)'? ", command)
    assert match is not None
    sep = {"U+001F": "\x1f"}.get(match.group(1), match.group(1))
    assert sep != ";"  # an alias contains ";" so another delimiter was chosen

    def read(name: str) -> list[dict[str, str]]:
        with (out / name).open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    entities = read("entities.csv")
    assert list(entities[0]) == ["key:ID(Entity)", "name", "type", "aliases:string[]", ":LABEL"]
    by_key = {e["key:ID(Entity)"]: e for e in entities}
    for e in graph.entities:
        assert by_key[e.key]["name"] == e.name
        assert by_key[e.key]["aliases:string[]"].split(sep) == [a for a in e.aliases if a != e.name]
        assert by_key[e.key][":LABEL"].split(sep) == ["Entity", cypher.entity_label(e.type)]
    facts = read("facts.csv")
    assert list(facts[0])[:3] == [":START_ID(Entity)", ":END_ID(Entity)", ":TYPE"]
    assert len(facts) == len(graph.triples)
    passages_csv = read("passages.csv")
    assert {p["text"] for p in passages_csv} <= {p.text for p in passages}
    assert len(read("mentions.csv")) == len(graph_rows(graph, PassageSource(db))["mention"])
    assert all(r[":TYPE"] == "HAS_PASSAGE" for r in read("has_passage.csv"))


def test_grass_colours_each_entity_type() -> None:
    schema = GraphSchema.load(REPO / "kgrag" / "schemas" / "default.yaml")
    style = grass_style(schema.entity_type_names)
    colours = re.findall(r"node\.(\w+) \{\n  color: (#[0-9A-F]{6});", style)
    by_label = dict(colours)
    assert {cypher.entity_label(t) for t in schema.entity_type_names} <= set(by_label)
    entity_colours = [by_label[cypher.entity_label(t)] for t in schema.entity_type_names]
    assert len(set(entity_colours)) == len(entity_colours)
    assert 'caption: "{name}"' in style


def test_the_bundled_style_file_matches_the_default_schema() -> None:
    schema = GraphSchema.load(REPO / "kgrag" / "schemas" / "default.yaml")
    assert (REPO / "docs" / "kgrag.grass").read_text(encoding="utf-8") == grass_style(schema.entity_type_names)


# -- Neo4j's own parser -------------------------------------------------------------------------------
def test_neo4j_parser_accepts_every_statement_and_the_exported_script(tmp_path: Path) -> None:
    """Each statement template the store issues (every label and type goes through the same template
    after passing the identifier checks above, so one of each kind stands for all, plus names that are
    Cypher keywords), the Browser guide's queries, and an exported script of awkward names.
    (Neo4j's semantic analysis costs ~0.3 s a statement here, hence templates rather than all 500.)"""
    queries: dict[str, str | tuple[str, dict[str, object]]] = {}
    for i, statement in enumerate(cypher.schema_statements()):
        queries[f"schema {i}"] = statement
    for kind in ("document", "passage", "mention", "entity:Person", "entity:Match", "fact:BORN_IN", "fact:DELETE"):
        queries[kind] = statement_for(kind)
    queries.update(browser_guide_queries())
    assert len(browser_guide_queries()) >= 5

    docs, passages = corpus(2, 2)
    db = write_passages(tmp_path / "passages.sqlite", docs, passages)
    graph = synthetic_graph(12, 20, passages, names=NASTY_NAMES)
    # declared no parameters: a $parameter anywhere outside a string literal would be an error
    queries["exported script"] = (cypher_script(graph_rows(graph, PassageSource(db))), {})
    # and the parser does catch what it should
    queries["broken"] = "MATCH (n RETURN n"
    queries["undeclared"] = "RETURN $x"
    queries["injected"] = f"MATCH (n:{INJECTION}) RETURN n"

    results = lint(queries)
    assert results.pop("broken") and results.pop("undeclared") and results.pop("injected")
    assert {name: errors for name, errors in results.items() if errors} == {}


def test_export_command_writes_the_neo4j_formats(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kgrag.cli import app
    from kgrag.graph.networkx_store import NetworkXStore

    docs, passages = corpus(2, 2)
    write_passages(tmp_path / "passages.sqlite", docs, passages)
    graph = synthetic_graph(8, 10, passages, names=NASTY_NAMES)
    NetworkXStore(tmp_path / "graph.json").write(graph)
    schema = GraphSchema.load(REPO / "kgrag" / "schemas" / "default.yaml")
    (tmp_path / "schema.json").write_text(schema.model_dump_json(), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(tmp_path), "--format", "cypher"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "graph.cypher").exists() and (tmp_path / "graph.grass").exists()
    result = runner.invoke(app, ["export", str(tmp_path), "--format", "neo4j-csv", "-o", str(tmp_path / "csv")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "csv").iterdir()} >= {"entities.csv", "facts.csv", "import.sh"}
    result = runner.invoke(app, ["export", str(tmp_path), "--format", "nope"])
    assert result.exit_code == 1 and "cypher" in result.output and "neo4j-csv" in result.output
