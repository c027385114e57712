"""The generator backend interface: constrained text generation with per-token log-probabilities."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)


class Generation(BaseModel):
    """One constrained completion, with the log-probability of each generated token."""

    text: str
    token_offsets: list[int] = Field(default_factory=list)  # character offset of each token in text
    token_logprobs: list[float] = Field(default_factory=list)  # log P of each token (unconstrained model)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefill_seconds: float = 0.0  # time before the first token could be sampled
    seconds: float = 0.0  # whole call
    truncated: bool = False  # stopped by max_tokens before the JSON was complete
    # share of P(continue the list) at each decision after a triple (kgrag.generator.continuation), when measured
    continue_ratios: list[float] = Field(default_factory=list)


class GeneratorBackend(Protocol):
    """A language model that fills a JSON schema. Implementations: llama.cpp in-process (default,
    :mod:`kgrag.generator.llama_cpp`) and any OpenAI-compatible server
    (:mod:`kgrag.generator.openai_compat`). A backend that can serve several requests at once says
    how many with a ``parallelism`` attribute (1 when it has none); ``generate`` is then called from
    that many threads. One that may return output the schema does not allow (a server ignoring
    ``response_format``) sets ``enforces_schema = False``, and the extractor asks it once more."""

    @property
    def identity(self) -> str:
        """Names the exact weights (name + hash), so cached results are tied to them."""
        ...

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        """Greedy completion of a chat constrained to ``json_schema``."""
        ...


def token_offsets(text: str, pieces: Sequence[bytes]) -> list[int]:
    """Character offset in ``text`` where each generated token (its bytes, in order) starts; [] when
    the tokens do not spell the text (a special token, say), so the text goes unscored rather than
    scored wrongly. Chat APIs strip leading whitespace from the text; so does this."""
    offsets: list[int] = []
    consumed = b""
    for piece in pieces:
        offsets.append(len(consumed.decode("utf-8", errors="ignore")))
        consumed += piece
    decoded = consumed.decode("utf-8", errors="ignore")
    shift = len(decoded) - len(decoded.lstrip())
    if not text.startswith(decoded[shift:]):
        logger.debug("token bytes do not match the completion text; dropping token scores")
        return []
    return [max(0, offset - shift) for offset in offsets]
