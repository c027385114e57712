"""The Re-DocRED schema: loads, lists DocRED's 96 relations, and its domain/range admit the gold dev triples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import SCHEMAS

from kgrag.schema import GraphSchema

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "redocred" / "dev.jsonl"


@pytest.fixture(scope="module")
def schema() -> GraphSchema:
    return GraphSchema.load(SCHEMAS / "redocred.yaml")


def test_redocred_schema_loads(schema: GraphSchema) -> None:
    assert schema.name == "redocred"
    assert schema.entity_type_names == ["PER", "ORG", "LOC", "TIME", "NUM", "MISC"]
    assert not schema.expandable("TIME") and not schema.expandable("NUM") and schema.expandable("PER")
    assert len(schema.relation_names) == len(set(schema.relation_names)) == 96
    assert {"country of citizenship", "located in the administrative territorial entity", "unemployment rate"} <= set(
        schema.relation_names
    )
    assert all(rel.description for rel in schema.relation_types)
    items = schema.extraction_model(6).model_json_schema()["properties"]["triples"]["items"]["prefixItems"]
    assert items[2]["enum"] == schema.relation_names
    # the examples are short, fit max_triples=6 and obey the schema
    assert 1 <= len(schema.examples) <= 2
    for example in schema.examples:
        assert len(example["triples"]) <= 6
        for h, ht, r, t, tt in example["triples"]:
            assert h in example["text"] and t in example["text"]
            assert r in schema.relation_names
            assert schema.violation(ht, r, tt) is None


@pytest.mark.skipif(not DEV.exists(), reason=f"{DEV} not present")
def test_redocred_schema_admits_gold_dev_triples(schema: GraphSchema) -> None:
    """At least 99% of the gold dev triples fit domain/range with their gold entity types (an entity
    typed ``ORG/LOC`` fits when either type does); every relation used in dev is in the schema."""
    total = passed = 0
    with DEV.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            for (_, relation, _), (hi, ti) in zip(row["triples"], row["triple_entities"], strict=True):
                assert relation in schema.relation_names
                heads = row["entities"][hi][1].split("/")
                tails = row["entities"][ti][1].split("/")
                total += 1
                passed += any(schema.violation(h, relation, t) is None for h in heads for t in tails)
    assert total > 17000
    assert passed / total >= 0.99
