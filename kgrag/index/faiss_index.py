"""The FAISS passage index on disk (index.faiss): row i holds the vector of passage i.

The index only holds what passages.sqlite can make again: a damaged one is deleted, and the next
build embeds every passage the index lacks, which is then all of them.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from kgrag.errors import KgragError
from kgrag.io import atomic_path, os_error, where

_DELETE_IT = "delete it and run the build again (the passages are embedded again)"


class FaissIndex:
    """Exact inner-product search over unit vectors (cosine similarity)."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = Path(path)
        self.index = self._read(self.path, dim) if self.path.exists() else faiss.IndexFlatIP(dim)

    @staticmethod
    def _read(path: Path, dim: int) -> faiss.Index:
        try:
            path.open("rb").close()  # an unreadable file is not a damaged one
        except OSError as exc:
            raise os_error("read", path, exc) from exc
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise KgragError(f"{where(path)} is damaged (truncated, or not a FAISS index): {_DELETE_IT}") from exc
        if index.d != dim:
            raise KgragError(
                f"{where(path)} holds {index.d}-dimensional vectors, the embedder makes {dim}: {_DELETE_IT}"
            )
        return index

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
        """Atomic write: a crash mid-save leaves the previous index intact. The bytes go through a
        Python file, so a failed write (full or read-only disk) raises, and is one line naming the file
        (``faiss.write_index`` to a path only prints a failed close and leaves a truncated file)."""
        with atomic_path(self.path) as tmp, tmp.open("wb") as handle:
            faiss.write_index(self.index, faiss.PyCallbackIOWriter(handle.write))
