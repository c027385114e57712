"""llama-cpp-python backend: JSON-schema-constrained greedy decoding of a local GGUF model.

Token log-probabilities come from a logits processor instead of ``logits_all=True`` (which makes
every prompt token keep its logits and was measured 5.7x slower): the processor sees each step's
raw logits row before the grammar masks it, and the token chosen at step i is the last input id
at step i+1. Consecutive calls share the fixed prompt prefix, which llama.cpp keeps in its KV cache.

With ``parallel`` above 1, requests go to a :class:`~kgrag.generator.batching.BatchDecoder`, which
decodes that many passages in one batch (same processors, same greedy pick), and ``generate`` may be
called from that many threads at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from kgrag.errors import KgragError
from kgrag.generator.base import Generation, token_offsets
from kgrag.generator.batching import BatchDecoder
from kgrag.generator.continuation import ListContinuation, structural_tokens
from kgrag.generator.ref import ModelRef
from kgrag.generator.sampling import GrammarLastGreedy

logger = logging.getLogger(__name__)


class _LogprobRecorder:
    """Logits processor that records log P(chosen token) for every generated token."""

    def __init__(self) -> None:
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


class _Run:
    """The logits processors of one generation (log-probabilities, the list continuation when
    asked for, the grammar-last sampler), and the :class:`Generation` made of its tokens."""

    def __init__(self, owner: LlamaCppGenerator, json_schema: dict[str, Any], grammar_last: bool) -> None:
        self.owner = owner
        self.started = time.perf_counter()
        self.recorder = _LogprobRecorder()
        self.continuation: ListContinuation | None = None
        if owner.min_continue is not None:
            self.continuation = owner._continuation(json_schema, owner.min_continue)
        self.sampler: GrammarLastGreedy | None = None
        if grammar_last:
            vocab = owner.llm._model.vocab
            self.sampler = GrammarLastGreedy(vocab, json_schema, owner.repeat_penalty, owner.llm.last_n_tokens_size)
        self.processors: list[Any] = [p for p in (self.recorder, self.continuation, self.sampler) if p is not None]

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.close()
            self.owner.count_steps(self.sampler.steps, self.sampler.full_masks)

    def generation(
        self, text: str, tokens: Any, prompt_tokens: int, completion_tokens: int, truncated: bool
    ) -> Generation:
        """``tokens``: the generated tokens the recorder scored (all but a last end-of-generation one)."""
        offsets = self.owner._token_offsets(text, tokens)
        return Generation(
            text=text,
            token_offsets=offsets,
            token_logprobs=self.recorder.logprobs[: len(offsets)],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            prefill_seconds=(self.recorder.started or time.perf_counter()) - self.started,
            seconds=time.perf_counter() - self.started,
            truncated=truncated,
            continue_ratios=self.continuation.ratios() if self.continuation is not None else [],
        )


class LlamaCppOptions(BaseModel):
    """How llama.cpp runs a model (the part of the settings it needs)."""

    n_ctx: int = 4096
    n_threads: int = Field(default=2, ge=1)
    repeat_penalty: float = 1.1
    continue_threshold: float | None = None  # see kgrag.generator.continuation; None: plain greedy
    parallel: int = Field(default=1, ge=1)  # passages decoded at once (kgrag.generator.batching)
    # llama.cpp's flash attention; None: on when decoding several passages at once, where it pays (README
    # "Benchmarks"), off for one at a time, where it does not and would move outputs off the path before
    flash_attn: bool | None = None


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
        parallel: int = 1,
        flash_attn: bool | None = None,
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
        self._lock = threading.Lock()  # one sequential generation at a time
        self._count_lock = threading.Lock()
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            self.llm = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx if parallel == 1 else 256,  # the batch decoder has its own context
                n_threads=n_threads,
                n_threads_batch=n_threads,
                flash_attn=parallel > 1 if flash_attn is None else flash_attn,
                seed=seed,
                lora_path=str(lora_path) if lora_path else None,
                verbose=False,
            )
        self._decoder: BatchDecoder | None = None
        if parallel > 1:
            if self.llm.chat_format != "chat_template.default":
                logger.warning("%s has no chat template of its own: decoding one passage at a time", model_path.name)
            else:
                self._formatter = self._chat_formatter()
                self._decoder = BatchDecoder(self.llm, parallel, n_ctx, n_threads)
        self.parallelism = self._decoder.slots if self._decoder is not None else 1

    @property
    def identity(self) -> str:
        return self._identity

    def count_steps(self, steps: int, full_masks: int) -> None:
        with self._count_lock:
            self.steps += steps
            self.full_masks += full_masks

    def cancel(self) -> None:
        """Drop the requests the batch decoder has not finished (the caller stopped)."""
        if self._decoder is not None:
            self._decoder.cancel()

    def close(self) -> None:
        """End the batch decoder's thread and free its context (before the model goes)."""
        if self._decoder is not None:
            self._decoder.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        if self._decoder is not None:
            return self._generate_batched(messages, json_schema, max_tokens)
        with self._lock:
            return self._generate(messages, json_schema, max_tokens)

    def _generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        run = _Run(self, json_schema, self.grammar_last)
        constraint: dict[str, Any] = {"response_format": {"type": "json_object", "schema": json_schema}}
        repeat_penalty = self.repeat_penalty
        if run.sampler is not None:
            constraint, repeat_penalty = {}, 1.0  # the sampler applies both, in llama.cpp's server's order
        try:
            response = self.llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                temperature=0.0,
                max_tokens=max_tokens,
                repeat_penalty=repeat_penalty,
                logits_processor=run.processors,
                **constraint,
            )
        finally:
            run.close()
        choice = response["choices"][0]  # type: ignore[index]
        usage = response["usage"]  # type: ignore[index]
        n_scored = len(run.recorder.logprobs)
        return run.generation(
            text=choice["message"]["content"] or "",
            tokens=self.llm._input_ids[-n_scored:] if n_scored else [],
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            truncated=choice["finish_reason"] == "length",
        )

    def _generate_batched(
        self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int
    ) -> Generation:
        """The same generation through the batch decoder: the chat prompt as llama-cpp-python
        formats it, the grammar checked last, the same processors in the same order."""
        assert self._decoder is not None
        run = _Run(self, json_schema, grammar_last=True)
        prompt = self._prompt_tokens(messages)
        decoded = self._decoder.submit(prompt, run.processors, max_tokens).result()
        run.close()  # not on an exception: the decoder may still hold the grammar then
        return run.generation(
            text=self.llm.detokenize(decoded.tokens).decode("utf-8", errors="ignore"),
            tokens=decoded.tokens[: len(run.recorder.logprobs)],
            prompt_tokens=len(prompt),
            completion_tokens=len(decoded.tokens),
            truncated=decoded.truncated,
        )

    def _chat_formatter(self) -> Any:
        """The formatter ``Llama`` builds for the GGUF's chat template (it keeps only the completion
        handler wrapped around it, so it is built again here with the same arguments)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        return Jinja2ChatFormatter(
            template=self.llm.metadata["tokenizer.chat_template"],
            eos_token=self.llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.llm._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt tokens ``create_chat_completion`` evaluates for these messages (the GGUF's
        chat template, formatted by llama-cpp-python's own Jinja formatter)."""
        result = self._formatter(messages=messages)
        return self.llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def _token_bytes(self, token: int) -> bytes:
        return self.llm.detokenize([token])

    def _continuation(self, json_schema: dict[str, Any], min_continue: float) -> ListContinuation:
        if self._structural is None:
            self._structural = structural_tokens(self.llm.n_vocab(), self._token_bytes)
        max_items = json_schema.get("properties", {}).get("triples", {}).get("maxItems")
        return ListContinuation(self._structural, self._token_bytes, min_continue, max_items)

    def _token_offsets(self, text: str, generated: Any) -> list[int]:
        """Character offset in ``text`` where each of these generated tokens starts."""
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
        self.parallelism = options.parallel  # before loading: the extractor asks first

    @property
    def identity(self) -> str:
        return self._identity

    def cancel(self) -> None:
        if self._backend is not None:
            self._backend.cancel()

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
                parallel=self.options.parallel,
                flash_attn=self.options.flash_attn,
            )
            self.parallelism = self._backend.parallelism
        return self._backend.generate(messages, json_schema, max_tokens)
