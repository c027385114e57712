"""The build loop: ingest → index → (retrieve → extract → score → resolve → store → expand) per hop.

Everything a build computes is kept as it is made (passages and vectors on disk, each passage's
extraction committed to the cache), and the graph is a pure function of those, so an interrupted
build re-run with the same command resumes where it stopped and produces the same graph.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kgrag import __version__
from kgrag.builddir import BuildDir
from kgrag.config import Settings
from kgrag.errors import KgragError
from kgrag.extract.cache import ExtractionCache
from kgrag.extract.ensemble import PassageExtractor
from kgrag.extract.factory import keep_threshold, make_extractor
from kgrag.extract.filters import usable_triples
from kgrag.generator.base import GeneratorBackend
from kgrag.graph.networkx_store import NetworkXStore
from kgrag.graph.resolve import Resolver
from kgrag.graph.score import score_triples
from kgrag.graph.store import GraphStore
from kgrag.graph.verbalise import verbalise_neighbourhoods
from kgrag.index.embedder import Embedder, MiniLMEmbedder
from kgrag.index.faiss_index import FaissIndex
from kgrag.index.passage_store import PassageStore
from kgrag.index.retriever import Retriever
from kgrag.ingest import Chunker, load_documents
from kgrag.records import BuildReport, Document, Extraction, Passage, ResolvedGraph
from kgrag.schema import GraphSchema
from kgrag.text import normalize

logger = logging.getLogger(__name__)


class _Timer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.totals[name] += time.perf_counter() - started


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    )


class Pipeline:
    """One build of one build directory. Backends and embedder can be injected (tests, API)."""

    def __init__(
        self,
        settings: Settings,
        out: Path,
        backend: GeneratorBackend | None = None,
        embedder: Embedder | None = None,
        stores: Sequence[GraphStore] = (),
        show_progress: bool = True,
    ) -> None:
        self.settings = settings
        self.dir = BuildDir(out).create()
        self.schema = GraphSchema.load(settings.schema_path)
        self.backend = backend  # None: the settings' model(s) through llama.cpp
        self.embedder = embedder
        self.extra_stores = list(stores)
        self.show_progress = show_progress
        self.timer = _Timer()

    # -- stages ---------------------------------------------------------------------------------
    def _embedder(self) -> Embedder:
        if self.embedder is None:
            with self.timer("embed"):
                self.embedder = MiniLMEmbedder()
        return self.embedder

    def ingest(self, inputs: Sequence[Path], passages: PassageStore, index: FaissIndex) -> None:
        documents = load_documents(inputs)
        new = [d for d in documents if not passages.has_document(d.id)]
        if new:
            chunker = Chunker(self.settings.chunk_sentences, self.settings.chunk_overlap)
            chunks = chunker.chunk(new, start_id=passages.next_passage_id())
            passages.add(new, chunks)
            logger.info("ingested %d new documents (%d passages)", len(new), len(chunks))
        self.index_missing(passages, index)

    def index_missing(self, passages: PassageStore, index: FaissIndex) -> None:
        """Embed every stored passage the FAISS index lacks (also repairs an interrupted run)."""
        index.truncate(passages.next_passage_id())
        missing = passages.passages_from(index.size)
        if not missing:
            return
        embedder = self._embedder()
        with self.timer("embed"):
            vectors = embedder.encode(
                [p.text for p in missing], self.settings.embed_batch_size, progress=self.show_progress
            )
            index.add(vectors)
            index.save()

    def add_neighbourhood_docs(
        self, graph: ResolvedGraph, passages: PassageStore, index: FaissIndex, retriever: Retriever
    ) -> None:
        """Verbalise every entity's neighbourhood into a derived document and index it."""
        docs = []
        for key, text in verbalise_neighbourhoods(graph).items():
            doc_id = "g" + hashlib.sha256(text.encode()).hexdigest()[:15]
            docs.append(Document(id=doc_id, source=f"graph:{key}", title=key, text=text, derived=True))
        retriever.active_derived = {d.id for d in docs}
        new = [d for d in docs if not passages.has_document(d.id)]
        first = passages.next_passage_id()
        chunks = [
            Passage(id=first + i, doc_id=d.id, start=0, end=len(d.text), text=d.text, derived=True)
            for i, d in enumerate(new)
        ]
        passages.add(new, chunks)
        self.index_missing(passages, index)

    def usable(self, extraction: Extraction, passage: Passage) -> Extraction:
        """Keep the triples that fit the schema's domain/range and whose head and tail both occur
        in the passage (a small model otherwise copies names from the prompt's examples)."""
        kept = usable_triples(extraction.triples, self.schema, passage.text)
        if len(kept) < len(extraction.triples):
            logger.debug(
                "passage %d: dropped %d ungrounded or ill-typed triples",
                passage.id,
                len(extraction.triples) - len(kept),
            )
        return extraction.model_copy(update={"triples": kept})

    # -- the loop -------------------------------------------------------------------------------
    def run(self, inputs: Sequence[Path], seeds: Sequence[str]) -> BuildReport:
        started = time.perf_counter()
        seeds = list(dict.fromkeys(s.strip() for s in seeds if s.strip()))
        if not seeds:
            raise KgragError("no seed entities given: use --seeds NAME or --seeds-file FILE")
        self.dir.schema.write_text(self.schema.model_dump_json(indent=1), encoding="utf-8")
        passages = PassageStore(self.dir.passages)
        cache = ExtractionCache(self.dir.cache)
        index = FaissIndex(self.dir.index, self._embedder().dim)
        report = BuildReport()
        store = NetworkXStore(self.dir.graph)
        stores: list[GraphStore] = [store, *self.extra_stores]
        extractor = make_extractor(self.settings, self.schema, cache, self.backend)
        state = _BuildState(keep_threshold(self.settings, extractor))
        try:
            self.ingest(inputs, passages, index)
            retriever = Retriever(
                self._embedder(), index, passages, self.settings.top_k, self.settings.retrieval_temperature
            )
            frontier = seeds[: self.settings.max_entities]
            for hop in range(1, self.settings.hops + 1):
                if hop > 1:
                    self.add_neighbourhood_docs(state.graph, passages, index, retriever)
                self.expand(frontier, retriever, extractor, state, hop)
                self.write(state, stores)
                report.hops_run = hop
                frontier = self.next_frontier(state)
                if not frontier:
                    break
        except KeyboardInterrupt:
            report.status = "interrupted"
            self.write(state, stores)  # keep what was built; the cache keeps the rest
            raise
        except BaseException:
            report.status = "failed"
            raise
        else:
            report.status = "complete"
        finally:
            self.finish(report, state, passages, extractor, started)
            passages.close()
            cache.close()
        return report

    def expand(
        self, frontier: list[str], retriever: Retriever, extractor: PassageExtractor, state: _BuildState, hop: int
    ) -> None:
        """Retrieve the passages of each frontier entity and extract the ones not seen yet."""
        with _progress() as progress:
            task = progress.add_task(f"hop {hop}", total=len(frontier))
            for entity in frontier:
                progress.update(task, description=f"hop {hop}: {entity[:40]}")
                with self.timer("retrieve"):
                    hits = retriever.retrieve(entity)
                for hit in hits:
                    pid = hit.passage.id
                    state.passages[pid] = hit.passage
                    state.weights[pid] = max(state.weights.get(pid, 0.0), hit.prob)
                    if pid not in state.extractions:
                        state.extractions[pid] = self.usable(extractor.extract(hit.passage), hit.passage)
                state.expanded.append(entity)
                progress.advance(task)
            progress.update(task, visible=self.show_progress)

    def write(self, state: _BuildState, stores: Sequence[GraphStore]) -> None:
        """Score, resolve and write the graph of everything extracted so far."""
        triples = score_triples(state.extractions.values(), state.passages, state.weights, state.min_prob)
        resolver = Resolver(self.embedder, self.settings.resolve_similarity, self.schema.compatible)
        state.graph = resolver.resolve(triples)
        for store in stores:
            store.write(state.graph)

    def next_frontier(self, state: _BuildState) -> list[str]:
        """Entities not yet expanded, strongest first, within the --max-entities budget."""
        budget = self.settings.max_entities - len(state.expanded)
        if budget <= 0:
            return []
        done = {normalize(n) for n in state.expanded}
        strength: dict[str, float] = defaultdict(float)
        for t in state.graph.triples:
            if not t.derived:
                strength[t.head] += t.confidence
                strength[t.tail] += t.confidence
        candidates = [
            e
            for e in state.graph.entities
            if strength.get(e.key, 0.0) > 0
            and self.schema.expandable(e.type)
            and not done & {normalize(n) for n in [e.name, *e.aliases]}
        ]
        candidates.sort(key=lambda e: (-strength[e.key], e.name))
        return [e.name for e in candidates[:budget]]

    def finish(
        self,
        report: BuildReport,
        state: _BuildState,
        passages: PassageStore,
        extractor: PassageExtractor,
        started: float,
    ) -> None:
        counts = passages.counts()
        report.documents = counts["documents"]
        report.passages = counts["passages"]
        report.entities_expanded = state.expanded
        report.passages_read = len(state.extractions)
        report.model_calls = extractor.calls
        report.invalid_outputs = sum(1 for e in state.extractions.values() if e.error)
        report.nodes = len(state.graph.entities)
        report.edges = len(state.graph.triples)
        total = time.perf_counter() - started
        seconds = dict(self.timer.totals)
        seconds["decode"] = extractor.decode_seconds
        seconds["prefill"] = extractor.prefill_seconds
        seconds["other"] = total - sum(v for k, v in seconds.items() if k != "prefill")
        seconds["total"] = total
        report.seconds = {k: round(v, 3) for k, v in seconds.items()}
        self.dir.write_manifest(
            {
                "kgrag_version": __version__,
                "status": report.status,
                "settings": self.settings.model_dump(mode="json"),
                "schema": {"name": self.schema.name, "fingerprint": self.schema.fingerprint()},
                "model": extractor.identity,
                "report": report.model_dump(),
            }
        )


class _BuildState:
    """What the current build has gathered: passages read, their weights and extractions, and the
    P(t|e,D) below which its triples are dropped (:func:`~kgrag.extract.factory.keep_threshold`)."""

    def __init__(self, min_prob: float) -> None:
        self.min_prob = min_prob
        self.passages: dict[int, Passage] = {}
        self.weights: dict[int, float] = {}
        self.extractions: dict[int, Extraction] = {}
        self.expanded: list[str] = []
        self.graph = ResolvedGraph()
