"""Entity → top-K evidence passages with P(D|e) = softmax(cosine / T) over them."""

from __future__ import annotations

import math

from kgrag.index.embedder import Embedder
from kgrag.index.faiss_index import FaissIndex
from kgrag.index.passage_store import PassageStore
from kgrag.records import Hit


def softmax(scores: list[float], temperature: float) -> list[float]:
    """P(D|e) over the retrieved passages: softmax of cosine scores at the given temperature."""
    if not scores:
        return []
    peak = max(scores)
    weights = [math.exp((s - peak) / temperature) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


class Retriever:
    def __init__(
        self, embedder: Embedder, index: FaissIndex, store: PassageStore, top_k: int, temperature: float
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.store = store
        self.top_k = top_k
        self.temperature = temperature
        self.active_derived: set[str] = set()  # current neighbourhood documents; older versions are skipped
        self.retired: set[str] = set()  # documents that are gone (deleted or changed); never retrieved

    def retrieve(self, query: str) -> list[Hit]:
        vector = self.embedder.encode([query])[0]
        wanted = self.top_k * 3
        while True:  # stale neighbourhood documents may crowd the first results: look further until top_k
            results = self.index.search(vector, wanted)
            found = []
            for passage_id, score in results:
                passage = self.store.passage(passage_id)
                if passage.doc_id in self.retired or (passage.derived and passage.doc_id not in self.active_derived):
                    continue
                found.append((passage, score))
                if len(found) == self.top_k:
                    break
            if len(found) == self.top_k or len(results) < wanted:
                break
            wanted *= 4
        probs = softmax([s for _, s in found], self.temperature)
        return [Hit(passage=p, score=s, prob=q) for (p, s), q in zip(found, probs)]
