"""``kgrag schemas``: the graph schemas bundled with kgrag, by the names ``--schema`` takes."""

from __future__ import annotations

from rich.table import Table

from kgrag.cli.common import console, friendly_errors


@friendly_errors
def schemas_list() -> None:
    """The bundled graph schemas: use a name as --schema NAME (or schema_path: NAME in a config)."""
    from kgrag.schema import DEFAULT_SCHEMA, GraphSchema, bundled_schemas

    table = Table(caption=f"--schema NAME (or schema_path: NAME); a build without one uses {DEFAULT_SCHEMA}")
    for column in ("name", "entity types", "relations", "description"):
        table.add_column(column)
    table.add_column("path", overflow="fold")  # one long word: fold it rather than cut it
    for name, path in bundled_schemas().items():
        schema = GraphSchema.load(path)
        description = schema.description.strip().splitlines()
        table.add_row(
            name,
            ", ".join(schema.entity_type_names),
            str(len(schema.relation_types)) if schema.relation_types else "open",
            description[0] if description else "",
            str(path),
        )
    console.print(table)
