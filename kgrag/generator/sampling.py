"""Greedy, grammar-constrained decoding with the grammar checked last, as llama.cpp's server does.

llama-cpp-python's sampler chain applies the JSON-schema grammar to every token of the vocabulary
(151,936 for Qwen2.5) at every step, before the greedy pick. llama.cpp's own server
(``common_sampler_sample``) picks first and asks the grammar about that one token; only when the
grammar rejects it does it mask the whole vocabulary and pick again. Both choose the same token: the
likeliest token the grammar allows. :class:`GrammarLastGreedy` is a logits processor that does the
server's order in process, so the outputs stay identical to llama-cpp-python's chain (same penalty
arithmetic in float32, same grammar, same greedy tie-break: the lowest token id) while most steps
check a single token.

The processor is the last of the logits processors, and the chain it runs in must have no grammar
and a neutral repeat penalty (1.0): the penalty is applied here, before the pick, the way llama.cpp's
penalties sampler does it (over the last ``last_n`` generated tokens; a logit above zero is divided
by the penalty, one at or below zero multiplied).
"""

from __future__ import annotations

import ctypes
import json
import logging
from functools import lru_cache
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.float32), ("p", np.float32)])


@lru_cache(maxsize=8)
def _grammar_text(schema_json: str) -> tuple[str, str]:
    """GBNF text and root rule for a JSON schema, converted the way llama-cpp-python's
    ``response_format`` does (including its fallback to any JSON when the schema cannot be converted)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    try:
        grammar = LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as exc:  # llama-cpp-python falls back on any failure; so do we, saying so
        logger.warning("the output schema could not be turned into a grammar (%s); any JSON is allowed", exc)
        grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    return grammar._grammar, grammar._root


class GeneratedTokens:
    """What a logits processor needs of ``input_ids``, which llama-cpp-python passes whole (prompt
    first) at every step: the tokens generated so far, and those new since the previous step."""

    def __init__(self) -> None:
        self.prompt_len: int | None = None
        self.seen = 0

    def new(self, input_ids: np.ndarray) -> np.ndarray:
        """The tokens generated since the previous call (on the first call, the prompt's length is noted)."""
        if self.prompt_len is None:
            self.prompt_len = len(input_ids)
        fresh = input_ids[self.prompt_len + self.seen :]
        self.seen += len(fresh)
        return fresh

    def all(self, input_ids: np.ndarray) -> np.ndarray:
        return input_ids[self.prompt_len :]


class GrammarLastGreedy:
    """A logits processor for one generation (see the module doc). Call :meth:`close` when done."""

    def __init__(self, vocab: Any, json_schema: dict[str, Any], repeat_penalty: float, last_n: int = 64) -> None:
        import llama_cpp

        self._lib = llama_cpp
        text, root = _grammar_text(json.dumps(json_schema))
        self._grammar = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), root.encode("utf-8"))
        if not self._grammar:
            raise ValueError("llama.cpp could not compile the grammar of this JSON schema")
        self.penalty = np.float32(repeat_penalty)
        self.last_n = last_n  # the penalty's window: this many generated tokens (0: no penalty)
        self.generated = GeneratedTokens()
        self.steps = 0
        self.full_masks = 0  # steps where the grammar rejected the likeliest token
        self._one = llama_cpp.llama_token_data()
        self._one_array = llama_cpp.llama_token_data_array(ctypes.pointer(self._one), 1, -1, False)
        self._all: tuple[Any, np.ndarray] | None = None  # a whole-vocabulary llama_token_data array, made on first need

    def close(self) -> None:
        if self._grammar:
            self._lib.llama_sampler_free(self._grammar)
            self._grammar = None

    def _allows(self, token: int, logit: float) -> bool:
        self._one.id, self._one.logit, self._one.p = token, logit, 0.0
        self._one_array.size, self._one_array.selected, self._one_array.sorted = 1, -1, False
        self._lib.llama_sampler_apply(self._grammar, ctypes.byref(self._one_array))
        return bool(np.isfinite(self._one.logit))

    def _mask(self, scores: np.ndarray) -> None:
        """Set every token the grammar does not allow to -inf (the whole-vocabulary pass)."""
        if self._all is None:
            data = (self._lib.llama_token_data * len(scores))()
            view = np.frombuffer(data, dtype=_TOKEN_DATA)
            view["id"] = np.arange(len(scores), dtype=np.intc)
            self._all = (data, view)
        data, view = self._all
        view["logit"] = scores
        view["p"] = 0.0
        array = self._lib.llama_token_data_array(data, len(scores), -1, False)
        self._lib.llama_sampler_apply(self._grammar, ctypes.byref(array))
        scores[np.isneginf(view["logit"])] = -np.inf

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for token in self.generated.new(input_ids):
            self._lib.llama_sampler_accept(self._grammar, int(token))
        if self.last_n > 0 and self.penalty != 1.0:
            # llama.cpp's penalties sampler: each distinct token among the last last_n generated ones
            ids = np.unique(self.generated.all(input_ids)[-self.last_n :]).astype(np.intp)
            picked = scores[ids]
            scores[ids] = np.where(picked <= 0, picked * self.penalty, picked / self.penalty)
        self.steps += 1
        best = int(np.argmax(scores))
        if not self._allows(best, float(scores[best])):
            self.full_masks += 1
            self._mask(scores)
        return scores
