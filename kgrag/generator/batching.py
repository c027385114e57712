"""Several passages decoded at once by one llama.cpp context (continuous batching, in process).

One ``llama_decode`` reads the weights once for every token in its batch: on this project's 2-core
machine, with the 1,800-token extraction prompt in the KV cache, one token per sequence for 8
sequences costs ~4.5x one token for one (0.5B model). A :class:`BatchDecoder` owns one llama.cpp
context with a sequence per slot and one thread that runs rounds: each round puts into one batch the
next token of every slot that is decoding and the prompt tokens of the slots being filled, decodes
it, and runs each decoding slot's logits processors on its row, then picks greedily, as
llama-cpp-python does for one sequence (the same processors: log-probabilities,
:class:`~kgrag.generator.sampling.GrammarLastGreedy` with the request's own grammar state, the list
continuation). A finished slot takes the next waiting request.

The prompt prefix that every request shares (system prompt and examples) is evaluated once: sequence
0 keeps it, and a new request's sequence starts from its KV cells (``llama_memory_seq_cp`` shares
them, it copies nothing), so only the passage is filled per request. Sequence 0 starts as the first
request's whole prompt and is cut back to what the next prompts share with it; requests wait until
it is there, so the first round does not fill the same prefix once per slot.

A request decoded alone gives the sequential path's tokens and log-probabilities exactly (same
prompt tokens, context parameters and processors: ``tests/test_batching.py``). Decoded beside others
its logits move in the last bits (llama.cpp's kernels sum a batch of rows in another order), so near
ties can break the other way; README "Benchmarks" has the measured rates.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgrag.errors import KgragError

logger = logging.getLogger(__name__)

LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Decoded:
    """What one request produced: its tokens (without the end-of-generation token), and whether
    max_tokens cut it off."""

    tokens: list[int]
    truncated: bool


@dataclass
class _Request:
    prompt: list[int]
    processors: Sequence[LogitsProcessor]
    max_tokens: int
    future: Future[Decoded]
    seq: int = -1
    filled: int = 0  # prompt tokens in the KV cache (shared prefix included)
    generated: list[int] = field(default_factory=list)  # the last one is not in the KV cache yet

    @property
    def filling(self) -> bool:
        return self.filled < len(self.prompt)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class BatchDecoder:
    """Greedy decoding of up to ``slots`` requests at once on a new context of ``llm``'s model
    (with its LoRA adapter, if it has one). :meth:`submit` may be called from any thread."""

    def __init__(self, llm: Any, slots: int, n_ctx: int, n_threads: int, n_batch: int = 512) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaContext

        self._lib = llama_cpp
        self.slots = slots
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        # the sequential context's parameters (flash attention, RoPE, ...), so both compute alike
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = n_ctx * slots  # each request may use n_ctx tokens, as in the sequential path
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = slots + 1  # sequence 0 holds the shared prefix
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = True  # one buffer: the slots share the prefix's cells (measured faster than a stream each)
        params.no_perf = True
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # llama.cpp's notes
            self._context = LlamaContext(model=llm._model, params=params, verbose=False)
        self._ctx = self._context.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        if llm._lora_adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
            scales = (ctypes.c_float * 1)(llm.lora_scale)
            if llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales):
                raise KgragError(f"llama.cpp could not apply the LoRA adapter {llm.lora_path}")
        self._vocab = llm._model.vocab
        self._n_vocab = llm.n_vocab()
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._prefix: list[int] = []  # the tokens sequence 0 holds
        self._queue: queue.Queue[_Request | str | None] = queue.Queue()  # str: cancel, None: close
        self._waiting: list[_Request] = []
        self._active: list[_Request] = []
        self.rounds = 0
        self.batch_tokens = 0  # tokens decoded over all rounds (prompt and generated)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kgrag-batch-decoder", daemon=True)
        self._thread.start()
        _OPEN.add(self)

    def submit(self, prompt: list[int], processors: Sequence[LogitsProcessor], max_tokens: int) -> Future[Decoded]:
        """Queue a request; its future holds the tokens (max_tokens is cut to what the slot's
        n_ctx leaves, as llama-cpp-python cuts it)."""
        if not prompt or len(prompt) >= self.n_ctx:
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {self.n_ctx}")
        future: Future[Decoded] = Future()
        self._queue.put(_Request(prompt, processors, min(max_tokens, self.n_ctx - len(prompt)), future))
        return future

    def cancel(self, reason: str = "the build stopped") -> None:
        """Fail every request not finished yet (a build stopped by Ctrl-C or by another failure)."""
        self._queue.put(reason)

    def close(self) -> None:
        """Fail what is not finished, end the thread, free the context (at exit at the latest: a
        decoding thread left running while the model is freed can crash the process on its way out)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=60)
        if not self._thread.is_alive():
            self._lib.llama_batch_free(self._batch)
            self._context.close()

    # the decoding thread

    def _run(self) -> None:
        free = list(range(1, self.slots + 1))
        while True:
            stop = self._take_new(block=not self._active)
            if stop:
                self._fail_all(KgragError("the in-process decoder was closed"))
                return
            self._release_done(free)
            while free and self._waiting and self._may_admit():
                request = self._waiting.pop(0)
                if request.future.set_running_or_notify_cancel():
                    self._admit(request, free.pop(0))
            if not self._active:
                continue
            try:
                self._round()
            except Exception as exc:  # a failed decode ends every request in it, never the thread
                logger.debug("batch decode failed", exc_info=True)
                self._fail_all(exc, waiting=False)
            self._release_done(free)

    def _release_done(self, free: list[int]) -> None:
        for request in [r for r in self._active if r.future.done()]:
            self._active.remove(request)
            self._lib.llama_memory_seq_rm(self._memory, request.seq, -1, -1)
            free.append(request.seq)

    def _take_new(self, block: bool) -> bool:
        """Move submitted requests to the waiting list; True when asked to stop."""
        try:
            item = self._queue.get(block=block)
            while True:
                if item is None:
                    return True
                if isinstance(item, str):
                    self._fail_all(KgragError(item))
                else:
                    self._waiting.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            return False

    def _fail_all(self, exc: BaseException, waiting: bool = True) -> None:
        for request in [*self._active, *(self._waiting if waiting else [])]:
            if not request.future.done():
                request.future.set_exception(exc)
        if waiting:
            self._waiting.clear()

    def _may_admit(self) -> bool:
        """Wait for the first request's prompt to be in sequence 0 before filling others."""
        return bool(self._prefix) or not any(r.filling for r in self._active)

    def _admit(self, request: _Request, seq: int) -> None:
        shared = min(_common_prefix(request.prompt, self._prefix), len(request.prompt) - 1)
        if shared < len(self._prefix):
            self._lib.llama_memory_seq_rm(self._memory, 0, shared, -1)
            del self._prefix[shared:]
        if shared:
            self._copy(0, seq, shared)
        request.seq, request.filled = seq, shared
        self._active.append(request)

    def _copy(self, source: int, target: int, end: int) -> None:
        """Give sequence ``target`` the cells of positions [0, end) of ``source`` (shared, not copied)."""
        self._lib.llama_memory_seq_cp(self._memory, source, target, 0, end)

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        batch, i = self._batch, self._batch.n_tokens
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, logits
        batch.seq_id[i][0] = seq
        batch.n_tokens = i + 1
        return i

    def _round(self) -> None:
        self._batch.n_tokens = 0
        rows: list[tuple[_Request, int]] = []
        for request in self._active:  # one token for every decoding slot first
            if request.generated:
                pos = len(request.prompt) + len(request.generated) - 1
                rows.append((request, self._add(request.generated[-1], pos, request.seq, True)))
        filled: list[_Request] = []
        for request in self._active:  # then as much prompt as the batch holds
            room = self.n_batch - self._batch.n_tokens
            if not request.filling or room <= 0:
                continue
            end = min(len(request.prompt), request.filled + room)
            for pos in range(request.filled, end):
                index = self._add(request.prompt[pos], pos, request.seq, pos == len(request.prompt) - 1)
            request.filled = end
            if end == len(request.prompt):
                rows.append((request, index))
                filled.append(request)
        status = self._lib.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise KgragError(f"llama.cpp could not decode a batch of {self._batch.n_tokens} tokens (status {status})")
        self.rounds += 1
        self.batch_tokens += self._batch.n_tokens
        for request in filled:
            if not self._prefix:  # the first prompt in: sequence 0 keeps it for the next requests
                self._copy(request.seq, 0, len(request.prompt))
                self._prefix = list(request.prompt)
        for request, index in rows:
            try:
                self._step(request, index)
            except Exception as exc:
                request.future.set_exception(exc)

    def _step(self, request: _Request, index: int) -> None:
        """Run the request's processors on its row and pick its next token."""
        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        scores = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).copy()
        input_ids = np.asarray(request.prompt + request.generated, dtype=np.intc)
        for processor in request.processors:
            scores = processor(input_ids, scores)
        token = int(np.argmax(scores))
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            request.future.set_result(Decoded(request.generated, False))
            return
        request.generated.append(token)
        if len(request.generated) >= request.max_tokens:
            request.future.set_result(Decoded(request.generated, True))


_OPEN: weakref.WeakSet[BatchDecoder] = weakref.WeakSet()  # each running thread keeps its decoder alive


@atexit.register
def _close_all() -> None:
    for decoder in list(_OPEN):
        decoder.close()
