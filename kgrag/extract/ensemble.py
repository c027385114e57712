"""Several generators on one passage: a mixture of their triples.

kgrag scores a triple by P(t|e) = Σ_D P(D|e)·P(t|e,D). With several models (``--model a,b``),
P(t|e,D) becomes the mixture (1/M)·Σ_m P_m(t|e,D), where P_m is 0 for a model that did not write
t. Triples whose mixture is below ``min_prob`` are dropped: with two models and 0.45, a triple
both wrote is kept (unless both doubted it), and one only one wrote is kept when that model gave
it more than 0.9. Each member has its own extraction cache entries, so changing the threshold or
adding a member reruns only what is new.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from kgrag.extract.extractor import Extractor, same_triple_key
from kgrag.records import ExtractedTriple, Extraction, Passage


class PassageExtractor(Protocol):
    """What build and eval need of an extractor: one model's, or a mixture's."""

    @property
    def identity(self) -> str: ...

    @property
    def calls(self) -> int: ...

    @property
    def decode_seconds(self) -> float: ...

    @property
    def prefill_seconds(self) -> float: ...

    @property
    def loaded(self) -> bool: ...

    @property
    def parallelism(self) -> int:
        """Passages worth handing to :meth:`extract_many` together (1: one at a time is as fast)."""
        ...

    def is_cached(self, passage: Passage) -> bool: ...

    def extract(self, passage: Passage) -> Extraction: ...

    def extract_many(self, passages: Sequence[Passage]) -> Iterator[tuple[Passage, Extraction]]:
        """Each passage's extraction, in any order, each cached before it is yielded."""
        ...


def mix(parts: Sequence[Extraction], passage_id: int, min_prob: float) -> Extraction:
    """One extraction from the members' extractions of a passage: each distinct triple (as the
    extractor deduplicates: :func:`same_triple_key`) with the mean of its probabilities, 0 where missing."""
    first: dict[tuple[str, str, str], ExtractedTriple] = {}
    total: dict[tuple[str, str, str], float] = {}
    for part in parts:
        for triple in part.triples:
            key = same_triple_key(triple)
            first.setdefault(key, triple)
            total[key] = total.get(key, 0.0) + triple.prob
    mean = {key: prob / len(parts) for key, prob in total.items()}
    triples = [
        first[key].model_copy(update={"prob": mean[key], "p_continue": None}) for key in first if mean[key] >= min_prob
    ]
    errors = [part.error for part in parts if part.error]
    return Extraction(
        passage_id=passage_id,
        triples=triples,
        completion_tokens=sum(part.completion_tokens for part in parts),
        prompt_tokens=sum(part.prompt_tokens for part in parts),
        seconds=sum(part.seconds for part in parts),
        error="; ".join(errors) or None,
        scored=all(part.scored for part in parts),
    )


class EnsembleExtractor:
    """Runs every member extractor on a passage (each through its own cache) and mixes the triples."""

    def __init__(self, members: Sequence[Extractor], min_prob: float) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two extractors")
        self.members = list(members)
        self.min_prob = min_prob

    @property
    def identity(self) -> str:
        return " & ".join(member.identity for member in self.members)

    @property
    def loaded(self) -> bool:
        return all(member.loaded for member in self.members)

    @property
    def parallelism(self) -> int:
        return max(member.parallelism for member in self.members)  # each member reads all the passages

    @property
    def calls(self) -> int:
        return sum(member.calls for member in self.members)

    @property
    def decode_seconds(self) -> float:
        return sum(member.decode_seconds for member in self.members)

    @property
    def prefill_seconds(self) -> float:
        return sum(member.prefill_seconds for member in self.members)

    def is_cached(self, passage: Passage) -> bool:
        return all(member.is_cached(passage) for member in self.members)

    def extract(self, passage: Passage) -> Extraction:
        return next(self.extract_many([passage]))[1]

    def extract_many(self, passages: Sequence[Passage]) -> Iterator[tuple[Passage, Extraction]]:
        """Each member reads all the passages (as many at once as its backend serves), then each
        passage's extractions are mixed."""
        parts = [{p.id: e for p, e in member.extract_many(passages)} for member in self.members]
        for passage in passages:
            yield passage, mix([part[passage.id] for part in parts], passage.id, self.min_prob)
