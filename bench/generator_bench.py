"""Extraction throughput of the in-process model against llama.cpp's server at several concurrencies.

    python bench/generator_bench.py --models qwen2.5-0.5b,qwen2.5-1.5b --passages 40 --concurrency 1,2,4,8

The same passages (the first ``--passages`` of the physics-history corpus in ../shared/data, cut as
``kgrag build`` cuts them) go through the extractor, with no cache, once in-process (one passage
after another: what ``kgrag build`` does without ``--llm-url``) and once through ``kgrag
serve-model`` per concurrency level (a server with that many slots, that many requests in flight).
For each it prints passages/s, generated tokens/s, the prefill share of the in-process time, and
the share of passages whose output is identical to the in-process one. Both run with
``--repeat-penalty`` (1.0 by default: llama.cpp's server also counts the prompt's last tokens as
repeats, the in-process sampler only the generated ones, so with a penalty they decode near ties
apart for a reason that is not the batching being measured).
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


def run(settings: Settings, todo: list[Passage]) -> tuple[float, dict[int, Extraction], float]:
    """Wall seconds, the extraction of each passage, and the prefill seconds (in-process only)."""
    extractor = make_extractor(settings, GraphSchema.load(settings.schema_path), None)
    extractor.extract(todo[0])  # load the model (or open the connection) outside the timing
    started = time.perf_counter()
    results = dict((p.id, e) for p, e in extractor.extract_many(todo[1:]))
    results[todo[0].id] = extractor.extract(todo[0])  # not cached: timed as the others
    seconds = time.perf_counter() - started
    return seconds, results, extractor.prefill_seconds


def _keys(extraction: Extraction) -> list[tuple[str, ...]]:
    """What the model wrote, without the probabilities (the same tokens can score a hair apart)."""
    return [(t.head, t.head_type, t.relation, t.tail, t.tail_type) for t in extraction.triples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b")
    parser.add_argument("--passages", type=int, default=40)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat-penalty", type=float, default=1.0)
    args = parser.parse_args()
    todo = passages(args.passages)
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"{len(todo)} passages of {CORPUS.name}, {args.threads} threads, repeat penalty {args.repeat_penalty:g}")
    print("| model | path | passages/s | generated tokens/s | prefill share | identical to in-process |")
    print("|---|---|---:|---:|---:|---:|")
    for model in args.models.split(","):
        base = Settings(model=model, n_threads=args.threads, repeat_penalty=args.repeat_penalty)
        seconds, local, prefill = run(base, todo)
        tokens = sum(e.completion_tokens for e in local.values())
        print(
            f"| {model} | in-process, one at a time | {len(todo) / seconds:.3f} | {tokens / seconds:.1f} "
            f"| {prefill / seconds:.0%} | 100% |"
        )
        sys.stdout.flush()
        for level in levels:
            options = ServeOptions(model=model, port=free_port(), parallel=level, threads=args.threads)
            with LocalModelServer(options) as server:
                served = base.model_copy(update={"llm_url": server.url, "llm_concurrency": level})
                seconds, remote, _ = run(served, todo)
            tokens = sum(e.completion_tokens for e in remote.values())
            same = sum(_keys(remote[p.id]) == _keys(local[p.id]) for p in todo)
            print(
                f"| {model} | server, {level} in flight | {len(todo) / seconds:.3f} | {tokens / seconds:.1f} "
                f"| | {same / len(todo):.0%} |"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
