"""The Neo4j graph store: batched, idempotent writes of a ResolvedGraph through the official driver.

Each batch (at most ``batch_size`` rows of one kind: documents, passages, entities of one type, facts
of one relation, mentions) is one managed transaction (``execute_write``), which the driver retries
on transient errors; a batch that fails rolls back whole. Every write is keyed by a unique property
(MERGE, or create-if-absent for entities), so writing the same graph twice changes nothing, a later
build's graph adds only what is new (uniting aliases and provenance), and an interrupted push
completes when run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import neo4j
from neo4j import exceptions as neo4j_errors
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kgrag.builddir import BuildDir
from kgrag.errors import KgragError
from kgrag.neo4j import cypher
from kgrag.neo4j.model import Batch, PassageSource, batches
from kgrag.records import ResolvedGraph

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_URI = "bolt://127.0.0.1:7687"


class Neo4jSettings(BaseSettings):
    """Where and as whom to connect: ``NEO4J_URI``, ``NEO4J_USERNAME``, ``NEO4J_PASSWORD`` and
    ``NEO4J_DATABASE`` from the environment or a ``.env``-style file (the environment wins)."""

    model_config = SettingsConfigDict(env_prefix="NEO4J_", env_file=".env", extra="ignore")

    uri: str = Field(default=DEFAULT_URI, description="neo4j:// or bolt:// URI (+s / +ssc for TLS)")
    username: str = "neo4j"
    password: SecretStr | None = None
    database: str = "neo4j"

    @classmethod
    def load(cls, env_file: Path | None = None, **overrides: Any) -> Neo4jSettings:
        """Settings from the environment and ``env_file`` (default ``.env`` when present), then overrides."""
        if env_file is not None and not Path(env_file).is_file():
            raise KgragError(f"cannot read Neo4j settings file {env_file}")
        values = {k: v for k, v in overrides.items() if v is not None}
        return cls(_env_file=env_file or ".env", **values)  # type: ignore[call-arg]

    def describe(self) -> str:
        """Where the store writes, for logs and messages (never the password)."""
        return f"{self.uri} (database {self.database!r}, user {self.username!r})"


def _connection_error(settings: Neo4jSettings, exc: Exception) -> KgragError:
    if isinstance(exc, neo4j_errors.AuthError):
        return KgragError(
            f"Neo4j at {settings.uri} refused the credentials of user {settings.username!r}: "
            "set NEO4J_USERNAME and NEO4J_PASSWORD"
        )
    if isinstance(exc, neo4j_errors.ClientError) and "DatabaseNotFound" in str(exc.code):
        return KgragError(f"Neo4j at {settings.uri} has no database {settings.database!r}: set NEO4J_DATABASE")
    if isinstance(exc, (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired)):
        return KgragError(f"cannot reach Neo4j at {settings.uri}: is it running? (`kgrag serve-graph` starts one)")
    if isinstance(exc, neo4j_errors.ConfigurationError):
        return KgragError(f"bad Neo4j URI {settings.uri!r}: {exc}")
    message = getattr(exc, "message", None) or str(exc)
    return KgragError(f"Neo4j at {settings.uri} failed: {message.splitlines()[0] if message else type(exc).__name__}")


class Neo4jStore:
    """A ``GraphStore`` that writes to Neo4j (or any server speaking Bolt and Neo4j 5 Cypher)."""

    def __init__(
        self,
        settings: Neo4jSettings | None = None,
        passages_db: Path | None = None,
        batch_size: int = cypher.BATCH_SIZE,
        constraint_retries: int = 3,
    ) -> None:
        self.settings = settings or Neo4jSettings.load()
        self.passages = PassageSource(passages_db)
        self.batch_size = batch_size
        self.constraint_retries = constraint_retries
        self.statements_sent: list[str] = []  # distinct statements, for validation and inspection
        self._schema_done = False
        password = self.settings.password.get_secret_value() if self.settings.password else ""
        try:
            self.driver = neo4j.GraphDatabase.driver(
                self.settings.uri,
                auth=(self.settings.username, password),
                max_transaction_retry_time=30.0,
                connection_timeout=10.0,
            )
        except (neo4j_errors.ConfigurationError, ValueError) as exc:
            raise KgragError(f"bad Neo4j URI {self.settings.uri!r}: {exc}") from exc
        logger.debug("Neo4j store at %s", self.settings.describe())

    # -- connection ---------------------------------------------------------------------------------
    def _call(self, work: Callable[[], T]) -> T:
        """Run ``work``, turning connection, auth and database errors into one-line KgragErrors."""
        try:
            return work()
        except (
            neo4j_errors.AuthError,
            neo4j_errors.ServiceUnavailable,
            neo4j_errors.SessionExpired,
            neo4j_errors.ConfigurationError,
        ) as exc:
            raise _connection_error(self.settings, exc) from exc
        except neo4j_errors.ClientError as exc:
            if "DatabaseNotFound" in str(exc.code):
                raise _connection_error(self.settings, exc) from exc
            raise

    def verify(self) -> None:
        """Connect and authenticate now (the driver is lazy), and check the database answers."""
        self._call(lambda: self.driver.verify_connectivity())
        self.query("RETURN 1 AS ok")

    def query(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        """Run a read query and return its records as dicts (tests, counts, the Browser guide)."""

        def work() -> list[dict[str, Any]]:
            with self.driver.session(database=self.settings.database) as session:
                return session.execute_read(lambda tx: [r.data() for r in tx.run(statement, params)])

        return self._call(work)

    def _write(self, statement: str, params: dict[str, Any]) -> neo4j.SummaryCounters:
        if statement not in self.statements_sent:
            self.statements_sent.append(statement)

        def tx_work(tx: neo4j.ManagedTransaction) -> neo4j.SummaryCounters:
            return tx.run(statement, params).consume().counters

        def work() -> neo4j.SummaryCounters:
            with self.driver.session(database=self.settings.database) as session:
                return session.execute_write(tx_work)

        for attempt in range(1, self.constraint_retries + 1):
            try:
                return self._call(work)
            except neo4j_errors.ConstraintError:
                # ArcadeDB raises this (instead of waiting) when another writer's MERGE overlaps; the
                # batch rolled back and is idempotent, so running it again is safe.
                if attempt == self.constraint_retries:
                    raise
                logger.debug("constraint conflict, retrying the batch (attempt %d)", attempt + 1)
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    # -- writing ------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Uniqueness constraints on Entity.key, Document.id, Passage.key and an index on Entity.name."""
        if self._schema_done:
            return
        for statement in cypher.schema_statements():
            self._write(statement, {})
        self._schema_done = True

    def batches(self, graph: ResolvedGraph) -> list[Batch]:
        return batches(graph, self.passages, self.batch_size)

    def write(self, graph: ResolvedGraph) -> None:
        """Merge ``graph`` into the database, one transaction per batch."""
        started = time.perf_counter()
        self.ensure_schema()
        todo = self.batches(graph)
        created = {"nodes": 0, "relationships": 0}
        for i, batch in enumerate(todo, 1):
            try:
                counters = self._write(batch.statement, {"rows": batch.rows})
            except neo4j_errors.Neo4jError as exc:
                message = (exc.message or str(exc)).splitlines()[0]
                raise KgragError(
                    f"Neo4j refused batch {i} of {len(todo)} ({batch.kind}, rolled back): {message}"
                ) from exc
            created["nodes"] += counters.nodes_created
            created["relationships"] += counters.relationships_created
            logger.debug("batch %d/%d: %s, %d rows", i, len(todo), batch.kind, len(batch.rows))
        logger.info(
            "Neo4j: wrote %d entities and %d facts to %s in %.1f s (%d nodes and %d relationships new)",
            len(graph.entities),
            len(graph.triples),
            self.settings.describe(),
            time.perf_counter() - started,
            created["nodes"],
            created["relationships"],
        )

    def counts(self) -> dict[str, int]:
        """Nodes and relationships of each part of the model, as the database holds them now."""
        nodes = self.query(
            "MATCH (n) RETURN sum(CASE WHEN n:Entity THEN 1 ELSE 0 END) AS entities, "
            "sum(CASE WHEN n:Document THEN 1 ELSE 0 END) AS documents, "
            "sum(CASE WHEN n:Passage THEN 1 ELSE 0 END) AS passages, count(n) AS nodes"
        )[0]
        rels = self.query("MATCH ()-[r]->() RETURN type(r) AS type, count(r) AS n")
        by_type = {r["type"]: r["n"] for r in rels}
        return {
            **{k: int(v or 0) for k, v in nodes.items()},
            "facts": sum(n for t, n in by_type.items() if t not in cypher.LEXICAL_TYPES),
            "has_passage": by_type.get(cypher.HAS_PASSAGE, 0),
            "mentions": by_type.get(cypher.MENTIONS, 0),
            "relationships": sum(by_type.values()),
        }

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def neo4j_store_from_env(
    build_dir: Path | None = None,
    env_file: Path | None = None,
    verify: bool = True,
    **overrides: Any,
) -> Neo4jStore:
    """A Neo4jStore configured from NEO4J_* variables / ``.env`` (``overrides`` win: uri, database,
    username, password), reading passage text from ``build_dir`` for the lexical layer. With
    ``verify`` it connects at once, so a wrong URI or password fails before any work is done."""
    settings = Neo4jSettings.load(env_file, **overrides)
    passages_db = BuildDir(build_dir).passages if build_dir is not None else None
    store = Neo4jStore(settings, passages_db=passages_db)
    if verify:
        try:
            store.verify()
        except BaseException:
            store.close()
            raise
    return store
