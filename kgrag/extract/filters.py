"""Post-extraction filters shared by ``kgrag build`` and ``kgrag eval``."""

from __future__ import annotations

from collections.abc import Iterable

from kgrag.graph.resolve import normalize
from kgrag.records import ExtractedTriple
from kgrag.schema import GraphSchema


def usable_triples(triples: Iterable[ExtractedTriple], schema: GraphSchema, text: str) -> list[ExtractedTriple]:
    """The triples that fit the schema's domain/range and whose head and tail both occur in ``text``
    (compared after :func:`normalize`) and differ from each other: a small model otherwise copies
    names from the prompt's examples."""
    padded = f" {normalize(text)} "
    kept = []
    for t in triples:
        head, tail = normalize(t.head), normalize(t.tail)
        if schema.violation(t.head_type, t.relation, t.tail_type):
            continue
        if f" {head} " in padded and f" {tail} " in padded and head != tail:
            kept.append(t)
    return kept
