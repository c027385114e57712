"""The extractor that build and eval run for a settings object: one model's, or a mixture's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kgrag.config import Settings
from kgrag.extract.cache import ExtractionCache
from kgrag.extract.ensemble import EnsembleExtractor, PassageExtractor
from kgrag.extract.extractor import Extractor
from kgrag.generator.base import GeneratorBackend
from kgrag.generator.llama_cpp import LazyLlamaCpp, LlamaCppOptions
from kgrag.generator.openai_compat import OpenAICompatBackend, ServerOptions
from kgrag.generator.ref import ModelRef
from kgrag.schema import GraphSchema

if TYPE_CHECKING:
    from kgrag.extract.demos import DemoRetriever

logger = logging.getLogger(__name__)


def llama_cpp_options(settings: Settings, ref: ModelRef | None = None) -> LlamaCppOptions:
    """What llama.cpp needs of the settings (and, for the passages decoded at once when the settings
    leave it unset, of the model)."""
    return LlamaCppOptions(
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        repeat_penalty=settings.repeat_penalty,
        continue_threshold=settings.continue_threshold,
        parallel=settings.llm_concurrency or (ref.parallel if ref is not None else 1),
    )


def make_backend(ref: ModelRef, settings: Settings) -> GeneratorBackend:
    """The model ``ref`` names: served by ``settings.llm_url`` when it is set (the name is then the
    server's), else loaded in-process by llama.cpp."""
    if settings.llm_url:
        return OpenAICompatBackend(
            ServerOptions(
                url=settings.llm_url,
                model=ref.value,
                concurrency=settings.llm_concurrency,
                timeout_s=settings.llm_timeout_s,
                retries=settings.llm_retries,
                repeat_penalty=settings.repeat_penalty,
            )
        )
    return LazyLlamaCpp(ref, llama_cpp_options(settings, ref))


def warn_if_other_schema(ref: ModelRef, schema: GraphSchema) -> None:
    """An adapter fine-tuned for one schema extracts worse triples for another: say so."""
    if ref.manifest is not None and ref.manifest.schema_fingerprint != schema.fingerprint():
        logger.warning(
            "the adapter %s was trained for schema %r, this run uses %r: expect worse triples",
            ref.value, ref.manifest.schema_name, schema.name,
        )  # fmt: skip


def make_extractor(
    settings: Settings,
    schema: GraphSchema,
    cache: ExtractionCache | None,
    backend: GeneratorBackend | None = None,
    demos: DemoRetriever | None = None,
    n_demos: int = 4,
) -> PassageExtractor:
    """An :class:`Extractor` for ``settings.model``, or an :class:`EnsembleExtractor` of one per
    model when it names several (``a,b``). A given ``backend`` (tests, other runtimes) serves a
    single model."""

    def one(ref: ModelRef, backend: GeneratorBackend | None) -> Extractor:
        if backend is None:
            warn_if_other_schema(ref, schema)
            backend = make_backend(ref, settings)
        return Extractor(
            schema,
            backend,
            cache,
            settings.max_triples,
            settings.max_tokens,
            settings.open_relations,
            settings.extraction_fingerprint(),
            demos=demos,
            n_demos=n_demos,
            prompt_style=ref.prompt_style,
        )

    refs = ModelRef.parse_all(settings.model)
    if backend is not None or len(refs) == 1:
        return one(refs[0], backend)
    return EnsembleExtractor([one(ref, None) for ref in refs], settings.ensemble_min_prob)


def keep_threshold(settings: Settings, extractor: PassageExtractor) -> float:
    """The P(t|e,D) below which build and eval drop a passage's triple: ``min_triple_prob`` for one
    model; for a mixture its own ``ensemble_min_prob``, which its mean probabilities were made for
    (``min_triple_prob`` on top would drop every triple only one of two models wrote)."""
    return extractor.min_prob if isinstance(extractor, EnsembleExtractor) else settings.min_triple_prob
