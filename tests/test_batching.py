"""Several passages decoded at once in process (kgrag.generator.batching) against the sequential
path, on the tiny real model: one request alone decodes the same tokens with the same
log-probabilities (the same prompt tokens, processors and context parameters); several at once all
finish with valid output through the extractor, in batches of more than one token per decode; a
cancelled batch fails its requests with one error and the decoder serves the next ones."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kgrag.config import Settings
from kgrag.errors import KgragError
from kgrag.extract.extractor import Extractor
from kgrag.extract.factory import make_extractor
from kgrag.extract.prompts import build_messages
from kgrag.generator.llama_cpp import LlamaCppGenerator
from kgrag.generator.ref import ModelRef
from kgrag.ingest import Chunker, load_documents
from kgrag.records import Passage
from kgrag.schema import GraphSchema

pytestmark = pytest.mark.model
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "physics_history"
TINY = "smollm2-135m"


@pytest.fixture(scope="module")
def passages() -> list[Passage]:
    return Chunker(3, 1).chunk(load_documents([CORPUS]))[:6]


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    settings = Settings(model=TINY, n_threads=1, llm_concurrency=1)
    return make_extractor(settings, GraphSchema.load(settings.schema_path), None)  # type: ignore[return-value]


def _generators(model: str, slots: int) -> tuple[LlamaCppGenerator, LlamaCppGenerator]:
    path, lora = ModelRef.parse(model).weights()
    sequential = LlamaCppGenerator(path, model, n_threads=1, lora_path=lora, flash_attn=True)  # as the batch
    batched = LlamaCppGenerator(path, model, n_threads=1, lora_path=lora, parallel=slots)
    assert (sequential.parallelism, batched.parallelism) == (1, slots)
    return sequential, batched


@pytest.fixture(scope="module")
def pair() -> tuple[LlamaCppGenerator, LlamaCppGenerator]:
    return _generators(TINY, 3)


def _messages(extractor: Extractor, passage: Passage) -> list[dict[str, Any]]:
    return build_messages(extractor.schema, extractor.system, passage.text, extractor.examples(passage.text))


@pytest.mark.parametrize(
    ("repeat_penalty", "continue_threshold"), [(1.1, None), (1.0, 0.3)], ids=["penalty", "continue"]
)
def test_one_request_decodes_what_the_sequential_path_decodes(
    extractor: Extractor,
    pair: tuple[LlamaCppGenerator, LlamaCppGenerator],
    passages: list[Passage],
    repeat_penalty: float,
    continue_threshold: float | None,
) -> None:
    sequential, batched = pair
    for generator in pair:
        generator.repeat_penalty, generator.min_continue = repeat_penalty, continue_threshold
    for passage in passages[:3]:
        messages = _messages(extractor, passage)
        expected, got = (g.generate(messages, extractor.json_schema, 96) for g in pair)
        assert got.text == expected.text
        assert batched._prompt_tokens(messages) == list(sequential.llm._input_ids[: expected.prompt_tokens])
        assert got.token_logprobs == expected.token_logprobs
        assert got.token_offsets == expected.token_offsets
        assert got.continue_ratios == expected.continue_ratios
        assert (got.prompt_tokens, got.completion_tokens, got.truncated) == (
            expected.prompt_tokens,
            expected.completion_tokens,
            expected.truncated,
        )
    for generator in pair:
        generator.repeat_penalty, generator.min_continue = 1.1, None


def test_passages_at_once_through_the_extractor(extractor: Extractor, passages: list[Passage]) -> None:
    settings = Settings(model=TINY, n_threads=1, llm_concurrency=3)
    batched = make_extractor(settings, extractor.schema, None)
    assert batched.backend.parallelism == 3  # type: ignore[attr-defined]
    expected = dict((p.id, e) for p, e in extractor.extract_many(passages))
    got = dict((p.id, e) for p, e in batched.extract_many(passages))
    decoder = batched.backend._backend._decoder  # type: ignore[attr-defined]
    assert decoder.batch_tokens > 1.5 * decoder.rounds  # several sequences per decode, not one after another
    assert set(got) == {p.id for p in passages}
    assert all(e.error is None and e.completion_tokens > 0 for e in got.values())
    # the same work: batched arithmetic breaks near ties otherwise (flash attention, sums in another
    # order), so the triples may differ, not the amount written
    written = sum(e.completion_tokens for e in got.values())
    assert 0.5 < written / sum(e.completion_tokens for e in expected.values()) < 2


def test_cancel_fails_what_is_in_flight_and_the_decoder_goes_on(
    extractor: Extractor, pair: tuple[LlamaCppGenerator, LlamaCppGenerator], passages: list[Passage]
) -> None:
    sequential, batched = pair
    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(batched.generate, _messages(extractor, p), extractor.json_schema, 128) for p in passages]
        deadline = time.monotonic() + 60
        while not batched._decoder._active and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)  # cancel once requests are decoding
        batched.cancel()
        outcomes = []
        for future in running:
            try:
                outcomes.append(future.result().text)
            except KgragError as exc:
                outcomes.append(exc)
    assert any(isinstance(o, KgragError) for o in outcomes)
    messages = _messages(extractor, passages[0])
    after = batched.generate(messages, extractor.json_schema, 64)
    assert after.text == sequential.generate(messages, extractor.json_schema, 64).text


def test_a_lora_adapter_applies_in_the_batch_context(extractor: Extractor, passages: list[Passage]) -> None:
    """The decoder's own context gets the adapter: the same tokens and log-probabilities as the
    sequential path with it, which the base model alone does not give."""
    sequential, batched = _generators("qwen2.5-0.5b-conll04", 2)
    path, _ = ModelRef.parse("qwen2.5-0.5b").weights()
    base = LlamaCppGenerator(path, "base", n_threads=1, flash_attn=True)
    messages = _messages(extractor, passages[0])
    expected, got, plain = (g.generate(messages, extractor.json_schema, 32) for g in (sequential, batched, base))
    assert got.text == expected.text and got.token_logprobs == expected.token_logprobs
    assert plain.token_logprobs != expected.token_logprobs
