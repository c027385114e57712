"""Entity resolution: merge mentions of one entity, then merge the triples that become duplicates.

Mentions merge when they normalise to the same name (case, whitespace, punctuation, articles),
when one is an alias of the other (same first and last word, the shorter's words in order inside
the longer: "Marie Curie" ~ "Marie Skłodowska Curie"), or when their name embeddings are closer
than a threshold. Only mentions of the same entity type ever merge.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from kgrag.graph.score import add_evidence
from kgrag.index.embedder import Embedder
from kgrag.records import Entity, ResolvedGraph, Triple

_ARTICLES = {"the", "a", "an"}


def normalize(name: str) -> str:
    """Case-, accent-, punctuation- and article-insensitive form of a name."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    words = re.sub(r"[^\w]+", " ", text).split()
    while len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def entity_key(name: str, type_name: str) -> str:
    """The stable identity of a resolved entity: its type and normalised canonical name."""
    return f"{type_name.lower()}:{normalize(name)}"


def is_alias(short: str, long: str) -> bool:
    """True when ``short`` names the same thing as ``long`` with words left out of the middle."""
    a, b = short.split(), long.split()
    if len(a) < 2 or len(a) >= len(b) or a[0] != b[0] or a[-1] != b[-1]:
        return False
    it = iter(b)
    return all(word in it for word in a)


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


class Resolver:
    def __init__(self, embedder: Embedder | None, similarity: float = 0.92) -> None:
        self.embedder = embedder
        self.similarity = similarity

    def resolve(self, triples: Sequence[Triple]) -> ResolvedGraph:
        # 1. group mentions by (normalised name, type), counting surface forms
        surfaces: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for t in triples:
            surfaces[(normalize(t.head), t.head_type)][t.head.strip()] += 1
            surfaces[(normalize(t.tail), t.tail_type)][t.tail.strip()] += 1
        groups = sorted(surfaces)
        uf = _UnionFind(len(groups))
        self._merge_aliases(groups, uf)
        self._merge_similar(groups, uf)

        # 2. one entity per union-find cluster; canonical name = the most frequent surface form
        clusters: dict[int, list[int]] = defaultdict(list)
        for i in range(len(groups)):
            clusters[uf.find(i)].append(i)
        key_of: dict[tuple[str, str], str] = {}
        entities: list[Entity] = []
        for members in clusters.values():
            counts: Counter[str] = Counter()
            for i in members:
                counts.update(surfaces[groups[i]])
            name = min(counts, key=lambda s: (-counts[s], len(s), s))  # most frequent, then shortest
            type_name = groups[members[0]][1]
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

    @staticmethod
    def _merge_aliases(groups: list[tuple[str, str]], uf: _UnionFind) -> None:
        by_type: dict[str, list[int]] = defaultdict(list)
        for i, (_, type_name) in enumerate(groups):
            by_type[type_name].append(i)
        for members in by_type.values():
            for i in members:
                longer = [j for j in members if is_alias(groups[i][0], groups[j][0])]
                if len(longer) == 1:  # an ambiguous short name stays on its own
                    uf.union(i, longer[0])

    def _merge_similar(self, groups: list[tuple[str, str]], uf: _UnionFind) -> None:
        if self.embedder is None or len(groups) < 2:
            return
        vectors = self.embedder.encode([name for name, _ in groups])
        sims = vectors @ vectors.T
        types = np.array([type_name for _, type_name in groups])
        same_type = types[:, None] == types[None, :]
        close = np.argwhere(np.triu((sims >= self.similarity) & same_type, k=1))
        for i, j in close:
            uf.union(int(i), int(j))
