"""Cypher text for the Neo4j graph model: identifiers, literals and every statement the store issues.

Labels and relationship types cannot be query parameters, so they are the only things ever formatted
into a statement, and each is checked against a strict pattern first: relationship types must match
``^[A-Z][A-Z0-9_]*$`` (UPPER_SNAKE_CASE), labels ``^[A-Z][A-Za-z0-9_]*$`` (the same, allowing the
PascalCase that Neo4j Browser users expect, such as ``:Person``). Every value goes in as a parameter
(``$rows``) — or, in the parameter-free export script, as an escaped literal made by ``literal``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import lru_cache

from kgrag.errors import KgragError

REL_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
LABEL_RE = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
PROPERTY_RE = re.compile(r"^[a-z][A-Za-z0-9_]*$")

ENTITY, DOCUMENT, PASSAGE = "Entity", "Document", "Passage"
HAS_PASSAGE, MENTIONS = "HAS_PASSAGE", "MENTIONS"
RESERVED_LABELS = frozenset({ENTITY, DOCUMENT, PASSAGE})
LEXICAL_TYPES = frozenset({HAS_PASSAGE, MENTIONS})

# constraint name → (label, property); each unique key also gives MERGE its index
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "kgrag_entity_key": (ENTITY, "key"),
    "kgrag_document_id": (DOCUMENT, "id"),
    "kgrag_passage_key": (PASSAGE, "key"),
}
INDEXES: dict[str, tuple[str, str]] = {"kgrag_entity_name": (ENTITY, "name")}
# rows one UNWIND statement (one transaction) writes: in bench/store_bench.py on ArcadeDB (100k facts,
# 2 cores, 4 runs) 1000, 2500 and 5000 rows were within run-to-run noise (means 13.3k, 14.0k, 14.1k
# facts/s); the smaller of the best two. Here, not in neo4j_model, so the CLI can default to it cheaply.
BATCH_SIZE = 2500


# -- identifiers ------------------------------------------------------------------------------------
def _words(name: str) -> list[str]:
    """ASCII words of a schema name: ``OrgBased_In`` → [Org, Based, In], ``birthPlace`` → [birth, Place]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return re.findall(r"[A-Za-z0-9]+", spaced)


def check_label(label: str) -> str:
    if not LABEL_RE.fullmatch(label):
        raise KgragError(f"refusing node label {label!r}: labels must match {LABEL_RE.pattern}")
    return label


def check_rel_type(rel_type: str) -> str:
    if not REL_TYPE_RE.fullmatch(rel_type):
        raise KgragError(f"refusing relationship type {rel_type!r}: types must match {REL_TYPE_RE.pattern}")
    return rel_type


def check_property(name: str) -> str:
    if not PROPERTY_RE.fullmatch(name):
        raise KgragError(f"refusing property name {name!r}: names must match {PROPERTY_RE.pattern}")
    return name


@lru_cache(maxsize=4096)
def relationship_type(relation: str) -> str:
    """The Neo4j relationship type of a schema relation: ``born_in`` / ``birthPlace`` → ``BORN_IN`` /
    ``BIRTH_PLACE``; anything that does not come out as UPPER_SNAKE_CASE is refused."""
    rel_type = "_".join(w.upper() for w in _words(relation))
    if rel_type[:1].isdigit():
        rel_type = "R_" + rel_type
    if not rel_type:
        raise KgragError(f"relation {relation!r} has no letters or digits to make a relationship type from")
    return check_rel_type(rel_type)


@lru_cache(maxsize=4096)
def entity_label(type_name: str) -> str:
    """The label an entity type adds to ``:Entity``: ``Person`` → ``Person``, ``work of art`` →
    ``WorkOfArt``; a type named like a label of the model itself (Entity, Document, Passage) gets a
    ``Type`` suffix so that ``MATCH (:Document)`` still finds documents only."""
    words = _words(type_name)
    label = "".join(w[:1].upper() + w[1:] for w in words)
    if label[:1].isdigit():
        label = "T" + label
    if not label:
        raise KgragError(f"entity type {type_name!r} has no letters or digits to make a label from")
    if label in RESERVED_LABELS:
        label += "Type"
    return check_label(label)


# -- literals (the parameter-free export only) ------------------------------------------------------
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def quote(text: str) -> str:
    """A single-quoted Cypher string literal that reads back as exactly ``text``."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def literal(value: object) -> str:
    """A Cypher literal for a row value: null, booleans, numbers, strings, lists and maps of them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise KgragError(f"cannot write the non-finite number {value!r} as a Cypher literal")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{check_property(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise KgragError(f"cannot write a {type(value).__name__} as a Cypher literal")


# -- statements -------------------------------------------------------------------------------------
def schema_statements() -> list[str]:
    """Uniqueness constraints (which MERGE uses as its index) and a name index; idempotent."""
    out = [
        f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{check_label(label)}) REQUIRE n.{prop} IS UNIQUE"
        for name, (label, prop) in CONSTRAINTS.items()
    ]
    out += [
        f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{check_label(label)}) ON (n.{prop})"
        for name, (label, prop) in INDEXES.items()
    ]
    return out


