"""The extractor that build and eval run for a settings object: one model's, or a mixture's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrag.config import Settings
from kgrag.extract.cache import ExtractionCache
from kgrag.extract.ensemble import EnsembleExtractor, PassageExtractor, model_names
from kgrag.extract.extractor import Extractor
from kgrag.generator.base import GeneratorBackend
from kgrag.generator.ref import LazyLlamaCpp, prompt_style
from kgrag.schema import GraphSchema

if TYPE_CHECKING:
    from kgrag.extract.demos import DemoRetriever


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

    def one(model: str, backend: GeneratorBackend | None) -> Extractor:
        member = settings.model_copy(update={"model": model})
        return Extractor(
            schema,
            backend or LazyLlamaCpp(member),
            cache,
            settings.max_triples,
            settings.max_tokens,
            settings.open_relations,
            settings.extraction_fingerprint(),
            demos=demos,
            n_demos=n_demos,
            prompt_style=prompt_style(model),
        )

    models = model_names(settings.model) or [settings.model]
    if backend is not None or len(models) == 1:
        return one(models[0], backend)
    return EnsembleExtractor([one(model, None) for model in models], settings.ensemble_min_prob)


def keep_threshold(settings: Settings, extractor: PassageExtractor) -> float:
    """The P(t|e,D) below which build and eval drop a passage's triple: ``min_triple_prob`` for one
    model; for a mixture its own ``ensemble_min_prob``, which its mean probabilities were made for
    (``min_triple_prob`` on top would drop every triple only one of two models wrote)."""
    return extractor.min_prob if isinstance(extractor, EnsembleExtractor) else settings.min_triple_prob
