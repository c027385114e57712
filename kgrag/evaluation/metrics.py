"""Triple and entity scores: micro/macro precision, recall and F1 with set semantics.

Every function here is pure. Gold and predictions are de-duplicated per example (under the match
key in use) before they are compared, and micro figures add the per-example counts up.

Two match keys:

- **strict**: head, relation and tail equal after whitespace normalization (runs of whitespace
  become one space, ends stripped);
- **normalized**: head and tail equal after :func:`normalize_name` (case, accents, punctuation,
  underscores, leading articles), relation names equal case-insensitively. Where gold entities
  list aliases (Re-DocRED clusters), a predicted name that is an alias of a gold entity counts as
  that entity's first name, which is the name gold triples use.

Conventions for empty sets: precision is 0 when nothing is predicted but something was expected,
recall is 0 when something is predicted but nothing was expected, and a system that predicts
nothing where nothing is expected scores 1/1/1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kgrag.text import normalize, squash

Triple = tuple[str, str, str]
TripleKey = tuple[str, str, str]
Aliases = Mapping[str, str]  # normalized alias -> normalized first name of its gold entity


class PRF(BaseModel):
    """Precision, recall and F1 with the counts they come from."""

    precision: float
    recall: float
    f1: float
    tp: int
    predicted: int
    gold: int


@dataclass(frozen=True)
class Counts:
    """True positives, predicted and gold sizes (after de-duplication); they add up across examples."""

    tp: int = 0
    predicted: int = 0
    gold: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.predicted + other.predicted, self.gold + other.gold)


def prf(counts: Counts) -> PRF:
    """Precision, recall and F1 of counts, with the empty-set conventions of this module."""
    tp, predicted, gold = counts.tp, counts.predicted, counts.gold
    if predicted == 0 and gold == 0:
        return PRF(precision=1.0, recall=1.0, f1=1.0, tp=0, predicted=0, gold=0)
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision=precision, recall=recall, f1=f1, tp=tp, predicted=predicted, gold=gold)


# -- match keys ---------------------------------------------------------------------------------


def normalize_name(name: str) -> str:
    """Case-, accent-, punctuation-, underscore- and article-insensitive form of an entity name."""
    return normalize(name.replace("_", " "))


def strict_key(triple: Triple) -> TripleKey:
    head, relation, tail = triple
    return squash(head), squash(relation), squash(tail)


def normalized_key(triple: Triple, aliases: Aliases | None = None) -> TripleKey:
    head, relation, tail = triple
    h, t = normalize_name(head), normalize_name(tail)
    if aliases:
        h, t = aliases.get(h, h), aliases.get(t, t)
    return h, squash(relation).casefold(), t


KeyFn = Callable[[Triple], TripleKey]


def key_function(mode: str, aliases: Aliases | None = None) -> KeyFn:
    """The match key of a mode: ``strict`` or ``normalized``."""
    if mode == "strict":
        return strict_key
    if mode == "normalized":
        return lambda triple: normalized_key(triple, aliases)
    raise ValueError(f"unknown match mode {mode!r} (strict or normalized)")


# -- triples ------------------------------------------------------------------------------------


def triple_counts(gold: Iterable[Triple], predicted: Iterable[Triple], key: KeyFn = strict_key) -> Counts:
    """Counts of one example under ``key``, gold and predictions de-duplicated."""
    gold_set = {key(t) for t in gold}
    pred_set = {key(t) for t in predicted}
    return Counts(len(gold_set & pred_set), len(pred_set), len(gold_set))


def relation_counts(gold: Iterable[Triple], predicted: Iterable[Triple], key: KeyFn = strict_key) -> dict[str, Counts]:
    """Counts of one example per relation, keyed by the case-folded relation name."""
    gold_set = {key(t) for t in gold}
    pred_set = {key(t) for t in predicted}
    out: dict[str, Counts] = {}
    for k in gold_set | pred_set:
        name = k[1].casefold()
        out[name] = out.get(name, Counts()) + Counts(
            int(k in gold_set and k in pred_set), int(k in pred_set), int(k in gold_set)
        )
    return out


def micro(examples: Iterable[tuple[Sequence[Triple], Sequence[Triple]]], mode: str = "strict") -> PRF:
    """Micro P/R/F1 over ``(gold, predicted)`` pairs, one pair per example."""
    key = key_function(mode)
    total = Counts()
    for gold, predicted in examples:
        total += triple_counts(gold, predicted, key)
    return prf(total)


def add_counts(into: dict[str, Counts], more: Mapping[str, Counts]) -> None:
    """Add per-relation counts into an accumulator."""
    for name, counts in more.items():
        into[name] = into.get(name, Counts()) + counts


def macro_f1(by_relation: Mapping[str, Counts]) -> float:
    """Mean F1 over every relation that occurs in the gold or the predictions (0 when there is none)."""
    if not by_relation:
        return 0.0
    return sum(prf(c).f1 for c in by_relation.values()) / len(by_relation)


# -- entities -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldEntity:
    """A gold entity: its names (the first is the one gold triples use) and its type, if known."""

    names: tuple[str, ...]
    type: str | None = None


def gold_entities(raw: Any) -> list[GoldEntity]:
    """The dataset's ``entities`` field as gold entities: CoNLL04 ``[mention, type]`` items and
    Re-DocRED ``[[name, alias, …], type]`` clusters. Items of another shape are skipped."""
    out: list[GoldEntity] = []
    for item in raw or []:
        if not isinstance(item, (list, tuple)) or not item:
            continue
        names, type_name = item[0], item[1] if len(item) > 1 else None
        if isinstance(names, str):
            names = [names]
        names = tuple(n for n in names if isinstance(n, str) and n.strip())
        if names:
            out.append(GoldEntity(names, type_name if isinstance(type_name, str) else None))
    return out


def alias_map(entities: Iterable[GoldEntity]) -> dict[str, str]:
    """Normalized alias → normalized first name, for entities with more than one name (the first
    entity listing an alias keeps it)."""
    aliases: dict[str, str] = {}
    for entity in entities:
        if len(entity.names) < 2:
            continue
        first = normalize_name(entity.names[0])
        for name in entity.names[1:]:
            aliases.setdefault(normalize_name(name), first)
    return aliases


def entity_counts(gold: Sequence[GoldEntity], predicted: Iterable[tuple[str, str]], typed: bool = False) -> Counts:
    """Counts of one example's entities, names compared normalized and alias-aware; ``typed`` also
    requires the predicted type to equal the gold one. ``predicted`` holds ``(name, type)`` pairs."""
    aliases = alias_map(gold)

    def key(name: str, type_name: str | None) -> tuple[str, str | None]:
        norm = normalize_name(name)
        return aliases.get(norm, norm), type_name if typed else None

    gold_set = {key(e.names[0], e.type) for e in gold}
    pred_set = {key(name, type_name) for name, type_name in predicted}
    return Counts(len(gold_set & pred_set), len(pred_set), len(gold_set))
