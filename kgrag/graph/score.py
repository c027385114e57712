"""RAG scoring: P(t|e) = Σ_D P(D|e)·P(t|e,D) over the passages that produced a triple, with evidence spans.

P(D|e) itself comes from retrieval (:mod:`kgrag.index.retriever`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from kgrag.records import Evidence, Extraction, Passage, ResolvedGraph, Triple


def _occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """Case-insensitive matches of ``needle``, any run of whitespace matching any other."""
    words = needle.split()
    if not words:
        return []
    pattern = r"\s+".join(re.escape(w) for w in words)
    return [(m.start(), m.end()) for m in re.finditer(pattern, text, flags=re.IGNORECASE)]


def evidence_span(passage: Passage, head: str, tail: str) -> tuple[int, int]:
    """Document character span of the tightest window holding a head and a tail mention; one
    mention when only one is found; the whole passage when neither can be located."""
    heads, tails = _occurrences(passage.text, head), _occurrences(passage.text, tail)
    if heads and tails:
        windows = [(min(h[0], t[0]), max(h[1], t[1])) for h in heads for t in tails]
        start, end = min(windows, key=lambda w: (w[1] - w[0], w[0]))
    elif heads or tails:
        start, end = (heads or tails)[0]
    else:
        return passage.start, passage.end
    return passage.start + start, passage.start + end


def score_triples(
    extractions: Iterable[Extraction],
    passages: Mapping[int, Passage],
    weights: Mapping[int, float],
    min_triple_prob: float = 0.0,
) -> list[Triple]:
    """Marginalise each distinct triple over the passages that produced it.

    ``weights`` maps passage id → P(D|e) (the best weight any expanded entity gave the passage).
    Evidence from derived passages (verbalised graph neighbourhoods) is kept but never adds confidence.
    """
    merged: dict[tuple[str, ...], Triple] = {}
    for extraction in extractions:
        passage = passages[extraction.passage_id]
        p_doc = weights.get(passage.id, 0.0)
        for t in extraction.triples:
            if t.prob < min_triple_prob:
                continue
            start, end = evidence_span(passage, t.head, t.tail)
            evidence = Evidence(
                doc_id=passage.doc_id,
                passage_id=passage.id,
                start=start,
                end=end,
                p_doc=p_doc,
                p_triple=t.prob,
                derived=passage.derived,
            )
            key = (t.head, t.head_type, t.relation, t.tail, t.tail_type)
            triple = merged.setdefault(
                key,
                Triple(
                    head=t.head,
                    head_type=t.head_type,
                    relation=t.relation,
                    tail=t.tail,
                    tail_type=t.tail_type,
                    confidence=0.0,
                    derived=True,
                ),
            )
            add_evidence(triple, evidence)
    return list(merged.values())


def add_evidence(triple: Triple, evidence: Evidence) -> None:
    """Unite provenance; grounded evidence adds P(D|e)·P(t|e,D) once per passage."""
    for i, known in enumerate(triple.evidence):
        if known.passage_id == evidence.passage_id:
            if evidence.p_doc * evidence.p_triple <= known.p_doc * known.p_triple:
                return
            triple.evidence[i] = evidence
            break
    else:
        triple.evidence.append(evidence)
    grounded = [e for e in triple.evidence if not e.derived]
    triple.derived = not grounded
    triple.confidence = min(1.0, sum(e.p_doc * e.p_triple for e in grounded))


def confident(graph: ResolvedGraph, floor: float) -> ResolvedGraph:
    """The graph without the grounded facts whose confidence is below ``floor`` (nor the entities
    only they named). Facts read only from verbalised neighbourhoods (confidence 0) stay: they are
    marked ``derived``, not scored."""
    if floor <= 0:
        return graph
    triples = [t for t in graph.triples if t.derived or t.confidence >= floor]
    used = {k for t in triples for k in (t.head, t.tail)}
    return ResolvedGraph(entities=[e for e in graph.entities if e.key in used], triples=triples)