def merge_documents(rows: str = "$rows") -> str:
    return (
        f"UNWIND {rows} AS r\n"
        "MERGE (d:Document {id: r.id})\n"
        "SET d.source = coalesce(r.source, d.source), d.title = coalesce(r.title, d.title),\n"
        "    d.derived = r.derived"
    )


def merge_passages(rows: str = "$rows") -> str:
    return (
        f"UNWIND {rows} AS r\n"
        "MATCH (d:Document {id: r.doc_id})\n"
        "MERGE (p:Passage {key: r.key})\n"
        "SET p.id = r.id, p.doc_id = r.doc_id, p.derived = r.derived,\n"
        "    p.start = coalesce(r.start, p.start), p.end = coalesce(r.end, p.end), p.text = coalesce(r.text, p.text)\n"
        "MERGE (d)-[:HAS_PASSAGE]->(p)"
    )


def merge_entities(label: str, rows: str = "$rows") -> str:
    """Entities of one type, created when their key is new; a changed canonical name keeps the old one
    as an alias, and aliases are united. (Not ``MERGE (e:Entity:Person {key})``: ArcadeDB cannot use the
    ``Entity.key`` index for a two-label pattern, which made that 20x slower and O(nodes) there.
    Two writers racing on a new key meet the uniqueness constraint, and the store retries.)"""
    label = check_label(label)
    labels = "Entity" if label == ENTITY else f"Entity:{label}"
    return (
        f"UNWIND {rows} AS r\n"
        "OPTIONAL MATCH (found:Entity {key: r.key})\n"
        "FOREACH (_ IN CASE WHEN found IS NULL THEN [1] ELSE [] END |\n"
        f"  CREATE (:{labels} {{key: r.key, name: r.name, type: r.type, aliases: r.aliases}}))\n"
        "WITH r, found WHERE found IS NOT NULL\n"
        "WITH r, found AS e, coalesce(found.aliases, [])\n"
        "     + CASE WHEN found.name IS NULL OR found.name = r.name THEN [] ELSE [found.name] END AS old\n"
        "SET e.name = r.name, e.type = r.type,\n"
        "    e.aliases = [a IN old WHERE a <> r.name] + [a IN r.aliases WHERE NOT a IN old]"
    )


def merge_relationships(rel_type: str, rows: str = "$rows") -> str:
    """Facts of one relation: confidence is the highest seen, provenance is united, and a fact stays
    ``derived`` only while every write of it was derived. A new fact takes the row as it is (rows come
    de-duplicated); only an existing one pays for the union: ``ON CREATE``/``ON MATCH`` made first
    pushes ~30 % and re-pushes ~45 % faster on ArcadeDB than one ``SET`` that unites in every case."""
    rel_type = check_rel_type(rel_type)
    return (
        f"UNWIND {rows} AS r\n"
        "MATCH (h:Entity {key: r.head})\n"
        "MATCH (t:Entity {key: r.tail})\n"
        f"MERGE (h)-[f:{rel_type}]->(t)\n"
        "ON CREATE SET f.relation = r.relation, f.confidence = r.confidence, f.derived = r.derived,\n"
        "    f.sources = r.sources, f.spans = r.spans\n"
        "ON MATCH SET f.relation = r.relation,\n"
        "    f.confidence = CASE WHEN f.confidence IS NULL OR f.confidence < r.confidence\n"
        "                        THEN r.confidence ELSE f.confidence END,\n"
        "    f.derived = coalesce(f.derived, true) AND r.derived,\n"
        "    f.sources = coalesce(f.sources, []) + [s IN r.sources WHERE NOT s IN coalesce(f.sources, [])],\n"
        "    f.spans = coalesce(f.spans, []) + [s IN r.spans WHERE NOT s IN coalesce(f.spans, [])]"
    )


def merge_mentions(rows: str = "$rows") -> str:
    return (
        f"UNWIND {rows} AS r\n"
        "MATCH (p:Passage {key: r.passage})\n"
        "MATCH (e:Entity {key: r.entity})\n"
        "MERGE (p)-[:MENTIONS]->(e)"
    )


# -- scripts ----------------------------------------------------------------------------------------
def split_statements(script: str) -> Iterator[str]:
    """The statements of a ``;``-separated script, honouring quotes, backticks and comments."""
    start = i = 0
    n = len(script)
    while i < n:
        ch = script[i]
        if ch in "'\"`":
            i += 1
            while i < n and script[i] != ch:
                i += 2 if script[i] == "\\" and ch != "`" else 1
        elif script.startswith("//", i):
            end = script.find("\n", i)
            i = n - 1 if end < 0 else end
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n - 1 if end < 0 else end + 1
        elif ch == ";":
            statement = _strip_comments(script[start:i])
            if statement:
                yield statement
            start = i + 1
        i += 1
    tail = _strip_comments(script[start:])
    if tail:
        yield tail


def _strip_comments(statement: str) -> str:
    """The statement without its leading comment lines (Cypher comments only ever lead here)."""
    lines = statement.strip().splitlines()
    while lines and lines[0].lstrip().startswith("//"):
        lines.pop(0)
    return "\n".join(lines).strip()
