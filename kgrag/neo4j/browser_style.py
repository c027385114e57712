"""A Neo4j Browser style sheet (GraSS, ``.grass``) that colours entities by type and captions them by name.

Drag the file onto Neo4j Browser (or run ``:style`` and paste it) to apply it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kgrag.errors import KgragError
from kgrag.neo4j import cypher

# Neo4j Browser's own palette (colour, border) so that the graph looks at home there
PALETTE: list[tuple[str, str]] = [
    ("#68BDF6", "#5CA8DB"),
    ("#6DCE9E", "#60B58B"),
    ("#FF756E", "#E06760"),
    ("#DE9BF9", "#BF85D6"),
    ("#FB95AF", "#E0849B"),
    ("#FFD86E", "#EDBA39"),
    ("#A5ABB6", "#9AA1AC"),
    ("#F79767", "#E5885A"),
    ("#57C7E3", "#4EB2CB"),
    ("#D9C8AE", "#C0B299"),
    ("#8DCC93", "#7DB582"),
    ("#ECB5C9", "#DA7298"),
    ("#4C8EDA", "#2870C2"),
    ("#FFC454", "#D7A013"),
    ("#DA7194", "#CC3C6C"),
    ("#569480", "#447666"),
]
LEXICAL = {cypher.DOCUMENT: ("#C7C7C7", "#A8A8A8", "{title}"), cypher.PASSAGE: ("#E8E8E8", "#C9C9C9", "{id}")}


def _node_rule(selector: str, color: str, border: str, caption: str, diameter: int, text: str = "#FFFFFF") -> str:
    return (
        f"node.{selector} {{\n"
        f"  color: {color};\n"
        f"  border-color: {border};\n"
        f"  text-color-internal: {text};\n"
        f"  diameter: {diameter}px;\n"
        f'  caption: "{caption}";\n'
        "}\n"
    )


def grass_style(type_names: Iterable[str]) -> str:
    """The style for a schema's entity types (one colour each, in the schema's order)."""
    rules = [
        "node {\n  diameter: 50px;\n  color: #A5ABB6;\n  border-color: #9AA1AC;\n  border-width: 2px;\n"
        "  text-color-internal: #FFFFFF;\n  font-size: 10px;\n}\n",
        "relationship {\n  color: #A5ABB6;\n  shaft-width: 1px;\n  font-size: 8px;\n  padding: 3px;\n"
        '  text-color-external: #000000;\n  text-color-internal: #FFFFFF;\n  caption: "<type>";\n}\n',
        _node_rule(cypher.ENTITY, "#A5ABB6", "#9AA1AC", "{name}", 55),
    ]
    labels = list(dict.fromkeys(cypher.entity_label(t) for t in type_names))
    for i, label in enumerate(labels):
        color, border = PALETTE[i % len(PALETTE)]
        rules.append(_node_rule(label, color, border, "{name}", 55))
    for label, (color, border, caption) in LEXICAL.items():
        rules.append(_node_rule(label, color, border, caption, 30, text="#333333"))
    return "\n".join(rules)


def write_grass(type_names: Iterable[str], path: Path) -> Path:
    try:
        path.write_text(grass_style(type_names), encoding="utf-8")
    except OSError as exc:
        raise KgragError(f"cannot write {path}: {exc}") from exc
    return path
