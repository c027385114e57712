"""Entity resolution: merge mentions of one entity, then merge the triples that become duplicates.

Mentions merge when they normalise to the same name (case, whitespace, punctuation, articles),
when one is an alias of the other (same first and last word, the shorter's words in order inside
the longer: "Marie Curie" ~ "Marie Skłodowska Curie"), or when their name embeddings are closer
than a threshold, or when a passage gives one as the other's birth name ("Marie Skłodowska Curie
(born Maria Salomea Skłodowska; ...)", :func:`birth_names`). Only mentions of the same or compatible
entity types (the schema's ``compatible`` lists) ever merge; a merged entity takes the type most of
its mentions have.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from kgrag.graph.score import add_evidence
from kgrag.index.embedder import Embedder
from kgrag.records import Entity, ResolvedGraph, Triple
from kgrag.text import is_alias, normalize

_NAME = r"[A-Z][\w'’.-]*(?:[^\S\n]+[A-Z][\w'’.-]*)+"  # two or more capitalised words on one line
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_BORN = re.compile(rf"({_NAME})\s*\(\s*(?:born|née)\s+(?!(?:{_MONTHS})\b)({_NAME})")


def birth_names(text: str) -> list[tuple[str, str]]:
    """(name, birth name) pairs a text states as "Name (born Birth Name ..." or "Name (née Birth
    Name ...": "Marie Skłodowska Curie (born Maria Salomea Skłodowska; 7 November 1867 ...)". A date
    after "born" is no name ("Paul Desmarais Jr. (born July 3, 1954)")."""
    return [(m.group(1), m.group(2)) for m in _BORN.finditer(text)]


def entity_key(name: str, type_name: str) -> str:
    """The stable identity of a resolved entity: its type and normalised canonical name."""
    return f"{type_name.lower()}:{normalize(name)}"


def _is_birth_name(surface: str, born: set[str]) -> bool:
    name = normalize(surface)
    return name in born or any(is_alias(name, full) for full in born)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def same_type(a: str, b: str) -> bool:
    return a == b


class Resolver:
    def __init__(
        self,
        embedder: Embedder | None,
        similarity: float = 0.92,
        compatible: Callable[[str, str], bool] = same_type,
    ) -> None:
        self.embedder = embedder
        self.similarity = similarity
        self.compatible = compatible

    def resolve(self, triples: Sequence[Triple], birth: Iterable[tuple[str, str]] = ()) -> ResolvedGraph:
        """``birth``: (name, birth name) pairs the documents state (:func:`birth_names`): both names,
        and their short forms, become one entity of each type any of them is mentioned with."""
        # 1. group mentions by (normalised name, type), counting surface forms
        surfaces: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for t in triples:
            surfaces[(normalize(t.head), t.head_type)][t.head.strip()] += 1
            surfaces[(normalize(t.tail), t.tail_type)][t.tail.strip()] += 1
        same: list[tuple[tuple[str, str], tuple[str, str]]] = []
        born: set[str] = set()  # birth names: an entity is named by its later name when it has one
        for name, birth_name in birth:
            names = {normalize(name), normalize(birth_name)}
            # the types of the mentions of either name, or of a short form of one ("Maria Skłodowska")
            types = {t for n, t in list(surfaces) if n in names or any(is_alias(n, full) for full in names)}
            for type_name in sorted(types):
                for surface in (name, birth_name):  # named, but by no triple: counted 0
                    surfaces[(normalize(surface), type_name)][surface] += 0
                same.append(((normalize(name), type_name), (normalize(birth_name), type_name)))
            if types:
                born.add(normalize(birth_name))
        groups = sorted(surfaces)
        uf = _UnionFind(len(groups))
        index = {group: i for i, group in enumerate(groups)}
        for a, b in same:
            uf.union(index[a], index[b])
        ok = self._compatibility([type_name for _, type_name in groups])
        self._merge_same_name(groups, uf, ok)
        self._merge_aliases(groups, uf, ok)
        self._merge_similar(groups, uf, ok)

        # 2. one entity per union-find cluster; canonical name = the most frequent surface form
        clusters: dict[int, list[int]] = defaultdict(list)
        for i in range(len(groups)):
            clusters[uf.find(i)].append(i)
        key_of: dict[tuple[str, str], str] = {}
        entities: list[Entity] = []
        for members in clusters.values():
            counts: Counter[str] = Counter()
            type_votes: Counter[str] = Counter()
            for i in members:
                counts.update(surfaces[groups[i]])
                type_votes[groups[i][1]] += sum(surfaces[groups[i]].values())
            # not a birth name (nor a short form of one), then the most frequent, then the shortest
            name = min(counts, key=lambda s: (_is_birth_name(s, born), -counts[s], len(s), s))
            type_name = min(type_votes, key=lambda t: (-type_votes[t], t))
            key = entity_key(name, type_name)
            entities.append(Entity(key=key, name=name, type=type_name, aliases=sorted(set(counts) - {name})))
            for i in members:
                key_of[groups[i]] = key

        # 3. rewrite triples onto entity keys and merge the duplicates, uniting provenance
        merged: dict[tuple[str, str, str], Triple] = {}
        for t in triples:
            head = key_of[(normalize(t.head), t.head_type)]
            tail = key_of[(normalize(t.tail), t.tail_type)]
            if head == tail:
                continue
            target = merged.setdefault(
                (head, t.relation, tail),
                t.model_copy(update={"head": head, "tail": tail, "evidence": [], "confidence": 0.0}),
            )
            for evidence in t.evidence:
                add_evidence(target, evidence)
        used = {k for t in merged.values() for k in (t.head, t.tail)}
        entities = sorted((e for e in entities if e.key in used), key=lambda e: e.key)
        return ResolvedGraph(entities=entities, triples=sorted(merged.values(), key=lambda t: t.key))

    def _compatibility(self, types: list[str]) -> np.ndarray:
        """Boolean matrix: may mention group i and group j be one entity, by their types."""
        kinds = sorted(set(types))
        table = np.array([[self.compatible(a, b) for b in kinds] for a in kinds], dtype=bool)
        index = np.array([kinds.index(t) for t in types], dtype=int)
        return table[np.ix_(index, index)] if len(types) else np.zeros((0, 0), dtype=bool)

    @staticmethod
    def _merge_same_name(groups: list[tuple[str, str]], uf: _UnionFind, ok: np.ndarray) -> None:
        by_name: dict[str, list[int]] = defaultdict(list)
        for i, (name, _) in enumerate(groups):
            by_name[name].append(i)
        for members in by_name.values():
            for i in members:
                for j in members:
                    if i < j and ok[i, j]:
                        uf.union(i, j)

    @staticmethod
    def _merge_aliases(groups: list[tuple[str, str]], uf: _UnionFind, ok: np.ndarray) -> None:
        for i, (short, _) in enumerate(groups):
            longer = [j for j, (name, _) in enumerate(groups) if ok[i, j] and is_alias(short, name)]
            if len({groups[j][0] for j in longer}) == 1:  # an ambiguous short name stays on its own
                for j in longer:
                    uf.union(i, j)

    def _merge_similar(self, groups: list[tuple[str, str]], uf: _UnionFind, ok: np.ndarray) -> None:
        if self.embedder is None or len(groups) < 2:
            return
        vectors = self.embedder.encode([name for name, _ in groups])
        sims = vectors @ vectors.T
        close = np.argwhere(np.triu((sims >= self.similarity) & ok, k=1))
        for i, j in close:
            uf.union(int(i), int(j))
