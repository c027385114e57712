"""Neo4j exports of a built graph: a parameter-free ``.cypher`` script and ``neo4j-admin`` import CSVs.

The script holds the store's own statements with the rows written as escaped literals, so
pasting it into Neo4j Browser (or piping it into ``cypher-shell``) twice leaves the same graph. The
CSV folder holds one file per node label group and relationship file, with the headers
``neo4j-admin database import full`` expects, and ``import.sh`` with the exact command.
"""

from __future__ import annotations

import csv
import shlex
from collections.abc import Sequence
from pathlib import Path

import networkx as nx

from kgrag.errors import KgragError
from kgrag.graph.networkx_store import from_networkx
from kgrag.io import write_text_atomic
from kgrag.neo4j import cypher
from kgrag.neo4j.browser_style import write_grass
from kgrag.neo4j.model import PassageSource, Row, graph_rows, statement_for

SCRIPT_BATCH = 200  # rows per UNWIND list in the script: Browser and cypher-shell run each as one transaction


def cypher_script(rows_by_kind: dict[str, list[Row]], batch: int = SCRIPT_BATCH) -> str:
    """The constraints, then one ``UNWIND [literal rows] AS r MERGE …;`` statement per batch."""
    parts = [
        "// kgrag graph: no parameters, idempotent (every write is keyed by a unique property), so running",
        "// it twice changes nothing. Paste it into Neo4j Browser or run cypher-shell -f graph.cypher.",
        *(f"{s};" for s in cypher.schema_statements()),
    ]
    for kind, rows in rows_by_kind.items():
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            listed = "[\n" + ",\n".join("  " + cypher.literal(r) for r in chunk) + "\n]"
            parts.append(f"// {kind} {i + 1}-{i + len(chunk)}")
            parts.append(statement_for(kind, listed) + ";")
    return "\n".join(parts) + "\n"


def export_cypher(
    g: nx.MultiDiGraph, path: Path, passages_db: Path | None = None, entity_types: Sequence[str] | None = None
) -> Path:
    """Write ``g`` (with the lexical layer from ``passages_db`` when given) as a .cypher script, and
    beside it a Browser style (``.grass``) for ``entity_types`` when given."""
    script = cypher_script(graph_rows(from_networkx(g), PassageSource(passages_db)))
    try:
        write_text_atomic(path, script)
    except OSError as exc:
        raise KgragError(f"cannot write {path}: {exc}") from exc
    if entity_types is not None:
        write_grass(entity_types, path.with_suffix(".grass"))
    return path


# -- neo4j-admin CSV --------------------------------------------------------------------------------
_DELIMITER_CHOICES = [";", "|", "\x1f"]


def _array_delimiter(rows_by_kind: dict[str, list[Row]]) -> str:
    """The first candidate array delimiter that occurs in no list value (aliases, sources)."""
    used: set[str] = set()
    for rows in rows_by_kind.values():
        for row in rows:
            for value in row.values():
                if isinstance(value, list):
                    used.update(ch for item in value for ch in str(item) if ch in _DELIMITER_CHOICES)
    for choice in _DELIMITER_CHOICES:
        if choice not in used:
            return choice
    raise KgragError("every array delimiter neo4j-admin could use occurs in the graph's aliases or sources")


def _cell(value: object, delimiter: str) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return delimiter.join(str(v) for v in value)
    return value


def _write_csv(path: Path, header: list[str], rows: list[list[object]], delimiter: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[_cell(v, delimiter) for v in row] for row in rows])


FACT_HEADER = [":START_ID(Entity)", ":END_ID(Entity)", ":TYPE", "relation", "confidence:double"]
FACT_HEADER += ["derived:boolean", "sources:string[]", "spans:string[]"]


def csv_tables(rows: dict[str, list[Row]]) -> dict[str, tuple[list[str], list[list[object]]]]:
    """File name → (neo4j-admin header, rows) for every node and relationship file."""
    entities = [
        [r["key"], r["name"], r["type"], r["aliases"], [cypher.ENTITY, kind.split(":", 1)[1]]]
        for kind, group in rows.items()
        if kind.startswith("entity:")
        for r in group
    ]
    facts = [
        [r["head"], r["tail"], kind.split(":", 1)[1], r["relation"], r["confidence"], r["derived"], *_provenance(r)]
        for kind, group in rows.items()
        if kind.startswith("fact:")
        for r in group
    ]
    return {
        "entities.csv": (["key:ID(Entity)", "name", "type", "aliases:string[]", ":LABEL"], entities),
        "documents.csv": (
            ["id:ID(Document)", "source", "title", "derived:boolean", ":LABEL"],
            [[r["id"], r["source"], r["title"], r["derived"], cypher.DOCUMENT] for r in rows["document"]],
        ),
        "passages.csv": (
            ["key:ID(Passage)", "id:long", "doc_id", "start:long", "end:long", "text", "derived:boolean", ":LABEL"],
            [
                [r["key"], r["id"], r["doc_id"], r["start"], r["end"], r["text"], r["derived"], cypher.PASSAGE]
                for r in rows["passage"]
            ],
        ),
        "facts.csv": (
            FACT_HEADER,
            facts,
        ),
        "has_passage.csv": (
            [":START_ID(Document)", ":END_ID(Passage)", ":TYPE"],
            [[r["doc_id"], r["key"], cypher.HAS_PASSAGE] for r in rows["passage"]],
        ),
        "mentions.csv": (
            [":START_ID(Passage)", ":END_ID(Entity)", ":TYPE"],
            [[r["passage"], r["entity"], cypher.MENTIONS] for r in rows["mention"]],
        ),
    }


def _provenance(row: Row) -> list[object]:
    return [row["sources"], row["spans"]]


def _import_script(files: list[str], delimiter: str) -> str:
    """import.sh: the neo4j-admin command for these files (an empty, stopped database)."""
    args = [f"--nodes={f}" for f in files if not _is_relationship_file(f)]
    args += [f"--relationships={f}" for f in files if _is_relationship_file(f)]
    shown = "U+001F" if delimiter == "\x1f" else delimiter
    args += [f"--array-delimiter={shown}", "--multiline-fields=true"]
    command = " ".join(["neo4j-admin database import full", *(shlex.quote(a) for a in args), '"${1:-neo4j}"'])
    return (
        "#!/bin/sh\n"
        "# Import into an empty, stopped Neo4j 5 database: sh import.sh [DATABASE]\n"
        "# Then run constraints.cypher to add the constraints that `kgrag push` relies on.\n"
        f'cd "$(dirname "$0")" && {command}\n'
    )


def _is_relationship_file(name: str) -> bool:
    return name in {"facts.csv", "has_passage.csv", "mentions.csv"}


def export_neo4j_csv(g: nx.MultiDiGraph, path: Path, passages_db: Path | None = None) -> Path:
    """Write the folder ``path``: one CSV per node and relationship file with neo4j-admin headers,
    ``import.sh`` (the ``neo4j-admin database import full`` command) and ``constraints.cypher``."""
    rows = graph_rows(from_networkx(g), PassageSource(passages_db))
    sep = _array_delimiter(rows)
    tables = csv_tables(rows)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for name, (header, table) in tables.items():
            _write_csv(path / name, header, table, sep)
        (path / "import.sh").write_text(_import_script(list(tables), sep), encoding="utf-8")
        (path / "import.sh").chmod(0o755)
        statements = "".join(f"{s};\n" for s in cypher.schema_statements())
        (path / "constraints.cypher").write_text(statements, encoding="utf-8")
    except OSError as exc:
        raise KgragError(f"cannot write {path}: {exc}") from exc
    return path
