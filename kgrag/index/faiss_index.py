"""The FAISS passage index on disk (index.faiss): row i holds the vector of passage i."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from kgrag.io import atomic_path


class FaissIndex:
    """Exact inner-product search over unit vectors (cosine similarity)."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.index = faiss.read_index(str(path)) if path.exists() else faiss.IndexFlatIP(dim)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        if len(vectors):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def truncate(self, size: int) -> None:
        """Drop rows past ``size`` (vectors whose passages never reached the passage store)."""
        if self.size > size:
            self.index.remove_ids(np.arange(size, self.size, dtype=np.int64))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.size == 0:
            return []
        scores, ids = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, self.size))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def save(self) -> None:
        """Atomic write: a crash mid-save leaves the previous index intact."""
        with atomic_path(self.path) as tmp:
            faiss.write_index(self.index, str(tmp))
