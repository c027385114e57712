"""Post-extraction filters shared by ``kgrag build`` and ``kgrag eval``.

They run on the extractor's output as it comes out of the extraction cache, so changing them never
changes a cache key."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

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


# True: a triple whose types fit its relation only the other way round is read the other way round
# ("Mess of Blues (Work) author_of Jeff Healey (Person)"); False: it is dropped. Measured with
# bench/corpus_bench.py --flip-reversed on 30 Re-DocRED documents: turning them added 4 edges, none
# of them right, so they are dropped
FLIP_REVERSED = False


def reversed_triple(triple: ExtractedTriple) -> ExtractedTriple:
    update = {"head": triple.tail, "head_type": triple.tail_type, "tail": triple.head, "tail_type": triple.head_type}
    return triple.model_copy(update=update)


def usable_triples(
    triples: Iterable[ExtractedTriple], schema: GraphSchema, text: str, snap: bool = True
) -> list[ExtractedTriple]:
    """The triples that fit the schema's domain/range (turned round when only the reverse fits,
    :data:`FLIP_REVERSED`), whose head and tail are names where their
    types are ``named`` (:meth:`~kgrag.schema.GraphSchema.unnamed`), and both occur in ``text``
    (compared after :func:`normalize`) and differ from each other: a small model otherwise copies
    names from the prompt's examples.

    With ``snap`` each head and tail is first replaced by the span of ``text`` it stands for, when
    one matches confidently (:func:`snap_triple`), so near misses ("Kevin O'Brien" for
    "Kevin O 'Brien") are kept under the passage's own spelling. Triples that become equal are
    kept once, with the highest probability, in the place of the first. A qualified place name
    ("Sacramento, California") becomes its first part and the fact its qualifier states
    (:func:`unqualified`)."""
    padded = f" {normalize(text)} "
    kept: dict[tuple[str, ...], ExtractedTriple] = {}
    for t in triples:
        if snap:
            t = snap_triple(t, text)
        if schema.violation(t.head_type, t.relation, t.tail_type):
            if not FLIP_REVERSED or schema.violation(t.tail_type, t.relation, t.head_type):
                continue
            t = reversed_triple(t)
        if schema.unnamed(t.head_type, t.head) or schema.unnamed(t.tail_type, t.tail):
            continue
        for u in unqualified(t, schema):
            head, tail = normalize(u.head), normalize(u.tail)
            if f" {head} " in padded and f" {tail} " in padded and head != tail:
                key = (u.head, u.head_type, u.relation, u.tail, u.tail_type)
                if key not in kept or u.prob > kept[key].prob:
                    kept[key] = u
    return list(kept.values())


def qualifiers(name: str) -> list[str]:
    """The parts of a qualified place name, "Sacramento , California" → ["Sacramento", "California"];
    [name] when it is not one: a part that does not start with a capital ("Rocksburg, a fictional
    town"), or a later part with a dot ("Washington, D.C.", "Bethany, Conn."), which belongs to the name."""
    parts = [p.strip() for p in name.split(",")]
    if len(parts) < 2 or any(not p or not p[0].isupper() for p in parts) or any("." in p for p in parts[1:]):
        return [name]
    return parts


def unqualified(triple: ExtractedTriple, schema: GraphSchema) -> list[ExtractedTriple]:
    """The triple with each qualified name of a type that has a ``qualifier_relation`` cut to its
    first part, followed by the facts the qualifiers state: "born_in Sacramento, California" is
    born_in Sacramento and Sacramento located_in California (same probability)."""
    out = [triple]
    update: dict[str, str] = {}
    for end in ("head", "tail"):
        type_name = getattr(triple, f"{end}_type")
        relation = schema.qualifier_relation(type_name)
        parts = qualifiers(getattr(triple, end)) if relation else []
        if len(parts) < 2:
            continue
        update[end] = parts[0]
        for inner, outer in pairwise(parts):
            fact = {"head": inner, "head_type": type_name, "relation": relation, "tail": outer, "tail_type": type_name}
            out.append(ExtractedTriple(**fact, prob=triple.prob))
    if update:
        out[0] = triple.model_copy(update=update)
    return [t for t in out if not schema.violation(t.head_type, t.relation, t.tail_type)]
