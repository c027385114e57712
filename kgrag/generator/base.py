"""The generator backend interface: constrained text generation with per-token log-probabilities."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field


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
    """A local language model that fills a JSON schema. Implementations: llama.cpp (default)."""

    @property
    def identity(self) -> str:
        """Names the exact weights (name + hash), so cached results are tied to them."""
        ...

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        """Greedy completion of a chat constrained to ``json_schema``."""
        ...
