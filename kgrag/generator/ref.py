"""Choosing and loading a generator backend; the model is loaded only when a passage needs it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kgrag.config import Settings
from kgrag.generator.base import Generation, GeneratorBackend

logger = logging.getLogger(__name__)


def model_identity(model: str) -> str:
    """Name + hash of the weights, known without loading them (part of the cache key)."""
    from kgrag.generator.adapters import is_adapter_dir, read_manifest
    from kgrag.generator.registry import REGISTRY

    if is_adapter_dir(model):
        manifest = read_manifest(model)
        return f"{model_identity(manifest.base_model)}+lora:{manifest.name}@{manifest.adapter_sha256[:12]}"
    if model in REGISTRY:
        return f"{model}@{REGISTRY[model].sha256[:12]}"
    path = Path(model)
    stat = path.stat() if path.exists() else None
    return f"{path.name}@{stat.st_size if stat else 'missing'}"


def prompt_style(model: str) -> str:
    """The extractor prompt a model expects: "full" (instructions, descriptions, few-shot examples),
    or what a fine-tuned adapter's manifest says it was trained with."""
    from kgrag.generator.adapters import is_adapter_dir, read_manifest

    return read_manifest(model).prompt_style if is_adapter_dir(model) else "full"


def _warn_if_other_schema(fingerprint: str, name: str, settings: Settings) -> None:
    from kgrag.schema import GraphSchema

    schema = GraphSchema.load(settings.schema_path)
    if schema.fingerprint() != fingerprint:
        logger.warning(
            "the adapter was trained for schema %r, this run uses %r (%s): expect worse triples",
            name, schema.name, settings.schema_path,
        )  # fmt: skip


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
            from kgrag.generator.adapters import is_adapter_dir, resolve_adapter
            from kgrag.generator.llama_cpp import LlamaCppGenerator
            from kgrag.generator.registry import resolve_model

            lora: Path | None = None
            if is_adapter_dir(self.settings.model):
                adapter = resolve_adapter(self.settings.model)
                path, lora = adapter.base_path, adapter.lora_path
                _warn_if_other_schema(adapter.manifest.schema_fingerprint, adapter.manifest.schema_name, self.settings)
            else:
                path = resolve_model(self.settings.model)
            logger.info("loading %s%s (%d threads)", path.name, f" + {lora}" if lora else "", self.settings.n_threads)
            self._backend = LlamaCppGenerator(
                path,
                lora_path=lora,
                identity=self._identity,
                n_ctx=self.settings.n_ctx,
                n_threads=self.settings.n_threads,
                repeat_penalty=self.settings.repeat_penalty,
                min_continue=self.settings.continue_threshold,
            )
        return self._backend.generate(messages, json_schema, max_tokens)
