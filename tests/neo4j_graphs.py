"""Synthetic ResolvedGraphs (and the passages.sqlite behind them) for the Neo4j tests."""

from __future__ import annotations

import random
from pathlib import Path

from kgrag.index.passage_store import PassageStore
from kgrag.records import Document, Entity, Evidence, Passage, ResolvedGraph, Triple

INJECTION = "x`}]->(n) DETACH DELETE n //"
NASTY_NAMES = [
    INJECTION,
    "O'Brien \"the 'quoted'\" one",
    "back\\slash\\\\double \\u0041 \\n not-a-newline",
    "Zoë Ünïcødé 中文 😀",
    "line\nbreak\ttab\rreturn",
    "semi; colon; // comment /* block */ $param {brace} [bracket]",
    "'); MATCH (n) DETACH DELETE n; //",
]
TYPES = ["Person", "Organization", "Location"]
RELATIONS = ["works_for", "born_in", "collaborated_with", "OrgBased_In"]


def key(name: str, type_name: str) -> str:
    return f"{type_name.lower()}:{name.lower()}"


def write_passages(path: Path, docs: list[Document], passages: list[Passage]) -> Path:
    store = PassageStore(path)
    try:
        store.add(docs, passages)
    finally:
        store.close()
    return path


def corpus(n_docs: int = 3, per_doc: int = 4) -> tuple[list[Document], list[Passage]]:
    docs, passages = [], []
    pid = 0
    for d in range(n_docs):
        chunks = [f'Passage {p} of document {d}: it\'s "quoted" and has a \\ backslash.' for p in range(per_doc)]
        text = " ".join(chunks)
        doc = Document(id=f"doc{d:03d}", source=f"docs/d{d}.txt", title=f"Document {d}", text=text)
        docs.append(doc)
        start = 0
        for chunk in chunks:
            passages.append(Passage(id=pid, doc_id=doc.id, start=start, end=start + len(chunk), text=chunk))
            start += len(chunk) + 1
            pid += 1
    return docs, passages


def evidence_for(passage: Passage, p_doc: float = 0.5, derived: bool = False) -> Evidence:
    return Evidence(
        doc_id=passage.doc_id,
        passage_id=passage.id,
        start=passage.start,
        end=passage.end,
        p_doc=p_doc,
        p_triple=0.9,
        derived=derived,
    )


def synthetic_graph(
    n_entities: int, n_triples: int, passages: list[Passage], seed: int = 0, names: list[str] | None = None
) -> ResolvedGraph:
    """Entities (named from ``names`` first, then plain) joined by random typed triples with evidence."""
    rng = random.Random(seed)
    pool = list(names or []) + [f"Entity {i} «{i % 7}»" for i in range(n_entities)]
    entities = []
    for i, name in enumerate(pool[:n_entities]):
        type_name = TYPES[i % len(TYPES)]
        entities.append(Entity(key=key(name, type_name), name=name, type=type_name, aliases=[name.upper()]))
    triples: dict[tuple[str, str, str], Triple] = {}
    while len(triples) < n_triples:
        h, t = rng.sample(entities, 2)
        relation = rng.choice(RELATIONS)
        ev = [evidence_for(p, rng.random()) for p in rng.sample(passages, min(2, len(passages)))]
        triples[(h.key, relation, t.key)] = Triple(
            head=h.key,
            head_type=h.type,
            relation=relation,
            tail=t.key,
            tail_type=t.type,
            confidence=round(rng.random(), 6),
            evidence=ev,
        )
    return ResolvedGraph(entities=entities, triples=list(triples.values()))
