"""A model behind an OpenAI-compatible HTTP API: llama.cpp's server (``kgrag serve-model``), Ollama,
vLLM or a hosted API.

Each passage is one ``/chat/completions`` request at temperature 0 with the extraction schema as
``response_format`` (``json_schema``) and ``logprobs``, so P(t|e,D) comes from the server's token
log-probabilities exactly as from the in-process model. A server that returns none is reported once
(and counted in the build report): its triples then all get P(t|e,D) = 1, so confidence ranks them by
retrieval alone. Requests run ``parallelism`` at a time (the server's slot count where it says, else
4); timeouts, dropped connections, 429 (honouring ``Retry-After``) and 5xx are retried with backoff,
and a server that stays away ends the build with one line; the same command resumes from the cache.

The API key comes from ``KGRAG_LLM_API_KEY`` or ``OPENAI_API_KEY`` only: it is never logged, and never
written to the manifest.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import httpx
from pydantic import BaseModel, Field

from kgrag.errors import KgragError
from kgrag.generator.base import Generation, token_offsets

logger = logging.getLogger(__name__)

API_KEY_VARIABLES = ("KGRAG_LLM_API_KEY", "OPENAI_API_KEY")
DEFAULT_CONCURRENCY = 4  # requests in flight when the server does not say how many slots it has
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ServerOptions(BaseModel):
    """Where the server is and how to talk to it."""

    url: str = Field(description="the API's base URL, e.g. http://127.0.0.1:8090/v1")
    model: str = Field(description="the model name the server knows")
    concurrency: int | None = Field(default=None, ge=1, description="requests in flight (unset: the server's slots)")
    timeout_s: float = Field(default=120.0, gt=0, description="seconds one request may take")
    retries: int = Field(default=5, ge=0, description="attempts after the first for a failed request")
    repeat_penalty: float = Field(default=1.1, ge=1.0, description="sent to llama.cpp servers, as in-process")
    backoff_s: float = Field(default=1.0, ge=0, description="first wait between attempts; doubles each time")


class ServerInfo(BaseModel):
    """What the server says about itself (``/models``, and llama.cpp's ``/props``)."""

    models: list[str] = Field(default_factory=list)
    slots: int | None = None
    llama_cpp: bool = False  # llama.cpp's server: it takes llama.cpp's sampling options too


def api_key() -> str | None:
    return next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)


class ServerConnection:
    """HTTP to one server: requests retried with backoff on timeouts, dropped connections, 429 and
    5xx; what still fails is one line naming the server and what to do."""

    def __init__(self, url: str, timeout_s: float = 120.0, retries: int = 5, backoff_s: float = 1.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        key = api_key()
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            headers={"Authorization": f"Bearer {key}"} if key else {},
            limits=httpx.Limits(max_connections=64),
        )

    def request(self, method: str, path: str, attempts: int | None = None, **kwargs: Any) -> httpx.Response:
        attempts = attempts if attempts is not None else self.retries + 1
        wait = self.backoff_s
        problem = ""
        for attempt in range(1, attempts + 1):
            try:
                response = self.client.request(method, f"{self.url}{path}", **kwargs)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"cannot connect ({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})"
            else:
                if response.status_code < 400:
                    return response
                detail = _error_detail(response)
                if response.status_code not in RETRYABLE_STATUS:
                    raise KgragError(
                        f"the model server at {self.url} refused the request ({response.status_code}: {detail})"
                    )
                problem = f"HTTP {response.status_code} ({detail})"
                wait = max(wait, _retry_after(response) or 0.0)
            if attempt < attempts:
                logger.debug("model server: %s; attempt %d of %d in %.1f s", problem, attempt + 1, attempts, wait)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)
        raise KgragError(
            f"the model server at {self.url} failed: {problem} ({attempts} attempt(s)): check that it is running "
            "(kgrag serve-model starts one), then run the same command again (finished passages are kept)"
        )

    def close(self) -> None:
        self.client.close()


