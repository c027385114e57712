"""Post-extraction filters shared by ``kgrag build`` and ``kgrag eval``.

They run on the extractor's output as it comes out of the extraction cache, so changing them never
changes a cache key."""

from __future__ import annotations

from collections.abc import Iterable

from kgrag.extract.spans import snap_to_text
from kgrag.records import ExtractedTriple
from kgrag.schema import GraphSchema
from kgrag.text import normalize


def snap_triple(triple: ExtractedTriple, text: str) -> ExtractedTriple:
    """The triple with its head and tail spelled as ``text`` spells them
    (:func:`~kgrag.extract.spans.snap_to_text`); the triple itself when neither changes."""
    head, tail = snap_to_text(triple.head, text), snap_to_text(triple.tail, text)
    if (head, tail) == (triple.head, triple.tail):
        return triple
    return triple.model_copy(update={"head": head, "tail": tail})


def usable_triples(
    triples: Iterable[ExtractedTriple], schema: GraphSchema, text: str, snap: bool = True
) -> list[ExtractedTriple]:
    """The triples that fit the schema's domain/range and whose head and tail both occur in ``text``
    (compared after :func:`normalize`) and differ from each other: a small model otherwise copies
    names from the prompt's examples.

    With ``snap`` each head and tail is first replaced by the span of ``text`` it stands for, when
    one matches confidently (:func:`snap_triple`), so near misses ("Kevin O'Brien" for
    "Kevin O 'Brien") are kept under the passage's own spelling. Triples that become equal are
    kept once, with the highest probability, in the place of the first."""
    padded = f" {normalize(text)} "
    kept: dict[tuple[str, ...], ExtractedTriple] = {}
    for t in triples:
        if snap:
            t = snap_triple(t, text)
        head, tail = normalize(t.head), normalize(t.tail)
        if schema.violation(t.head_type, t.relation, t.tail_type):
            continue
        if f" {head} " in padded and f" {tail} " in padded and head != tail:
            key = (t.head, t.head_type, t.relation, t.tail, t.tail_type)
            if key not in kept or t.prob > kept[key].prob:
                kept[key] = t
    return list(kept.values())
