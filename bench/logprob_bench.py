"""What token log-probabilities cost: the logits-processor recorder kgrag uses, vs no scores at
all, vs llama-cpp-python's own ``logprobs`` (which needs ``logits_all=True``).

    .venv/bin/python bench/logprob_bench.py [--passages 6] [--model qwen2.5-0.5b]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from llama_cpp import Llama

from kgrag.config import Settings
from kgrag.extract.prompts import build_messages, system_prompt
from kgrag.generator.llama_cpp import _LogprobRecorder
from kgrag.generator.registry import resolve_model
from kgrag.ingest import Chunker, load_documents
from kgrag.schema import GraphSchema

REPO = Path(__file__).resolve().parents[1]


def load(path: Path, threads: int, logits_all: bool) -> Llama:
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        return Llama(model_path=str(path), n_ctx=4096, n_threads=threads, logits_all=logits_all, verbose=False)


def timed(llm: Llama, all_messages: list[list[dict[str, Any]]], schema: dict[str, Any], mode: str) -> float:
    started = time.perf_counter()
    for messages in all_messages:
        extra: dict[str, Any] = {}
        if mode == "recorder":
            extra["logits_processor"] = [_LogprobRecorder()]
        elif mode == "logprobs":
            extra["logprobs"] = True
            extra["top_logprobs"] = 1
        llm.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            temperature=0.0,
            max_tokens=400,
            repeat_penalty=1.1,
            **extra,
        )
    return (time.perf_counter() - started) / len(all_messages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=6)
    parser.add_argument("--model", default="qwen2.5-0.5b")
    args = parser.parse_args()
    settings = Settings(model=args.model, schema_path=Path("default"))
    schema = GraphSchema.load(settings.schema_path)
    passages = Chunker().chunk(load_documents([REPO / "examples/curie/docs"]))[: args.passages]
    system = system_prompt(schema, settings.max_triples)
    json_schema = schema.extraction_model(settings.max_triples).model_json_schema()
    messages = [build_messages(schema, system, p.text) for p in passages]
    path = resolve_model(args.model)
    fast = load(path, settings.n_threads, logits_all=False)
    timed(fast, messages[:1], json_schema, "none")  # warm the shared prompt prefix
    none = timed(fast, messages, json_schema, "none")
    recorder = timed(fast, messages, json_schema, "recorder")
    del fast
    slow = load(path, settings.n_threads, logits_all=True)
    timed(slow, messages[:1], json_schema, "logprobs")
    logprobs = timed(slow, messages, json_schema, "logprobs")
    print(f"{args.model}, {len(messages)} passages, {settings.n_threads} threads, seconds per passage:")
    print(f"  no scores                      {none:6.2f}")
    print(f"  kgrag's logits-processor       {recorder:6.2f}  ({100 * (recorder / none - 1):+.1f} %)")
    print(f"  logprobs with logits_all=True  {logprobs:6.2f}  ({logprobs / none:.1f}x)")


if __name__ == "__main__":
    main()