def probe(server: ServerConnection) -> ServerInfo:
    """Which models the server serves and, for llama.cpp's server, how many slots it has; an
    unreachable server is one line."""
    data = server.request("GET", "/models", attempts=2).json().get("data", [])
    models: list[str] = []
    for item in data:
        if isinstance(item, dict):  # llama.cpp's server lists each model's aliases too
            models += [str(name) for name in [item.get("id"), *(item.get("aliases") or [])] if name]
    props: dict[str, Any] = {}
    try:
        reply = server.client.get(f"{server.url.removesuffix('/v1')}/props")
        if reply.status_code == 200 and isinstance(reply.json(), dict):
            props = reply.json()
    except (httpx.HTTPError, ValueError):
        pass
    slots = props.get("total_slots")
    return ServerInfo(
        models=list(dict.fromkeys(models)),
        slots=slots if isinstance(slots, int) else None,
        llama_cpp=isinstance(slots, int),
    )


class OpenAICompatBackend:
    """A :class:`~kgrag.generator.base.GeneratorBackend` over HTTP; safe to call from several threads."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.server = ServerConnection(options.url, options.timeout_s, options.retries, options.backoff_s)
        self.url = self.server.url
        self.info = probe(self.server)
        self._identity = self._identify()
        self.parallelism = options.concurrency or self.info.slots or DEFAULT_CONCURRENCY
        self.unscored = 0  # replies without token log-probabilities
        self.enforces_schema = False  # a server may ignore response_format: the extractor asks once more
        self._lock = threading.Lock()

    def _identify(self) -> str:
        """The model's identity for the extraction cache: the server's own id for it with the GGUF's
        SHA-256 when kgrag serves it (``name@sha``), else the model name at this URL."""
        name = self.options.model
        if self.info.models and name not in self.info.models:
            served = ", ".join(self.info.models[:8])
            raise KgragError(
                f"the model server at {self.url} does not serve {name!r} (it serves {served}): check --model"
            )
        pinned = [m for m in self.info.models if m.startswith(f"{name}@")]
        return f"server:{pinned[0]}" if pinned else f"server:{name}@{self.url}"

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def loaded(self) -> bool:
        return True

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        started = time.perf_counter()
        body = {
            "model": self.options.model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "extraction", "strict": True, "schema": json_schema},
            },
            "logprobs": True,
            "seed": 0,
        }
        if self.info.llama_cpp:  # decode as the in-process model does (other APIs may refuse unknown fields)
            body["repeat_penalty"] = self.options.repeat_penalty
        reply = self.server.request("POST", "/chat/completions", json=body).json()
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise KgragError(
                f"the model server at {self.url} sent a reply without a message: {str(reply)[:120]}"
            ) from exc
        content = (choice.get("logprobs") or {}).get("content") or []
        pieces = [
            bytes(t["bytes"]) if t.get("bytes") is not None else str(t.get("token", "")).encode() for t in content
        ]
        offsets = token_offsets(text, pieces) if content else []
        if not content:
            self._unscored(bool(text))
        usage = reply.get("usage") or {}
        return Generation(
            text=text,
            token_offsets=offsets,
            token_logprobs=[float(t.get("logprob", 0.0)) for t in content][: len(offsets)],
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=time.perf_counter() - started,
            truncated=choice.get("finish_reason") == "length",
        )

    def _unscored(self, had_text: bool) -> None:
        """Count a reply without log-probabilities; the first one is reported."""
        with self._lock:
            self.unscored += 1
            first = self.unscored == 1
        if first and had_text:
            logger.warning(
                "the model server at %s returns no token log-probabilities: every triple it writes gets "
                "P(t|e,D) = 1, so confidence ranks facts by retrieval alone and --min-triple-prob keeps them all "
                "(the build report counts these outputs as unscored)",
                self.url,
            )

    def close(self) -> None:
        self.server.close()


def _token_bytes(token: dict[str, Any]) -> bytes:
    """A logprobs entry's bytes (exact for tokens that split a UTF-8 character), else its text."""
    raw = token.get("bytes")
    return bytes(raw) if raw is not None else str(token.get("token", "")).encode("utf-8")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:160] or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return " ".join(str(message or data).split())[:160]


def list_models(url: str) -> ServerInfo:
    """What a server serves (``kgrag models list --llm-url``)."""
    server = ServerConnection(url, timeout_s=10.0, retries=0)
    try:
        return probe(server)
    finally:
        server.close()
