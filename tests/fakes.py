"""Test doubles: a generator backend that answers from a table instead of running a model."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kgrag.generator.base import Generation

SCHEMAS = Path(__file__).resolve().parents[1] / "kgrag" / "schemas"
EMPTY = '{"triples": []}'
CHARS_PER_TOKEN = 4


def triples_json(*triples: Sequence[str]) -> str:
    """The JSON a model would write for these ``[head, head_type, relation, tail, tail_type]`` rows."""
    return json.dumps({"triples": [list(t) for t in triples]}, ensure_ascii=False)


def generation(text: str, logprob: float = -0.1, truncated: bool = False) -> Generation:
    """A ``Generation`` of ``text`` with one "token" per 4 characters, each of log-probability ``logprob``."""
    offsets = list(range(0, len(text), CHARS_PER_TOKEN))
    return Generation(
        text=text,
        token_offsets=offsets,
        token_logprobs=[logprob] * len(offsets),
        prompt_tokens=100,
        completion_tokens=len(offsets),
        prefill_seconds=0.001,
        seconds=0.002,
        truncated=truncated,
    )


class FakeGenerator:
    """A ``GeneratorBackend`` returning canned JSON chosen by the passage text.

    ``outputs`` maps a substring of the last user message (the passage) to the output string; the
    first key found (in insertion order) wins, otherwise ``default`` is returned. ``interrupt_on``
    makes the N-th call (1-based) raise ``KeyboardInterrupt``, as if the user pressed Ctrl-C.
    """

    def __init__(
        self,
        outputs: Mapping[str, str] | None = None,
        *,
        default: str = EMPTY,
        identity: str = "fake-model@0",
        logprob: float = -0.1,
        interrupt_on: int | None = None,
    ) -> None:
        self.outputs = dict(outputs or {})
        self.default = default
        self._identity = identity
        self.logprob = logprob
        self.interrupt_on = interrupt_on
        self.calls = 0  # generate() calls, including one that raised
        self.passages: list[str] = []  # the last user message of every call that returned
        self.schemas: list[dict[str, Any]] = []
        self.prompts: list[list[dict[str, str]]] = []  # the full messages of every call that returned

    @property
    def identity(self) -> str:
        return self._identity

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        self.calls += 1
        if self.interrupt_on is not None and self.calls == self.interrupt_on:
            raise KeyboardInterrupt
        last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        self.passages.append(last_user)
        self.schemas.append(json_schema)
        self.prompts.append(messages)
        text = next((out for key, out in self.outputs.items() if key in last_user), self.default)
        return generation(text, self.logprob)


def cached_extractions(out: Path) -> int:
    """How many extractions a build directory's cache holds (0 while it has none), read without
    taking part in the build's writes."""
    import sqlite3

    path = out / "cache.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM extractions").fetchone()[0])
    except sqlite3.Error:
        return 0
