"""Passage → triples: prompt the generator, parse its JSON into pydantic, score each triple.

P(t|e,D) of a triple is the geometric mean of the probabilities of the tokens that spell it
(the length-normalised sequence probability), so long names are not penalised for being long.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from kgrag.extract.cache import ExtractionCache, cache_key
from kgrag.extract.prompts import build_messages, compact_system_prompt, system_prompt
from kgrag.generator.base import Generation, GeneratorBackend
from kgrag.records import ExtractedTriple, Extraction, Passage
from kgrag.schema import TRIPLE_FIELDS, GraphSchema
from kgrag.text import squash

if TYPE_CHECKING:
    from kgrag.extract.demos import DemoRetriever

logger = logging.getLogger(__name__)
# llama.cpp's JSON-schema grammar lets a string hold a raw control character (a newline in a name),
# which strict JSON refuses: read such output as Python's lenient decoder does
_decoder = json.JSONDecoder(strict=False)


def triple_spans(text: str) -> list[tuple[Any, int, int]]:
    """Every complete element of the ``triples`` list with its character span, even when the
    JSON was cut off after them (a truncated output keeps the triples it finished)."""
    marker = text.find('"triples"')
    if marker < 0:
        return []
    pos = text.find("[", marker)
    if pos < 0:
        return []
    pos += 1
    spans: list[tuple[Any, int, int]] = []
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            value, end = _decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        spans.append((value, pos, end))
        pos = end
    return spans


REPAIR_REQUEST = 'Answer with only the JSON object: {"triples": [[head, head_type, relation, tail, tail_type], ...]}.'
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SCORED = (0, 2, 3)  # head, relation, tail: the positions whose tokens make P(t|e,D)


def triple_probability(generation: Generation, start: int, end: int) -> float:
    """P(t|e,D): geometric-mean probability of the tokens that spell the head, relation and tail
    values of the triple at [start, end). Keys, punctuation and types are left out: the grammar
    forces most of them, so they would only dilute the score."""
    if not generation.token_offsets:
        return 1.0  # a backend without token scores
    strings = list(_STRING.finditer(generation.text[start:end]))
    spans = [(start + strings[i].start(1), start + strings[i].end(1)) for i in _SCORED if i < len(strings)]
    logprobs = [
        lp
        for offset, lp in zip(generation.token_offsets, generation.token_logprobs)
        if any(a <= offset < b for a, b in spans)
    ]
    return math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0


def same_triple_key(triple: ExtractedTriple) -> tuple[str, str, str]:
    """Triples with equal keys are one fact written twice: names compared case-folded."""
    return (triple.head.casefold(), triple.relation, triple.tail.casefold())


class Extractor:
    """Runs the generator on passages at most once each, through the extraction cache."""

    def __init__(
        self,
        schema: GraphSchema,
        backend: GeneratorBackend,
        cache: ExtractionCache | None,
        max_triples: int,
        max_tokens: int,
        open_relations: bool = False,
        fingerprint: dict[str, Any] | None = None,
        demos: DemoRetriever | None = None,
        n_demos: int = 4,
        prompt_style: str = "full",
    ) -> None:
        self.schema = schema
        self.backend = backend
        self.cache = cache
        self.max_tokens = max_tokens
        self.model = schema.extraction_model(max_triples, open_relations)
        self.triple_adapter = TypeAdapter(schema.triple_type(open_relations))
        self.json_schema = self.model.model_json_schema()
        # "compact": the short prompt without examples that fine-tuned adapters are trained on
        self.compact = prompt_style == "compact"
        if self.compact:
            self.system = compact_system_prompt(schema, max_triples, open_relations)
        else:
            self.system = system_prompt(schema, max_triples, open_relations)
        # everything that shapes the model's answer, and nothing else (resolution-only schema fields
        # such as `compatible` or `expand` must not invalidate the cache)
        examples = [] if self.compact else schema.examples
        self.fingerprint = [backend.identity, self.json_schema, self.system, examples, fingerprint or {}]
        # retrieved demonstrations replace the schema's examples; the demos a passage gets are part
        # of its cache key (see key), so the fixed fingerprint leaves the schema's examples out
        self.demos = demos
        self.n_demos = n_demos
        if demos is not None:
            self.fingerprint[3] = {"demos": demos.identity, "n_demos": n_demos}
        self._lock = threading.Lock()  # the counters below, when the backend runs several passages at once
        self.calls = 0  # passages actually sent to the model
        self.decode_seconds = 0.0
        self.prefill_seconds = 0.0

    @property
    def identity(self) -> str:
        """The model's name and weights hash (see :func:`~kgrag.generator.ref.model_identity`)."""
        return self.backend.identity

    @property
    def loaded(self) -> bool:
        """False while a lazy backend has not loaded its model yet."""
        return bool(getattr(self.backend, "loaded", True))

    @property
    def parallelism(self) -> int:
        """Requests the backend serves at once (a server's, or the in-process batch decoder's)."""
        return int(getattr(self.backend, "parallelism", 1))

    def examples(self, text: str) -> list[dict[str, Any]] | None:
        """The few-shot examples for a passage: retrieved demos, most similar last (next to the
        passage), or None for the schema's own examples."""
        if self.demos is None:
            return [] if self.compact else None
        return list(reversed(self.demos.nearest(text, self.n_demos)))

    def key(self, passage: Passage) -> str:
        if self.demos is None:
            return cache_key(passage.text, *self.fingerprint)
        return cache_key(passage.text, *self.fingerprint, self.examples(passage.text))

    def is_cached(self, passage: Passage) -> bool:
        return self.cache is not None and self.cache.get(self.key(passage)) is not None

    def extract(self, passage: Passage) -> Extraction:
        return next(self.extract_many([passage]))[1]

    def extract_many(self, passages: Sequence[Passage]) -> Iterator[tuple[Passage, Extraction]]:
        """The extraction of each passage, cached ones first, then the others as the model finishes
        them: ``parallelism`` at a time when the backend serves several requests at once (a server),
        in order otherwise. Each result is in the cache before it is yielded."""
        todo: list[tuple[Passage, str]] = []
        for passage in passages:
            key = self.key(passage)
            if self.cache is not None and (hit := self.cache.get(key)) is not None:
                yield passage, hit.model_copy(update={"passage_id": passage.id})
            else:
                todo.append((passage, key))
        workers = min(self.parallelism, len(todo))
        if workers <= 1:
            for passage, key in todo:
                yield passage, self._keep(key, self._run(passage))
            return
        pool = ThreadPoolExecutor(workers, thread_name_prefix="kgrag-extract")
        finished = False
        try:
            running = {pool.submit(self._run, passage): (passage, key) for passage, key in todo}
            for done in as_completed(running):
                passage, key = running[done]
                yield passage, self._keep(key, done.result())
            finished = True
        finally:  # Ctrl-C or a failed request: drop what has not started, never wait for it
            pool.shutdown(wait=False, cancel_futures=True)
            if not finished and (cancel := getattr(self.backend, "cancel", None)) is not None:
                cancel()  # and end what has (the in-process batch decoder's requests)

    def _keep(self, key: str, extraction: Extraction) -> Extraction:
        if self.cache is not None:
            self.cache.put(key, extraction)
        return extraction

    def _run(self, passage: Passage) -> Extraction:
        started = time.perf_counter()
        messages = build_messages(self.schema, self.system, passage.text, self.examples(passage.text))
        generation = self.backend.generate(messages, self.json_schema, self.max_tokens)
        if not getattr(self.backend, "enforces_schema", True) and self._needs_repair(generation):
            # a server may ignore the schema (in-process decoding cannot): ask once more, then give up
            logger.debug("passage %d: output not valid for the schema; asking once more", passage.id)
            repair = f"That reply is not valid JSON for the required schema. {REPAIR_REQUEST}"
            messages = [
                *messages,
                {"role": "assistant", "content": generation.text},
                {"role": "user", "content": repair},
            ]
            generation = self.backend.generate(messages, self.json_schema, self.max_tokens)
        with self._lock:
            self.calls += 1
            self.decode_seconds += time.perf_counter() - started
            self.prefill_seconds += generation.prefill_seconds
        triples, error = self.parse(generation)
        if error:
            logger.warning("passage %d: %s", passage.id, error)
        return Extraction(
            passage_id=passage.id,
            triples=triples,
            completion_tokens=generation.completion_tokens,
            prompt_tokens=generation.prompt_tokens,
            seconds=generation.seconds,
            error=error,
            scored=bool(generation.token_offsets) or not generation.text,
        )

    def _needs_repair(self, generation: Generation) -> bool:
        if generation.truncated:
            return False
        try:
            self.validate(generation.text)
        except (ValidationError, json.JSONDecodeError):
            return True
        return False

    def validate(self, text: str) -> Any:
        """The output as the extraction model, control characters inside strings allowed (see _decoder)."""
        return self.model.model_validate(_decoder.decode(text))

    def parse(self, generation: Generation) -> tuple[list[ExtractedTriple], str | None]:
        """Schema-valid triples of a generation, and an error message when part of it was invalid."""
        triples: list[ExtractedTriple] = []
        seen: set[tuple[str, ...]] = set()
        invalid = 0
        ratios = generation.continue_ratios
        for index, (value, start, end) in enumerate(triple_spans(generation.text)):
            try:
                item = self.triple_adapter.validate_python(value)
            except ValidationError:
                invalid += 1
                continue
            fields = dict(zip(TRIPLE_FIELDS, item))
            fields["head"], fields["tail"] = squash(fields["head"]), squash(fields["tail"])  # a newline in a name
            p_continue = ratios[index - 1] if 0 < index <= len(ratios) else None
            triple = ExtractedTriple(**fields, prob=triple_probability(generation, start, end), p_continue=p_continue)
            key = same_triple_key(triple)
            if key not in seen:
                seen.add(key)
                triples.append(triple)
        if generation.truncated:
            return triples, f"output cut off at max_tokens; kept {len(triples)} complete triples"
        try:
            self.validate(generation.text)
        except ValidationError as exc:
            return triples, f"invalid model output ({exc.error_count()} errors): {generation.text[:80]!r}"
        except json.JSONDecodeError as exc:
            return triples, f"invalid model output (not JSON: {exc.msg}): {generation.text[:80]!r}"
        if invalid:
            return triples, f"{invalid} invalid triples dropped"
        return triples, None
