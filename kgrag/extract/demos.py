"""Retrieval-augmented demonstrations: the training examples most like a passage, as few-shot turns.

A JSONL training file (``{"text", "triples": [[h, r, t]], "entities": [[name, type]]?}`` per line)
is embedded once with the project's MiniLM embedder into a FAISS inner-product index, cached on
disk under ``model_cache_dir() / "demos"`` by the SHA-256 of the file, and reused on later loads.
Each training line becomes a demo in the schema's example format
(``{"text": ..., "triples": [[head, head_type, relation, tail, tail_type]]}``): types come from the
line's ``entities`` where it has them (CoNLL04), otherwise the schema's most generic type (WebNLG).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kgrag.errors import KgragError
from kgrag.index.embedder import Embedder
from kgrag.io import atomic_path, sha256_file, write_text_atomic
from kgrag.schema import GraphSchema

logger = logging.getLogger(__name__)

EMBEDDER_NAME = "all-MiniLM-L6-v2"  # part of the index's cache key
_GENERIC_TYPES = ("Entity", "Other", "Thing", "Concept")


def generic_type(schema: GraphSchema) -> str:
    """The type given to an entity whose type the training data does not say."""
    names = schema.entity_type_names
    return next((name for name in _GENERIC_TYPES if name in names), names[0])


def to_demo(record: dict[str, Any], schema: GraphSchema) -> dict[str, Any] | None:
    """A training record as a schema example, or None when it cannot teach the schema (its
    triples use relations or types the schema lacks, so none of them survives)."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    fallback = generic_type(schema)
    known_types = set(schema.entity_type_names)
    relations = set(schema.relation_names)
    types: dict[str, str] = {}
    for entity in record.get("entities") or []:
        if isinstance(entity, (list, tuple)) and len(entity) >= 2 and isinstance(entity[0], str):
            types.setdefault(entity[0], str(entity[1]))
    raw = record.get("triples") or []
    triples: list[list[str]] = []
    for item in raw:
        if not (isinstance(item, (list, tuple)) and len(item) == 3):
            continue
        head, relation, tail = (str(x) for x in item)
        if relations and relation not in relations:
            continue
        head_type, tail_type = types.get(head, fallback), types.get(tail, fallback)
        if head_type not in known_types or tail_type not in known_types:
            continue
        if schema.violation(head_type, relation, tail_type):
            continue
        triple = [head, head_type, relation, tail, tail_type]
        if triple not in triples:
            triples.append(triple)
    if raw and not triples:
        return None
    return {"text": text, "triples": triples}


class DemoRetriever:
    """The ``k`` training examples nearest to a passage (cosine similarity of MiniLM embeddings)."""

    def __init__(
        self,
        train_path: Path | str,
        schema: GraphSchema,
        embedder: Embedder | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.train_path = Path(train_path)
        if not self.train_path.is_file():
            raise KgragError(f"no demonstrations file {self.train_path}")
        self.schema = schema
        self._embedder = embedder
        self.sha256 = sha256_file(self.train_path)
        records = self._read()
        self.texts = [str(r.get("text") or "") for r in records]
        self.demos = [to_demo(r, schema) for r in records]
        if cache_dir is None:
            from kgrag.generator.registry import model_cache_dir

            cache_dir = model_cache_dir() / "demos"
        key = hashlib.sha256(f"{self.sha256}:{EMBEDDER_NAME}".encode()).hexdigest()
        self.index_path = Path(cache_dir) / f"{key}.faiss"
        self.texts_path = Path(cache_dir) / f"{key}.texts.json"
        self.built = False  # whether this load embedded the file (False: reused from disk)
        self.index = self._load() or self._build()
        self._memo: dict[tuple[str, int], list[dict[str, Any]]] = {}

    @property
    def identity(self) -> str:
        """What the demos depend on besides the passage: part of the extraction cache key."""
        return f"{self.train_path.name}@{self.sha256[:16]}:{EMBEDDER_NAME}"

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from kgrag.index.embedder import MiniLMEmbedder

            self._embedder = MiniLMEmbedder()
        return self._embedder

    def _read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        try:
            with self.train_path.open(encoding="utf-8") as handle:
                for n, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise KgragError(f"{self.train_path} line {n}: not JSON: {exc}") from exc
                    records.append(record if isinstance(record, dict) else {})
        except (OSError, UnicodeDecodeError) as exc:
            raise KgragError(f"cannot read demonstrations {self.train_path}: {exc}") from exc
        return records

    def _load(self) -> Any | None:
        if not (self.index_path.exists() and self.texts_path.exists()):
            return None
        try:
            index = faiss.read_index(str(self.index_path))
            texts = json.loads(self.texts_path.read_text(encoding="utf-8"))
        except (RuntimeError, OSError, ValueError) as exc:
            logger.warning("rebuilding the demonstration index %s: %s", self.index_path, exc)
            return None
        if texts != self.texts or index.ntotal != len(self.texts):
            logger.warning("rebuilding the demonstration index %s: it does not match the file", self.index_path)
            return None
        return index

    def _build(self) -> Any:
        logger.info("embedding %d demonstrations from %s", len(self.texts), self.train_path)
        vectors = self.embedder.encode(self.texts, progress=len(self.texts) > 2000)
        index = faiss.IndexFlatIP(self.embedder.dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.index_path) as tmp:
            faiss.write_index(index, str(tmp))
        write_text_atomic(self.texts_path, json.dumps(self.texts, ensure_ascii=False))
        self.built = True
        return index

    def nearest(self, text: str, k: int) -> list[dict[str, Any]]:
        """The ``k`` usable training examples most similar to ``text``, most similar first, as
        schema examples; never one whose text equals ``text`` (nor the same text twice)."""
        if k <= 0 or self.index.ntotal == 0:
            return []
        memo = self._memo.get((text, k))
        if memo is not None:
            return memo
        query = " ".join(text.split())
        vector = self.embedder.encode([text])
        fetch = min(self.index.ntotal, 4 * k + 8)
        while True:
            _, ids = self.index.search(np.ascontiguousarray(vector, dtype=np.float32), fetch)
            found: list[dict[str, Any]] = []
            seen = {query}
            for i in ids[0]:
                if i < 0:
                    continue
                demo = self.demos[int(i)]
                normal = " ".join(self.texts[int(i)].split())
                if demo is None or normal in seen:
                    continue
                seen.add(normal)
                found.append(demo)
                if len(found) == k:
                    break
            if len(found) == k or fetch >= self.index.ntotal:
                break
            fetch = min(self.index.ntotal, fetch * 4)
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[(text, k)] = found
        return found
