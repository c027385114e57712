"""llama-cpp-python backend: JSON-schema-constrained greedy decoding of a local GGUF model.

Token log-probabilities come from a logits processor instead of ``logits_all=True`` (which makes
every prompt token keep its logits and was measured 5.7x slower): the processor sees each step's
raw logits row before the grammar masks it, and the token chosen at step i is the last input id
at step i+1. Consecutive calls share the fixed prompt prefix, which llama.cpp keeps in its KV cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from kgrag.errors import KgragError
from kgrag.generator.base import Generation, token_offsets
from kgrag.generator.continuation import ListContinuation, structural_tokens
from kgrag.generator.ref import ModelRef
from kgrag.generator.sampling import GrammarLastGreedy

logger = logging.getLogger(__name__)


class _LogprobRecorder:
    """Logits processor that records log P(chosen token) for every generated token."""

    def __init__(self, prompt_len: int) -> None:
        self.prompt_len = prompt_len
        self.started: float | None = None
        self.logprobs: list[float] = []
        self._pending: np.ndarray | None = None  # log-softmax of the previous step

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.started is None:
            self.started = time.perf_counter()
        if self._pending is not None and len(input_ids) > 0:
            self.logprobs.append(float(self._pending[int(input_ids[-1])]))
        row = scores.astype(np.float64)
        peak = row.max()
        self._pending = row - (peak + np.log(np.exp(row - peak).sum()))
        return scores


class LlamaCppOptions(BaseModel):
    """How llama.cpp runs a model (the part of the settings it needs)."""

    n_ctx: int = 4096
    n_threads: int = Field(default=2, ge=1)
    repeat_penalty: float = 1.1
    continue_threshold: float | None = None  # see kgrag.generator.continuation; None: plain greedy


class LlamaCppGenerator:
    """A GGUF model run by llama-cpp-python, loaded once and reused for every passage."""

    def __init__(
        self,
        model_path: Path,
        identity: str,
        n_ctx: int = 4096,
        n_threads: int = 2,
        repeat_penalty: float = 1.1,
        seed: int = 0,
        lora_path: Path | None = None,
        min_continue: float | None = None,
        grammar_last: bool = True,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - install problem
            raise KgragError("llama-cpp-python is not installed: run the setup command in README.md") from exc
        self._identity = identity
        self.repeat_penalty = repeat_penalty
        self.min_continue = min_continue  # see kgrag.generator.continuation; None: plain greedy
        self.grammar_last = grammar_last  # see kgrag.generator.sampling; False: llama-cpp-python's own chain
        self.full_masks = 0  # steps where the grammar had to mask the whole vocabulary (grammar_last only)
        self.steps = 0
        self._structural: dict[int, bytes] | None = None
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            self.llm = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=seed,
                lora_path=str(lora_path) if lora_path else None,
                verbose=False,
            )

    @property
    def identity(self) -> str:
        return self._identity

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        started = time.perf_counter()
        recorder = _LogprobRecorder(prompt_len=0)
        processors: list[Any] = [recorder]
        continuation = None
        if self.min_continue is not None:
            continuation = self._continuation(json_schema, self.min_continue)
            processors.append(continuation)
        sampler = None
        constraint: dict[str, Any] = {"response_format": {"type": "json_object", "schema": json_schema}}
        repeat_penalty = self.repeat_penalty
        if self.grammar_last:
            sampler = GrammarLastGreedy(
                self.llm._model.vocab, json_schema, self.repeat_penalty, self.llm.last_n_tokens_size
            )
            processors.append(sampler)
            constraint, repeat_penalty = {}, 1.0  # the sampler applies both, in llama.cpp's server's order
        try:
            response = self.llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                temperature=0.0,
                max_tokens=max_tokens,
                repeat_penalty=repeat_penalty,
                logits_processor=processors,
                **constraint,
            )
        finally:
            if sampler is not None:
                sampler.close()
                self.steps += sampler.steps
                self.full_masks += sampler.full_masks
        elapsed = time.perf_counter() - started
        choice = response["choices"][0]  # type: ignore[index]
        text = choice["message"]["content"] or ""
        usage = response["usage"]  # type: ignore[index]
        offsets = self._token_offsets(text, len(recorder.logprobs))
        return Generation(
            text=text,
            token_offsets=offsets,
            token_logprobs=recorder.logprobs[: len(offsets)],
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            prefill_seconds=(recorder.started or time.perf_counter()) - started,
            seconds=elapsed,
            truncated=choice["finish_reason"] == "length",
            continue_ratios=continuation.ratios() if continuation is not None else [],
        )

    def _token_bytes(self, token: int) -> bytes:
        return self.llm.detokenize([token])

    def _continuation(self, json_schema: dict[str, Any], min_continue: float) -> ListContinuation:
        if self._structural is None:
            self._structural = structural_tokens(self.llm.n_vocab(), self._token_bytes)
        max_items = json_schema.get("properties", {}).get("triples", {}).get("maxItems")
        return ListContinuation(self._structural, self._token_bytes, min_continue, max_items)

    def _token_offsets(self, text: str, n_tokens: int) -> list[int]:
        """Character offset in ``text`` where each of the first ``n_tokens`` generated tokens starts."""
        generated = self.llm._input_ids[-n_tokens:] if n_tokens else []  # the tokens just decoded
        return token_offsets(text, [self._token_bytes(int(token)) for token in generated])


class LazyLlamaCpp:
    """A llama.cpp backend that assembles and loads its GGUF on the first generate call, so a
    build whose passages are all cached never pays for loading the model."""

    def __init__(self, ref: ModelRef, options: LlamaCppOptions) -> None:
        ref.check()  # an unknown name or missing file fails here, before any passage is read
        self.ref = ref
        self.options = options
        self._identity = ref.identity
        self._backend: LlamaCppGenerator | None = None

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        if self._backend is None:
            path, lora = self.ref.weights()
            logger.info("loading %s%s (%d threads)", path.name, f" + {lora}" if lora else "", self.options.n_threads)
            self._backend = LlamaCppGenerator(
                path,
                lora_path=lora,
                identity=self._identity,
                n_ctx=self.options.n_ctx,
                n_threads=self.options.n_threads,
                repeat_penalty=self.options.repeat_penalty,
                min_continue=self.options.continue_threshold,
            )
        return self._backend.generate(messages, json_schema, max_tokens)
