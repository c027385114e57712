"""Neo4jStore throughput: batched UNWIND/MERGE writes vs one query per triple, against a local server.

    .venv/bin/python bench/store_bench.py                      # 100,000 triples, batch sizes 250..5000
    .venv/bin/python bench/store_bench.py --triples 20000 --sizes 1000
    .venv/bin/python bench/store_bench.py --external           # the NEO4J_* server instead of ArcadeDB

By default it starts ``kgrag serve-graph`` (ArcadeDB, 512 MB heap) on free loopback ports in a temp
folder and stops it at the end. Each run writes a disjoint graph (its keys carry the run's name), so
runs do not see each other's nodes. Names carry quotes, backslashes, Cypher fragments and unicode.
Batched throughput counts the whole ``Neo4jStore.write`` (entities and facts, no lexical layer, so
that it does the same work as the per-triple query) divided by the number of triples.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from kgrag.neo4j import cypher
from kgrag.neo4j.server import free_port
from kgrag.neo4j.store import Neo4jSettings, Neo4jStore
from kgrag.records import Entity, ResolvedGraph, Triple

logger = logging.getLogger("store_bench")

TYPES = ["Person", "Organization", "Location", "Work", "Award"]
RELATIONS = ["works_for", "born_in", "collaborated_with", "award_received", "author_of", "member_of", "located_in"]
NAME_PARTS = ["O'Brien", 'the "Great"', "Zoë", "Ünïcødé", "中文", "😀", "back\\slash", "x`}]->(n) //", "Marie", "Curie"]


def synthetic(n_triples: int, run: str, seed: int = 7) -> ResolvedGraph:
    """``n_triples`` distinct triples over n_triples/5 entities, keys prefixed by ``run``."""
    rng = random.Random(seed)
    n_entities = max(10, n_triples // 5)
    entities = []
    for i in range(n_entities):
        type_name = TYPES[i % len(TYPES)]
        name = f"{rng.choice(NAME_PARTS)} {rng.choice(NAME_PARTS)} {i}"
        entities.append(Entity(key=f"{run}:{type_name.lower()}:{i}", name=name, type=type_name, aliases=[name.upper()]))
    seen: set[tuple[int, int, str]] = set()
    triples = []
    while len(triples) < n_triples:
        h, t = rng.randrange(n_entities), rng.randrange(n_entities)
        relation = rng.choice(RELATIONS)
        if h == t or (h, t, relation) in seen:
            continue
        seen.add((h, t, relation))
        head, tail = entities[h], entities[t]
        triples.append(
            Triple(
                head=head.key,
                head_type=head.type,
                relation=relation,
                tail=tail.key,
                tail_type=tail.type,
                confidence=round(rng.random(), 6),
            )
        )
    return ResolvedGraph(entities=entities, triples=triples)


def per_triple_statement(head_label: str, rel_type: str, tail_label: str) -> str:
    """The naive write: one query per triple (head, tail and fact, the store's own patterns), one
    transaction each."""
    head, tail = cypher.check_label(head_label), cypher.check_label(tail_label)
    return (
        "OPTIONAL MATCH (h0:Entity {key: $head})\n"
        "FOREACH (_ IN CASE WHEN h0 IS NULL THEN [1] ELSE [] END |\n"
        f"  CREATE (:Entity:{head} {{key: $head, name: $head_name, type: $head_type, aliases: []}}))\n"
        "WITH count(*) AS one\n"
        "OPTIONAL MATCH (t0:Entity {key: $tail})\n"
        "FOREACH (_ IN CASE WHEN t0 IS NULL THEN [1] ELSE [] END |\n"
        f"  CREATE (:Entity:{tail} {{key: $tail, name: $tail_name, type: $tail_type, aliases: []}}))\n"
        "WITH count(*) AS two\n"
        "MATCH (h:Entity {key: $head})\n"
        "MATCH (t:Entity {key: $tail})\n"
        f"MERGE (h)-[f:{cypher.check_rel_type(rel_type)}]->(t)\n"
        "SET f.relation = $relation, f.confidence = $confidence, f.derived = false"
    )


def bench_per_triple(store: Neo4jStore, graph: ResolvedGraph) -> float:
    names = {e.key: e.name for e in graph.entities}
    started = time.perf_counter()
    with store.driver.session(database=store.settings.database) as session:
        for t in graph.triples:
            statement = per_triple_statement(
                cypher.entity_label(t.head_type), cypher.relationship_type(t.relation), cypher.entity_label(t.tail_type)
            )
            params = {
                "head": t.head,
                "head_name": names[t.head],
                "head_type": t.head_type,
                "tail": t.tail,
                "tail_name": names[t.tail],
                "tail_type": t.tail_type,
                "relation": t.relation,
                "confidence": t.confidence,
            }
            session.execute_write(lambda tx, s=statement, p=params: tx.run(s, p).consume())
    return len(graph.triples) / (time.perf_counter() - started)


def bench_batched(store: Neo4jStore, graph: ResolvedGraph, batch_size: int) -> float:
    store.batch_size = batch_size
    started = time.perf_counter()
    store.write(graph)
    return len(graph.triples) / (time.perf_counter() - started)


def check(store: Neo4jStore, graph: ResolvedGraph, run: str) -> None:
    """The run's entities and facts are all there, with their names intact."""
    [row] = store.query(
        "MATCH (e:Entity) WHERE e.key STARTS WITH $prefix "
        "OPTIONAL MATCH (e)-[f]->() RETURN count(DISTINCT e) AS entities, count(f) AS facts",
        prefix=f"{run}:",
    )
    used = {t.head for t in graph.triples} | {t.tail for t in graph.triples}
    assert row["facts"] == len(graph.triples), (run, row)
    assert row["entities"] >= len(used), (run, row)


@contextmanager
def local_server() -> Iterator[Neo4jSettings]:
    """``kgrag serve-graph`` on free loopback ports in a temp folder, stopped with Ctrl-C at the end."""
    password = secrets.token_urlsafe(16)
    bolt, http = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="kgrag-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
        env.update({"NEO4J_PASSWORD": password, "NEO4J_DATABASE": "bench"})
        command = [sys.executable, "-c", "from kgrag.cli import main; main()", "serve-graph"]
        command += ["--dir", f"{tmp}/graph", "--port", str(bolt), "--http-port", str(http)]
        log = Path(tmp) / "serve-graph.log"
        with log.open("w") as out:
            proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
        settings = Neo4jSettings(
            uri=f"bolt://127.0.0.1:{bolt}", username="root", password=SecretStr(password), database="bench"
        )
        try:
            _wait(settings, proc, log)
            yield settings
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def external_server() -> Iterator[Neo4jSettings]:
    """The server that NEO4J_URI / NEO4J_USERNAME / NEO4J_PASSWORD / NEO4J_DATABASE name."""
    yield Neo4jSettings.load()


def _wait(settings: Neo4jSettings, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve-graph exited:\n{log.read_text()}")
        try:
            with Neo4jStore(settings) as store:
                store.verify()
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"serve-graph did not answer in {timeout} s:\n{log.read_text()}")


def rust_packstream() -> bool:
    """Whether the driver packs with the Rust extension (neo4j-rust-ext), which halves client time."""
    try:
        import neo4j._rust  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triples", type=int, default=100_000, help="triples for the batched runs")
    parser.add_argument("--per-triple", type=int, default=2_000, help="triples for the one-query-per-triple run")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 2500, 5000], help="batch sizes")
    parser.add_argument("--external", action="store_true", help="use the NEO4J_* server, not a local ArcadeDB")
    parser.add_argument(
        "--warmup", type=int, default=30_000, help="triples written first, untimed (the server JVM's JIT warms up)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("kgrag").setLevel(logging.WARNING)

    with (
        external_server() if args.external else local_server() as settings,
        Neo4jStore(settings) as store,
    ):
        store.ensure_schema()
        store.write(synthetic(args.warmup, "warmup"))  # the JVM's JIT: the first batches run several times slower
        single = synthetic(args.per_triple, "single")
        per_triple = bench_per_triple(store, single)
        check(store, single, "single")
        logger.info("one query per triple: %8.0f triples/s  (%d triples)", per_triple, args.per_triple)
        results = {}
        for size in args.sizes:
            graph = synthetic(args.triples, f"batch{size}")
            results[size] = bench_batched(store, graph, size)
            check(store, graph, f"batch{size}")
            logger.info(
                "batches of %5d rows:  %8.0f triples/s  (%d triples, %d entities)",
                size,
                results[size],
                len(graph.triples),
                len(graph.entities),
            )
    best = max(results, key=lambda s: results[s])
    logger.info("packstream: %s", "Rust (neo4j-rust-ext)" if rust_packstream() else "pure Python")
    logger.info(
        "best batch size %d: %.0f triples/s, %.1fx one query per triple (targets: >= 15,000/s and >= 10x)",
        best,
        results[best],
        results[best] / per_triple,
    )


if __name__ == "__main__":
    main()
