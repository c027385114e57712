"""Choosing and loading a generator backend; the model is loaded only when a passage needs it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kgrag.config import Settings
from kgrag.extract.generator import Generation, GeneratorBackend

logger = logging.getLogger(__name__)


def model_identity(model: str) -> str:
    """Name + hash of the weights, known without loading them (part of the cache key)."""
    from kgrag.models import REGISTRY

    if model in REGISTRY:
        return f"{model}@{REGISTRY[model].sha256[:12]}"
    path = Path(model)
    stat = path.stat() if path.exists() else None
    return f"{path.name}@{stat.st_size if stat else 'missing'}"


class LazyLlamaCpp:
    """A llama.cpp backend that assembles and loads its GGUF on the first generate call, so a
    build whose passages are all cached never pays for loading the model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._identity = model_identity(settings.model)
        self._backend: GeneratorBackend | None = None

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        if self._backend is None:
            from kgrag.extract.llama_cpp import LlamaCppGenerator
            from kgrag.models import resolve_model

            path = resolve_model(self.settings.model)
            logger.info("loading %s (%d threads)", path.name, self.settings.n_threads)
            self._backend = LlamaCppGenerator(
                path,
                identity=self._identity,
                n_ctx=self.settings.n_ctx,
                n_threads=self.settings.n_threads,
                repeat_penalty=self.settings.repeat_penalty,
            )
        return self._backend.generate(messages, json_schema, max_tokens)
