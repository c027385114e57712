"""One settings object that the CLI, the Python API, a YAML file and ``KGRAG_*`` variables fill."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from kgrag.errors import KgragError

PROMPT_VERSION = "extract-v3"
DEFAULT_MODEL = "qwen2.5-1.5b"  # by measured quality; see README "Models"


M = TypeVar("M", bound=BaseModel)


def settings_from(cls: type[M], yaml_path: Path | None, overrides: dict[str, Any]) -> M:
    """A settings model from an optional YAML mapping, then ``overrides`` (None values are ignored);
    any problem is one :class:`KgragError` line naming the setting."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        try:
            loaded = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise KgragError(f"cannot read config {yaml_path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise KgragError(f"config {yaml_path}: expected a mapping of settings")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise KgragError(f"invalid setting {where}: {first['msg']}") from exc


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(window_s: float = 0.2) -> float:
    """How many cores other work keeps busy right now: sampled over ``window_s`` from /proc/stat,
    falling back to the 1-minute load average (which lags: a finished job still counts for minutes)."""
    cores = os.cpu_count() or 1
    first = _cpu_times()
    if first is not None:
        time.sleep(window_s)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            return cores * (second[0] - first[0]) / (second[1] - first[1])
    return os.getloadavg()[0]


_threads_sample: tuple[float, int] | None = None  # (monotonic time, threads) of the last sample
_SAMPLE_REUSE_S = 2.0


def default_threads() -> int:
    """Threads for the generator: the cores not already busy. llama.cpp's threads spin in lock-step,
    so one busy core slows two threads far more than it slows one (measured: 0.35 vs 22 tokens/s).
    A sample is reused for a few seconds, so building several Settings does not sleep each time."""
    global _threads_sample
    now = time.monotonic()
    if _threads_sample is not None and now - _threads_sample[0] < _SAMPLE_REUSE_S:
        return _threads_sample[1]
    threads = max(1, len(os.sched_getaffinity(0)) - int(busy_cores() + 0.5))
    _threads_sample = (time.monotonic(), threads)
    return threads


class Settings(BaseSettings):
    """Every knob of a build. Precedence: explicit arguments > environment (KGRAG_*) > YAML > defaults."""

    model_config = SettingsConfigDict(env_prefix="KGRAG_", extra="forbid")

    # schema
    schema_path: Path = Field(  # resolved when loaded (kgrag.schema.resolve_schema), so a manifest keeps the name
        default=Path("default"),
        description="graph schema: a bundled name (kgrag schemas) or a YAML/JSON file",
    )
    open_relations: bool = Field(default=False, description="allow relation names outside the schema")

    # chunking
    chunk_sentences: int = Field(default=3, ge=1, description="sentences per passage")
    chunk_overlap: int = Field(default=1, ge=0, description="sentences shared by consecutive passages")

    # retrieval
    top_k: int = Field(default=8, ge=1, description="passages retrieved per entity")
    retrieval_temperature: float = Field(default=0.05, gt=0, description="softmax temperature for P(D|e)")
    embed_batch_size: int = Field(default=64, ge=1)

    # generation
    model: str = Field(
        default=DEFAULT_MODEL,
        description="bundled model or adapter name, a .gguf path or an adapter folder; several, "
        "comma-separated, mix their triples (see ensemble_min_prob)",
    )
    llm_url: str | None = Field(
        default=None,
        description="an OpenAI-compatible model server (llama.cpp's server, Ollama, vLLM, an API), e.g. "
        "http://127.0.0.1:8090/v1; model then names a model it serves (key: KGRAG_LLM_API_KEY or OPENAI_API_KEY)",
    )
    llm_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="requests in flight to llm_url (unset: the server's slots, else 4); without llm_url, "
        "passages the in-process model decodes at once (unset: the model's measured best)",
    )
    llm_timeout_s: float = Field(default=120.0, gt=0, description="seconds one request to llm_url may take")
    llm_retries: int = Field(
        default=5,
        ge=0,
        description="attempts after the first for a request that timed out or failed (backoff 1, 2, 4… s)",
    )
    n_threads: int = Field(default_factory=default_threads, ge=1)
    n_ctx: int = Field(default=4096, ge=512)
    max_triples: int = Field(default=6, ge=1, description="maxItems of the triple list per passage")
    max_tokens: int = Field(default=400, ge=16, description="generation limit per passage")
    repeat_penalty: float = Field(default=1.1, ge=1.0)
    continue_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="write another triple when the model gives continuing the list at least this share "
        "of P(continue)+P(close); unset = plain greedy (about 0.5)",
    )
    ensemble_min_prob: float = Field(
        default=0.45,
        ge=0,
        le=1,
        description="with several models: drop triples whose mean P(t|e,D) over the models is lower "
        "(0.45 with two keeps what both wrote and what one gave over 0.9)",
    )
    min_triple_prob: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="one model: drop triples with lower P(t|e,D) in build and eval (a mixture: ensemble_min_prob)",
    )

    min_confidence: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="leave out of the graph facts whose confidence P(t|e) is lower: facts read only in "
        "passages retrieval barely tied to the entity, which are mostly wrong (README: Quality)",
    )

    # resolution
    resolve_similarity: float = Field(default=0.92, gt=0, le=1, description="embedding merge threshold")

    # expansion
    hops: int = Field(default=1, ge=1, description="expansion rounds")
    max_entities: int = Field(default=20, ge=1, description="most entities expanded in a build")
    max_passages: int | None = Field(
        default=None, ge=1, description="most passages one build reads with the model (unset: no cap)"
    )

    @classmethod
    def load(cls, yaml_path: Path | None = None, **overrides: Any) -> Settings:
        """Settings from an optional YAML file, then overrides (None values are ignored)."""
        return settings_from(cls, yaml_path, overrides)

    def extraction_fingerprint(self) -> dict[str, Any]:
        """Settings that change what the generator returns for a passage (part of the cache key)."""
        return {
            "prompt": PROMPT_VERSION,
            "max_triples": self.max_triples,
            "max_tokens": self.max_tokens,
            "repeat_penalty": self.repeat_penalty,
            "open_relations": self.open_relations,
        } | ({"continue_threshold": self.continue_threshold} if self.continue_threshold is not None else {})
