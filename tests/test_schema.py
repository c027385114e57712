"""Schema loading: the shipped schemas, the extraction model's JSON schema, and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import SCHEMAS
from pydantic import ValidationError
from typer.testing import CliRunner

from kgrag.cli import app
from kgrag.config import Settings
from kgrag.errors import KgragError
from kgrag.schema import BUNDLED_DIR, DEFAULT_SCHEMA, GraphSchema, bundled_schemas, resolve_schema


def triple_items(schema: GraphSchema, max_triples: int = 4, open_relations: bool = False) -> list[dict[str, Any]]:
    """The prefixItems (head, head_type, relation, tail, tail_type) of the extraction JSON schema."""
    js = schema.extraction_model(max_triples, open_relations).model_json_schema()
    triples = js["properties"]["triples"]
    assert triples["type"] == "array"
    assert triples["maxItems"] == max_triples
    item = triples["items"]
    assert item["minItems"] == item["maxItems"] == 5
    return item["prefixItems"]


@pytest.mark.parametrize(
    ("file", "name", "entity_type", "relation"),
    [
        ("default.yaml", "default", "Person", "spouse"),
        ("conll04.yaml", "conll04", "Peop", "Work_For"),
        ("webnlg.yaml", "webnlg", "Place", "birthPlace"),
    ],
)
def test_shipped_schemas_load(file: str, name: str, entity_type: str, relation: str) -> None:
    schema = GraphSchema.load(SCHEMAS / file)
    assert schema.name == name
    assert entity_type in schema.entity_type_names
    assert relation in schema.relation_names
    assert len(set(schema.relation_names)) == len(schema.relation_names)
    assert len(set(schema.entity_type_names)) == len(schema.entity_type_names)
    head, head_type, rel, tail, tail_type = triple_items(schema, max_triples=6)
    assert rel["enum"] == schema.relation_names
    assert head_type["enum"] == tail_type["enum"] == schema.entity_type_names
    assert head["type"] == tail["type"] == "string" and head["minLength"] == 1
    # the schema's few-shot examples use only its own types and relations
    for example in schema.examples:
        assert example["text"].strip()
        for h, ht, r, t, tt in example["triples"]:
            assert h and t
            assert ht in schema.entity_type_names and tt in schema.entity_type_names
            assert r in schema.relation_names
            assert schema.violation(ht, r, tt) is None


def test_shipped_schema_sizes() -> None:
    default = GraphSchema.load(SCHEMAS / "default.yaml")
    assert len(default.relation_names) >= 25
    assert {"Person", "Organization", "Location", "Date", "Work", "Event", "Concept"} <= set(default.entity_type_names)
    assert not default.expandable("Date") and default.expandable("Person")
    conll = GraphSchema.load(SCHEMAS / "conll04.yaml")
    assert set(conll.entity_type_names) == {"Peop", "Org", "Loc", "Other"}
    assert set(conll.relation_names) == {"Work_For", "Kill", "OrgBased_In", "Live_In", "Located_In"}
    assert len(GraphSchema.load(SCHEMAS / "webnlg.yaml").relation_names) > 100


def test_extraction_type_accepts_and_rejects() -> None:
    schema = GraphSchema.load(SCHEMAS / "conll04.yaml")
    model = schema.extraction_model(max_triples=2)
    ok = model.model_validate_json('{"triples": [["Ann", "Peop", "Work_For", "IBM", "Org"]]}')
    assert ok.model_dump()["triples"] == [("Ann", "Peop", "Work_For", "IBM", "Org")]
    assert model.model_validate_json("{}").model_dump()["triples"] == []
    bad = [
        '{"triples": [["Ann", "Peop", "spouse", "IBM", "Org"]]}',  # unknown relation
        '{"triples": [["Ann", "Human", "Work_For", "IBM", "Org"]]}',  # unknown entity type
        '{"triples": [["Ann", "Peop", "Work_For", "IBM"]]}',  # four fields
        '{"triples": [["", "Peop", "Work_For", "IBM", "Org"]]}',  # empty name
        '{"triples": [["A", "Peop", "Kill", "B", "Peop"], ["B", "Peop", "Kill", "C", "Peop"],'
        ' ["C", "Peop", "Kill", "D", "Peop"]]}',  # more than max_triples
    ]
    for text in bad:
        with pytest.raises(ValidationError):
            model.model_validate_json(text)


def test_open_relations_gives_a_free_string() -> None:
    schema = GraphSchema.load(SCHEMAS / "conll04.yaml")
    _, head_type, rel, _, _ = triple_items(schema, open_relations=True)
    assert "enum" not in rel
    assert rel["type"] == "string" and rel["minLength"] == 1
    assert head_type["enum"] == schema.entity_type_names  # entity types stay constrained
    model = schema.extraction_model(4, open_relations=True)
    model.model_validate_json('{"triples": [["Ann", "Peop", "admires", "Bob", "Peop"]]}')


def test_schema_without_relations_is_open(tmp_path: Path) -> None:
    path = tmp_path / "types_only.yaml"
    path.write_text("entity_types: [Person, Place]\n", encoding="utf-8")
    schema = GraphSchema.load(path)
    _, _, rel, _, _ = triple_items(schema)
    assert "enum" not in rel and rel["type"] == "string"


def test_json_schema_file_and_shorthand(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(
        '{"name": "tiny", "entity_types": ["Person", {"name": "City", "expand": false}],'
        ' "relation_types": [{"name": "lives_in", "domain": "Person", "range": ["City"]}]}',
        encoding="utf-8",
    )
    schema = GraphSchema.load(path)
    assert schema.entity_type_names == ["Person", "City"]
    assert schema.relation("lives_in").domain == ["Person"]  # a single string becomes a list
    assert not schema.expandable("City")
    assert schema.relation("nope") is None


def test_fingerprint_tracks_content(tmp_path: Path) -> None:
    a = GraphSchema.load(SCHEMAS / "conll04.yaml")
    assert a.fingerprint() == GraphSchema.load(SCHEMAS / "conll04.yaml").fingerprint()
    changed = a.model_copy(update={"description": "changed"})
    assert changed.fingerprint() != a.fingerprint()
    assert changed.reading_fingerprint() != a.reading_fingerprint()


def test_reading_fingerprint_ignores_what_only_filtering_and_resolution_use() -> None:
    schema = GraphSchema.load(SCHEMAS / "default.yaml")
    person = schema.entity_types[0].model_copy(update={"named": False, "expand": False, "compatible": ["Work"]})
    steered = schema.model_copy(update={"entity_types": [person, *schema.entity_types[1:]]})
    assert steered.fingerprint() != schema.fingerprint()
    assert steered.reading_fingerprint() == schema.reading_fingerprint()
    described = person.model_copy(update={"description": "a human"})
    reads_otherwise = schema.model_copy(update={"entity_types": [described, *schema.entity_types[1:]]})
    assert reads_otherwise.reading_fingerprint() != schema.reading_fingerprint()


def test_named_types_want_a_capital_or_a_digit() -> None:
    schema = GraphSchema.load(SCHEMAS / "default.yaml")
    for type_name, name in [("Person", "Marie Curie"), ("Organization", "bdnews24.com"), ("Date", "1930s"),
                            ("Location", "near Paris"), ("Concept", "physics"), ("Substance", "radium")]:  # fmt: skip
        assert not schema.unnamed(type_name, name), (type_name, name)
    for type_name, name in [("Organization", "the band"), ("Person", "other leftist clergymen"),
                            ("Date", "the following year"), ("Location", "churches")]:  # fmt: skip
        assert schema.unnamed(type_name, name), (type_name, name)
    assert not schema.unnamed("NoSuchType", "anything")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        # malformed YAML: the file, and where in it the parser stopped
        ("broken.yaml", "entity_types: [Person, Place\nrelation_types: []\n", ["not valid yaml", "line 2"]),
        ("list.yaml", "- Person\n- Place\n", ["expected a mapping", "entity_types"]),
        ("scalar.yaml", "just words\n", ["expected a mapping", "entity_types"]),
        ("empty.yaml", "", ["expected a mapping", "entity_types"]),
        (
            "unknown_type.yaml",
            "entity_types: [Person, Place]\nrelation_types:\n  - {name: spouse, domain: [Human], range: [Person]}\n",
            ["spouse", "domain", "Human"],
        ),
        (
            "unknown_qualifier.yaml",
            "entity_types:\n  - {name: Place, qualifier_relation: inside}\nrelation_types: [part_of]\n",
            ["Place", "qualifier_relation", "inside"],
        ),
        (
            "unknown_range.yaml",
            "entity_types: [Person, Place]\nrelation_types:\n  - {name: lives_in, domain: Person, range: City}\n",
            ["lives_in", "range", "City"],
        ),
        (
            "unknown_compatible.yaml",
            "entity_types:\n  - {name: Concept, compatible: [Thing]}\n",
            ["Concept", "compatible", "Thing"],
        ),
        ("no_types.yaml", "name: x\nrelation_types: [spouse]\n", ["entity_types", "required"]),
        ("empty_types.yaml", "entity_types: []\n", ["entity_types"]),
        ("extra_key.yaml", "entity_types: [Person]\ncolour: blue\n", ["colour", "not permitted"]),
        (
            "extra_nested.yaml",
            "entity_types: [Person]\nrelation_types:\n  - {name: knows, domian: [Person]}\n",
            ["relation_types.0.domian"],
        ),
        ("bad_field.yaml", "entity_types: [Person]\nrelation_types:\n  - {name: knows, range: 3}\n", ["range"]),
        ("broken.json", '{"entity_types": ["Person",', ["not valid json"]),
    ],
)
def test_bad_schema_files_raise_one_clear_error(tmp_path: Path, name: str, text: str, expected: list[str]) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(KgragError) as info:
        GraphSchema.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message  # the CLI prints it as one line
    for part in expected:
        assert part.lower() in message.lower(), message


def test_missing_and_undecodable_schema_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(KgragError, match=r"unknown schema .*: not a file") as info:
        GraphSchema.load(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(KgragError, match="cannot read schema"):
        GraphSchema.load(tmp_path)  # a folder
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("entity_types: [Personne, Société]\n".encode("latin-1"))
    with pytest.raises(KgragError, match="cannot read schema"):
        GraphSchema.load(latin1)


def test_violation() -> None:
    schema = GraphSchema.load(SCHEMAS / "default.yaml")
    assert schema.violation("Person", "spouse", "Person") is None
    assert schema.violation("Person", "educated_at", "Location") is None  # one of several allowed tail types
    head = schema.violation("Location", "spouse", "Person")
    assert head is not None and "head" in head and "Person" in head and "Location" in head
    tail = schema.violation("Person", "born_in", "Date")
    assert tail is not None and "tail" in tail and "Location" in tail and "Date" in tail
    assert schema.violation("Substance", "part_of", "Work") is None  # no domain/range: anything goes
    assert schema.violation("Person", "not_a_relation", "Person") is None  # open relations are not judged here


# -- bundled schemas: names, files and the resolver ------------------------------------------------------

BUNDLED = ("conll04", "default", "redocred", "webnlg")


def test_bundled_schemas_live_in_the_package() -> None:
    bundled = bundled_schemas()
    assert tuple(bundled) == BUNDLED
    for name, path in bundled.items():
        assert path.parent == BUNDLED_DIR and path.name == f"{name}.yaml"
        assert path == SCHEMAS / f"{name}.yaml"
    assert DEFAULT_SCHEMA in bundled


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_names_resolve_from_any_folder(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing here: the name alone must find the packaged file
    assert resolve_schema(name) == BUNDLED_DIR / f"{name}.yaml"
    assert resolve_schema(Path(name)) == BUNDLED_DIR / f"{name}.yaml"
    assert resolve_schema(f"{name}.yaml") == BUNDLED_DIR / f"{name}.yaml"
    assert GraphSchema.load(name).name == name
    assert GraphSchema.load(f"{name}.yaml").name == name


def test_an_existing_file_wins_over_a_bundled_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "conll04.yaml", "name: mine\nentity_types: [Thing]\n")
    write(tmp_path, "default", "name: bare\nentity_types: [Thing]\n")
    assert resolve_schema("conll04.yaml") == Path("conll04.yaml")
    assert GraphSchema.load("conll04.yaml").name == "mine"
    assert GraphSchema.load(tmp_path / "conll04.yaml").name == "mine"
    assert GraphSchema.load("default").name == "bare"
    assert GraphSchema.load("conll04").name == "conll04"  # no file of that name: the bundled one


@pytest.mark.parametrize("value", ["foo", "foo.yaml", "conll04.json", "schemas/nope.yaml"])
def test_an_unknown_schema_is_one_line_naming_it_and_the_bundled_ones(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KgragError) as info:
        GraphSchema.load(value)
    message = str(info.value)
    assert "\n" not in message
    assert f"unknown schema {value!r}: not a file" in message
    assert "the bundled schemas are conll04, default, redocred, webnlg" in message


def test_an_old_repository_path_is_pointed_at_the_bundled_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # schemas/ used to sit at the repository root; a config may still say so
    with pytest.raises(KgragError, match=r"did you mean 'conll04'\?"):
        GraphSchema.load("schemas/conll04.yaml")


def test_settings_default_to_the_bundled_default_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KGRAG_SCHEMA_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings(n_threads=1)
    assert settings.schema_path == Path(DEFAULT_SCHEMA)
    assert settings.model_dump(mode="json")["schema_path"] == "default"  # what a manifest records
    assert GraphSchema.load(settings.schema_path).name == "default"
    config = write(tmp_path, "kgrag.yaml", "schema_path: conll04\n")
    assert GraphSchema.load(Settings.load(config, n_threads=1).schema_path).name == "conll04"
    own = write(tmp_path, "own.yaml", "name: own\nentity_types: [Thing]\n")
    config = write(tmp_path, "kgrag.yaml", f"schema_path: {own}\n")
    assert GraphSchema.load(Settings.load(config, n_threads=1).schema_path).name == "own"


def test_cli_schemas_lists_the_bundled_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["schemas"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for name in BUNDLED:
        assert name in result.output
    assert "Peop, Org, Loc, Other" in result.output  # conll04's entity types
    assert str(BUNDLED_DIR) in result.output
