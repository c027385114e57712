"""Greedy decoding with the grammar checked last (kgrag.generator.sampling) against llama-cpp-python's
own sampler chain, on the tiny real model: the same tokens and the same token log-probabilities, with
and without a repeat penalty and with the list-continuation processor, while most steps check one
token against the grammar instead of the whole vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kgrag.config import Settings
from kgrag.extract.extractor import Extractor
from kgrag.extract.factory import make_extractor
from kgrag.extract.prompts import build_messages
from kgrag.ingest import Chunker, load_documents
from kgrag.schema import GraphSchema

pytestmark = pytest.mark.model
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "physics_history"


@pytest.fixture(scope="module")
def pair() -> tuple[Extractor, Any, Any]:
    """One extractor for its prompts, and two generators of the tiny model, one per way of sampling.
    Each sees the same calls in the same order, so their KV caches hold the same numbers."""
    settings = Settings(model="smollm2-135m", n_threads=1)
    schema = GraphSchema.load(settings.schema_path)
    extractors = [make_extractor(settings, schema, None) for _ in range(2)]
    for extractor in extractors:
        extractor.backend.generate([{"role": "user", "content": "Hi"}], extractor.json_schema, 1)  # load
    chain, last = (extractor.backend._backend for extractor in extractors)  # type: ignore[attr-defined]
    chain.grammar_last = False
    return extractors[0], chain, last


@pytest.mark.parametrize(
    ("repeat_penalty", "continue_threshold"),
    [(1.1, None), (1.0, None), (1.1, 0.3)],
    ids=["penalty", "plain", "continue"],
)
def test_grammar_last_decodes_what_the_chain_decodes(
    pair: tuple[Extractor, Any, Any], repeat_penalty: float, continue_threshold: float | None
) -> None:
    extractor, chain, last = pair
    steps, masks = last.steps, last.full_masks
    for generator in (chain, last):
        generator.repeat_penalty, generator.min_continue = repeat_penalty, continue_threshold
    for passage in Chunker(3, 1).chunk(load_documents([CORPUS]))[:3]:
        messages = build_messages(extractor.schema, extractor.system, passage.text, extractor.examples(passage.text))
        expected, got = (g.generate(messages, extractor.json_schema, 96) for g in (chain, last))
        assert got.text == expected.text
        assert got.token_logprobs == expected.token_logprobs
        assert got.continue_ratios == expected.continue_ratios
        assert got.truncated == expected.truncated
    assert last.steps - steps > 50
    assert 0 < last.full_masks - masks < last.steps - steps  # both branches ran: one-token checks and full masks
