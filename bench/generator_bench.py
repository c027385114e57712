"""Extraction throughput of the in-process model against llama.cpp's server at several concurrencies.

    python bench/generator_bench.py --models qwen2.5-0.5b,qwen2.5-1.5b --passages 40 --batch 2,4,8 --concurrency 1,2,4,8

The same passages (the first ``--passages`` of the physics-history corpus in ../shared/data, cut as
``kgrag build`` cuts them) go through the extractor, with no cache, one passage after another
in-process (what ``kgrag build`` does without ``--llm-url``): with llama-cpp-python's own
sampler chain, which masks the whole vocabulary with the grammar at every step (the path before
kgrag.generator.sampling), with the grammar checked last (one passage at a time now), and so with
llama.cpp's flash attention on as well; then in-process with that many passages decoded at once per
``--batch`` level (kgrag.generator.batching, with flash attention, as kgrag runs it); then through ``kgrag
serve-model`` per ``--concurrency`` level (a server with that many slots, that many requests in flight).
For each it prints passages/s, generated tokens/s, the prefill share of the in-process time,
generated tokens per extracted triple, and the share of passages whose triples are identical to the
sampler chain's. All run with ``--repeat-penalty`` (1.0 by default: llama.cpp's server also counts
the prompt's last tokens as repeats, the in-process sampler only the generated ones, so with a
penalty they decode near ties apart for a reason that is not the batching being measured).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kgrag.config import Settings
from kgrag.extract.factory import make_extractor
from kgrag.generator.server import LocalModelServer, ServeOptions
from kgrag.ingest import Chunker, load_documents
from kgrag.neo4j.server import free_port
from kgrag.records import Extraction, Passage
from kgrag.schema import GraphSchema

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "corpus" / "physics_history"


def passages(n: int) -> list[Passage]:
    documents = load_documents([CORPUS])
    return Chunker(3, 1).chunk(documents)[:n]


def run(
    settings: Settings, todo: list[Passage], grammar_last: bool = True, flash_attn: bool | None = None
) -> tuple[float, dict[int, Extraction], float]:
    """Wall seconds, the extraction of each passage, and the prefill seconds (in-process only).
    ``grammar_last=False`` runs the in-process model with llama-cpp-python's own sampler chain,
    ``flash_attn`` turns llama.cpp's flash attention on or off (None: kgrag's default, on only when
    decoding several passages at once)."""
    extractor = make_extractor(settings, GraphSchema.load(settings.schema_path), None)
    if not settings.llm_url:  # the model loads on the first passage, with these options
        backend = extractor.backend  # type: ignore[attr-defined]
        backend.options = backend.options.model_copy(update={"flash_attn": flash_attn})
    extractor.extract(todo[0])  # load the model (or open the connection) outside the timing
    if not settings.llm_url and extractor.backend.parallelism == 1:  # type: ignore[attr-defined]
        extractor.backend._backend.grammar_last = grammar_last  # type: ignore[attr-defined]
    started = time.perf_counter()
    results = dict((p.id, e) for p, e in extractor.extract_many(todo[1:]))
    results[todo[0].id] = extractor.extract(todo[0])  # not cached: timed as the others
    seconds = time.perf_counter() - started
    return seconds, results, extractor.prefill_seconds


def _keys(extraction: Extraction) -> list[tuple[str, ...]]:
    """What the model wrote, without the probabilities (the same tokens can score a hair apart)."""
    return [(t.head, t.head_type, t.relation, t.tail, t.tail_type) for t in extraction.triples]


def _row(
    model: str,
    path: str,
    todo: list[Passage],
    seconds: float,
    results: dict[int, Extraction],
    before: dict[int, Extraction],
    prefill: float | None,
) -> str:
    tokens = sum(e.completion_tokens for e in results.values())
    triples = sum(len(e.triples) for e in results.values())
    same = sum(_keys(results[p.id]) == _keys(before[p.id]) for p in todo)
    share = f"{prefill / seconds:.0%}" if prefill is not None else ""
    return (
        f"| {model} | {path} | {len(todo) / seconds:.3f} | {tokens / seconds:.1f} | {share} "
        f"| {tokens / max(triples, 1):.1f} | {same / len(todo):.0%} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b")
    parser.add_argument("--passages", type=int, default=40)
    parser.add_argument(
        "--no-before", action="store_true", help="skip the sampler chain (its outputs equal the grammar-last path's)"
    )
    parser.add_argument("--batch", default="2,4,8", help="in-process passages decoded at once")
    parser.add_argument("--concurrency", default="1,2,4,8", help="requests in flight to the server")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat-penalty", type=float, default=1.0)
    args = parser.parse_args()
    todo = passages(args.passages)
    levels = [int(c) for c in args.concurrency.split(",") if c]
    batches = [int(c) for c in args.batch.split(",") if c]
    print(f"{len(todo)} passages of {CORPUS.name}, {args.threads} threads, repeat penalty {args.repeat_penalty:g}")
    print(
        "| model | path | passages/s | generated tokens/s | prefill share | generated tokens per triple "
        "| identical to before |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for model in args.models.split(","):
        base = Settings(model=model, n_threads=args.threads, repeat_penalty=args.repeat_penalty, llm_concurrency=1)
        if not args.no_before:
            seconds, local, prefill = run(base, todo, grammar_last=False)
            path = "in-process, llama-cpp-python's sampler chain (before)"
            print(_row(model, path, todo, seconds, local, local, prefill))
        seconds, remote, prefill = run(base, todo)
        local = remote if args.no_before else local
        print(_row(model, "in-process, grammar checked last", todo, seconds, remote, local, prefill))
        seconds, remote, prefill = run(base, todo, flash_attn=True)
        path = "in-process, grammar checked last, flash attention"
        print(_row(model, path, todo, seconds, remote, local, prefill))
        sys.stdout.flush()
        for level in batches:
            batched = base.model_copy(update={"llm_concurrency": level})
            seconds, remote, prefill = run(batched, todo)
            print(_row(model, f"in-process, {level} passages at once", todo, seconds, remote, local, None))
            sys.stdout.flush()
        for level in levels:
            options = ServeOptions(model=model, port=free_port(), parallel=level, threads=args.threads)
            with LocalModelServer(options) as server:
                served = base.model_copy(update={"llm_url": server.url, "llm_concurrency": level})
                seconds, remote, _ = run(served, todo)
            print(_row(model, f"server, {level} in flight", todo, seconds, remote, local, None))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
