"""Triples → text: the short document that describes an entity's graph neighbourhood."""

from __future__ import annotations

from collections.abc import Sequence

from kgrag.records import ResolvedGraph


def humanise(relation: str) -> str:
    """``born_in`` → "born in"; ``birthPlace`` → "birth place"."""
    spaced = "".join(f" {c.lower()}" if c.isupper() else c for c in relation).replace("_", " ")
    return " ".join(spaced.split())


def verbalise_triples(triples: Sequence[tuple[str, str, str]]) -> str:
    """Triples as plain sentences, one per triple: "Marie Curie spouse Pierre Curie. …"."""
    return " ".join(f"{head} {humanise(relation)} {tail}." for head, relation, tail in triples)


def verbalise_neighbourhoods(graph: ResolvedGraph, max_facts: int = 12) -> dict[str, str]:
    """One document per entity with facts: "Marie Curie (Person). Marie Curie spouse Pierre Curie. …"."""
    names = {e.key: e for e in graph.entities}
    facts: dict[str, list[tuple[float, str]]] = {}
    for t in graph.triples:
        if t.derived:
            continue
        sentence = verbalise_triples([(names[t.head].name, t.relation, names[t.tail].name)])
        for key in (t.head, t.tail):
            facts.setdefault(key, []).append((t.confidence, sentence))
    docs = {}
    for key, items in sorted(facts.items()):
        entity = names[key]
        best = [s for _, s in sorted(items, key=lambda x: (-x[0], x[1]))[:max_facts]]
        docs[key] = " ".join([f"{entity.name} ({entity.type}).", *best])
    return docs
