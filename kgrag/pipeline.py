"""The build loop: ingest → index → (retrieve → extract → score → resolve → store → expand) per hop.

A build directory grows with every build. It remembers every seed it was given and every passage a
build has read (with the best P(D|e) any expanded entity gave it), and its graph is computed from
all of those whose documents are still there: a later build with new seeds, new documents, more
hops or a smaller entity budget adds to the graph and never removes a fact that a passage of the
corpus still states. A fact goes only when its passages' documents are deleted or changed, or the
user asks (``--seeds-only``, ``--reset``).

Everything a build computes is kept as it is made (passages and vectors on disk, each passage's
extraction committed to the cache, the passages read after each hop), and ``graph.json`` is replaced
only by a complete build's graph (or, before any build completed, by what an interrupted one had),
so an interrupted build re-run with the same command resumes where it stopped and produces the same
graph, and ``lookup`` keeps working meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from kgrag import __version__
from kgrag.builddir import BuildDir
from kgrag.config import Settings
from kgrag.errors import KgragError
from kgrag.extract.cache import ExtractionCache
from kgrag.extract.ensemble import PassageExtractor
from kgrag.extract.factory import keep_threshold, make_extractor
from kgrag.extract.filters import usable_triples
from kgrag.generator.base import GeneratorBackend
from kgrag.generator.ref import ModelRef
from kgrag.graph.export import export_graphml
from kgrag.graph.networkx_store import NetworkXStore
from kgrag.graph.resolve import Resolver, birth_names
from kgrag.graph.score import confident, score_triples
from kgrag.graph.store import GraphStore
from kgrag.graph.verbalise import verbalise_neighbourhoods
from kgrag.index.embedder import PASSAGES_PER_SECOND, Embedder, MiniLMEmbedder
from kgrag.index.faiss_index import FaissIndex
from kgrag.index.passage_store import PassageStore
from kgrag.index.retriever import Retriever
from kgrag.ingest import Chunker, load_documents
from kgrag.io import write_text_atomic
from kgrag.records import BuildReport, Document, Extraction, Passage, ResolvedGraph
from kgrag.schema import GraphSchema
from kgrag.signals import sigterm_as_interrupt
from kgrag.text import normalize

logger = logging.getLogger(__name__)

INGEST_BATCH = 200  # documents chunked and committed per transaction
EMBED_CHUNK = 512  # passages embedded between checks for a checkpoint
CHECKPOINT_SECONDS = 30.0  # the FAISS index is saved at least this often while embedding
LONG_BUILD_SECONDS = 3600.0  # above this estimate, the build says how to make it shorter
_JSONL_LINE = re.compile(r"#L\d+$")


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


class _Rate(ProgressColumn):
    """Items per second, once there is a rate to show."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f}/s" if speed else "")


def _progress(show: bool = True, rate: bool = False) -> Progress:
    """A transient progress bar on the terminal: done / total and time elapsed; with ``rate``, items
    per second and the time left too."""
    extra = (_Rate(), TimeRemainingColumn()) if rate else ()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra,
        transient=True,
        disable=not show,
    )


def source_file(source: str) -> str | None:
    """The absolute path of the file a document was read from (a JSONL line's file), None for
    documents written from the graph."""
    if source.startswith("graph:"):
        return None
    return str(Path(_JSONL_LINE.sub("", source)).resolve())


def _mentions(name: str, text: str) -> bool:
    """Whether every word of ``name`` occurs in ``text`` (both normalised)."""
    words = set(normalize(text).split())
    return all(word in words for word in normalize(name).split())


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
        self.dir = BuildDir(out)
        self.schema = GraphSchema.load(settings.schema_path)
        self.backend = backend  # None: the settings' model(s) through llama.cpp
        self.birth_names: list[tuple[str, str]] = []  # (name, birth name) the documents state, for resolution
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

    def ingest(self, inputs: Sequence[Path], passages: PassageStore, reset: bool) -> int:
        """Read the inputs, chunk and store the documents not seen before, and retire the stored
        documents that are gone (see :meth:`retire`). Returns how many documents the inputs hold."""
        documents = load_documents(inputs)  # a KgragError when nothing readable is there
        self.retire(documents, inputs, passages, reset)
        new = [d for d in documents if not passages.has_document(d.id)]
        if new:
            chunker = Chunker(self.settings.chunk_sentences, self.settings.chunk_overlap)
            added = 0
            with _progress(self.show_progress and len(new) > INGEST_BATCH) as progress:
                task = progress.add_task("chunking", total=len(new))
                for i in range(0, len(new), INGEST_BATCH):  # each batch is kept as soon as it is chunked
                    batch = new[i : i + INGEST_BATCH]
                    chunks = chunker.chunk(batch, start_id=passages.next_passage_id())
                    passages.add(batch, chunks, {d.id: source_file(d.source) for d in batch})
                    added += len(chunks)
                    progress.advance(task, len(batch))
            logger.info("ingested %d new documents (%d passages)", len(new), added)
        if passages.counts()["passages"] == 0:
            raise KgragError(
                f"the inputs hold {len(documents)} document(s) but no passage: no sentence with words in them"
            )
        return len(documents)

    def retire(self, documents: list[Document], inputs: Sequence[Path], passages: PassageStore, reset: bool) -> None:
        """A stored document is gone, and retired, when its file was read now and no longer holds its
        text, or its file no longer exists; with ``reset`` every document the inputs do not hold is.
        A retired document whose text comes back is live again."""
        loaded = {d.id for d in documents}
        roots = [Path(p).resolve() for p in inputs]
        gone, back = [], []
        for doc_id, (path, retired) in passages.sources().items():
            if doc_id in loaded:
                if retired:
                    back.append(doc_id)
                continue
            read_now = path is not None and any(Path(path) == r or r in Path(path).parents for r in roots)
            if not retired and (reset or read_now or (path is not None and not Path(path).exists())):
                gone.append(doc_id)
        passages.set_retired(back, False)
        passages.set_retired(gone, True)
        if gone:
            logger.info("%d stored document(s) are gone (deleted, changed or left out): their facts go too", len(gone))

    def index_missing(self, passages: PassageStore, index: FaissIndex) -> None:
        """Embed every stored passage the FAISS index lacks (also repairs an interrupted run), saving
        the index at least every ``CHECKPOINT_SECONDS`` and when interrupted, so no finished batch is
        embedded twice."""
        index.truncate(passages.next_passage_id())
        total = passages.next_passage_id() - index.size
        if total <= 0:
            return
        embedder = self._embedder()
        saved = time.monotonic()
        with self.timer("embed"), _progress(self.show_progress and total > EMBED_CHUNK) as progress:
            task = progress.add_task("embedding", total=total)
            try:
                while batch := passages.passages_from(index.size, limit=EMBED_CHUNK):
                    index.add(embedder.encode([p.text for p in batch], self.settings.embed_batch_size))
                    progress.advance(task, len(batch))
                    if time.monotonic() - saved > CHECKPOINT_SECONDS:
                        index.save()
                        saved = time.monotonic()
            finally:
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
    def run(
        self,
        inputs: Sequence[Path],
        seeds: Sequence[str],
        *,
        seeds_only: bool = False,
        reset: bool = False,
        reextract: bool = False,
    ) -> BuildReport:
        """Build into the directory, adding to what it holds (module doc). ``seeds_only``: forget the
        seeds and passages earlier builds used, so the graph comes from exactly this build's seeds.
        ``reset``: that, and forget the documents the inputs do not hold; it may change the model or
        schema. ``reextract``: keep everything, and read the remembered passages again with a new
        model or schema. Without seeds, the remembered ones are expanded again."""
        started = time.perf_counter()
        given = list(dict.fromkeys(s.strip() for s in seeds if s.strip()))
        with self.dir.lock("build"), sigterm_as_interrupt():
            previous = self.dir.read_manifest()
            remembered = [] if (seeds_only or reset) else list(previous.get("seeds", []))
            frontier_seeds = given or remembered
            if not frontier_seeds:
                raise KgragError("no seed entities given: use --seeds NAME or --seeds-file FILE")
            cache = ExtractionCache(self.dir.cache)
            try:
                extractor = make_extractor(self.settings, self.schema, cache, self.backend)  # checks model names
                self._check_same_model_and_schema(previous, extractor, reset or reextract)
                return self._run(
                    inputs, frontier_seeds, remembered, previous, extractor, started, seeds_only or reset, reset
                )
            finally:
                cache.close()

    def _run(
        self,
        inputs: Sequence[Path],
        seeds: list[str],
        remembered: list[str],
        previous: dict[str, Any],
        extractor: PassageExtractor,
        started: float,
        forget_reads: bool,
        reset: bool,
    ) -> BuildReport:
        report = BuildReport()
        state = _BuildState(keep_threshold(self.settings, extractor))
        passages = PassageStore(self.dir.passages)
        graph_info: dict[str, Any] = dict(previous.get("graph", {}))
        try:
            write_text_atomic(self.dir.schema, self.schema.model_dump_json(indent=1))
            self.ingest(inputs, passages, reset)
            if forget_reads:
                passages.forget_reads()
            prior = passages.reads()
            self.birth_names = [pair for text in passages.document_texts() for pair in birth_names(text)]
            index = FaissIndex(self.dir.index, self._embedder().dim)
            self.estimate(passages, index, len(seeds))
            self.index_missing(passages, index)
            retriever = Retriever(
                self._embedder(), index, passages, self.settings.top_k, self.settings.retrieval_temperature
            )
            retriever.retired = passages.retired()
            frontier = seeds[: self.settings.max_entities]
            if len(seeds) > len(frontier):
                logger.warning(
                    "%d seeds but --max-entities %d: expanding the first %d (raise --max-entities to expand them all)",
                    len(seeds), len(frontier), len(frontier),
                )  # fmt: skip
            for hop in range(1, self.settings.hops + 1):
                if hop > 1:
                    self.add_neighbourhood_docs(state.graph, passages, index, retriever)
                self.expand(frontier, retriever, extractor, state, hop, set(seeds))
                passages.add_reads(state.source_weights())
                state.graph = self.resolve(state.passages, state.weights, state.extractions, state.min_prob)
                report.hops_run = hop
                if self.extra_stores:
                    self.write(self.full_graph(state, prior, passages, extractor), self.extra_stores)
                frontier = self.next_frontier(state)
                if not frontier or state.budget_spent(self.settings.max_passages):
                    break
            graph = self.full_graph(state, prior, passages, extractor)
            self.write(graph, self.extra_stores)
            self.write_graph(graph)
            graph_info = self._graph_info(graph, complete=True)
        except KeyboardInterrupt:
            report.status = "interrupted"
            passages.add_reads(state.source_weights())
            if not graph_info.get("complete"):  # no complete graph to keep: show what is finished
                graph = self.full_graph(state, passages.reads(), passages, extractor, cached_only=True)
                if graph.triples or self.dir.graph.exists():
                    self.write_graph(graph)
                    graph_info = self._graph_info(graph, complete=False)
            raise
        except BaseException:
            report.status = "failed"
            with suppress(KgragError):  # a server that went away: keep what it read (not if the store failed)
                passages.add_reads(state.source_weights())
            raise
        else:
            report.status = "complete"
            self.warn_if_empty(report, state, graph)
        finally:
            self.finish(report, state, passages, extractor, started, [*remembered, *seeds], graph_info)
            passages.close()
        return report

    def _check_same_model_and_schema(
        self, previous: dict[str, Any], extractor: PassageExtractor, allowed: bool
    ) -> None:
        """A build directory holds one model's reading of one schema: changing either is refused,
        with the options, unless this build resets or re-extracts."""
        if allowed or previous.get("status") is None:
            return
        changes = []
        if previous.get("model") not in (None, extractor.identity):
            changes.append(f"model {previous['model']} (this build: {extractor.identity})")
        old_schema = previous.get("schema", {})
        if not self._same_schema(old_schema.get("fingerprint")):
            changes.append(f"schema {old_schema.get('name')!r} (this build: {self.schema.name!r}, changed)")
        if changes:
            raise KgragError(
                f"{self.dir.root} was built with {' and '.join(changes)}: use --reset to start it over from "
                "these inputs, --reextract to read its passages again with this model and schema, or another --out"
            )

    def _same_schema(self, fingerprint: str | None) -> bool:
        """Whether the schema the directory was built with reads the same to the model as this one
        (only filtering, resolution or expansion settings changed), or is unknown."""
        if fingerprint in (None, self.schema.fingerprint()):
            return True
        try:
            before = GraphSchema.model_validate_json(self.dir.schema.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return before.reading_fingerprint() == self.schema.reading_fingerprint()

    def estimate(self, passages: PassageStore, index: FaissIndex, n_seeds: int) -> None:
        """Say up front what the build will cost, and how to make it shorter when that is long."""
        to_embed = max(0, passages.next_passage_id() - index.size)
        entities = min(self.settings.max_entities, n_seeds) if self.settings.hops == 1 else self.settings.max_entities
        to_read = entities * self.settings.top_k
        if self.settings.max_passages is not None:
            to_read = min(to_read, self.settings.max_passages)
        if self.settings.llm_url:  # a server's speed is its own: no estimate of the model's time
            logger.info(
                "estimate: %d passages to embed (~%s), up to %d passages to read with the model server",
                to_embed, _duration(to_embed / PASSAGES_PER_SECOND), to_read,
            )  # fmt: skip
            return
        per_passage = _seconds_per_passage(self.settings.model) if self.backend is None else 0.0
        seconds = to_embed / PASSAGES_PER_SECOND + to_read * per_passage
        logger.info(
            "estimate: %d passages to embed (~%s), up to %d passages to read with the model (~%s if none is cached)",
            to_embed, _duration(to_embed / PASSAGES_PER_SECOND), to_read, _duration(to_read * per_passage),
        )  # fmt: skip
        if seconds > LONG_BUILD_SECONDS:
            logger.warning(
                "this build may take %s on this machine: --max-passages N caps the passages read, "
                "--max-entities and --top-k read fewer, --model qwen2.5-0.5b is ~1.8x faster, and a larger "
                "chunk_sentences (--config) makes fewer passages to embed",
                _duration(seconds),
            )

    def expand(
        self,
        frontier: list[str],
        retriever: Retriever,
        extractor: PassageExtractor,
        state: _BuildState,
        hop: int,
        seeds: set[str],
    ) -> None:
        """Retrieve the passages of every frontier entity, then extract the ones not read yet: all of
        the hop's at once, so a backend that serves several requests at a time is kept busy."""
        best: dict[int, float] = {}  # the best P(D|e) this hop gives each passage
        found: dict[int, Passage] = {}
        for entity in frontier:
            with self.timer("retrieve"):
                hits = retriever.retrieve(entity)
            if entity in seeds and not any(_mentions(entity, hit.passage.text) for hit in hits):
                state.seeds_not_found.append(entity)
                logger.warning("seed %r: none of the passages retrieved for it mentions it", entity)
            for hit in hits:
                pid = hit.passage.id
                if pid not in state.extractions and pid not in found:
                    if state.budget_spent(self.settings.max_passages, extra=len(found)):
                        continue
                    found[pid] = hit.passage
                best[pid] = max(best.get(pid, 0.0), hit.prob)
        for pid, weight in best.items():  # passages read in an earlier hop
            if pid in state.extractions:
                state.weights[pid] = max(state.weights.get(pid, 0.0), weight)
        with _progress(self.show_progress, rate=True) as progress:
            task = progress.add_task(f"hop {hop}: {len(frontier)} entities", total=len(found))
            read: dict[int, Extraction] = {}
            try:
                for passage, extraction in extractor.extract_many(list(found.values())):
                    read[passage.id] = self.usable(extraction, passage)
                    progress.advance(task)
            finally:  # what was read, in retrieval order (also when stopped): a backend serving several
                for pid, passage in found.items():  # at once finishes in any order, and the graph and
                    if pid in read:  # the manifest (provenance order, names, weights) must not follow it
                        state.extractions[pid], state.passages[pid], state.weights[pid] = read[pid], passage, best[pid]
        state.expanded += frontier

    def resolve(
        self,
        passages: Mapping[int, Passage],
        weights: Mapping[int, float],
        extractions: Mapping[int, Extraction],
        min_prob: float,
    ) -> ResolvedGraph:
        """Score and resolve the triples of these extractions into a graph."""
        triples = score_triples(extractions.values(), passages, weights, min_prob)
        resolver = Resolver(self.embedder, self.settings.resolve_similarity, self.schema.compatible)
        return confident(resolver.resolve(triples, self.birth_names), self.settings.min_confidence)

    def full_graph(
        self,
        state: _BuildState,
        prior: Mapping[int, float],
        passages: PassageStore,
        extractor: PassageExtractor,
        cached_only: bool = False,
    ) -> ResolvedGraph:
        """The graph of every passage read, by this build and the earlier ones that still count
        (``cached_only``: leave out the passages the model would have to read again)."""
        all_passages, weights, extractions = dict(state.passages), dict(state.weights), dict(state.extractions)
        earlier = [pid for pid in prior if pid not in extractions]
        # from the cache, unless --reextract (or a lost cache) sends them to the model again
        with _progress(self.show_progress and len(earlier) > 20) as progress:
            task = progress.add_task("passages earlier builds read", total=len(earlier))
            for pid in earlier:
                passage = passages.passage(pid)
                progress.advance(task)
                if cached_only and not extractor.is_cached(passage):
                    continue
                all_passages[pid] = passage
                extractions[pid] = self.usable(extractor.extract(passage), passage)
        for pid, weight in prior.items():
            if pid in extractions:
                weights[pid] = max(weights.get(pid, 0.0), weight)
        return self.resolve(all_passages, weights, extractions, state.min_prob)

    @staticmethod
    def write(graph: ResolvedGraph, stores: Sequence[GraphStore]) -> None:
        for store in stores:
            store.write(graph)

    def write_graph(self, graph: ResolvedGraph) -> None:
        """graph.json (the source of truth) and its GraphML export, each replaced atomically."""
        store = NetworkXStore(self.dir.graph)
        store.write(graph)
        export_graphml(store.graph, self.dir.graphml)

    def next_frontier(self, state: _BuildState) -> list[str]:
        """Entities not yet expanded, strongest first, within the --max-entities budget (chosen from
        this build's own graph, so re-running a command expands what it expanded before)."""
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

    @staticmethod
    def warn_if_empty(report: BuildReport, state: _BuildState, graph: ResolvedGraph) -> None:
        if any(not t.derived for t in graph.triples):
            return
        read = len(state.extractions)
        message = (
            f"the graph is empty: the {read} passages read gave no fact the schema accepts "
            f"({sum(1 for e in state.extractions.values() if e.error)} model outputs were invalid); "
            "check that the seeds occur in the documents and the schema fits them, or try a larger --model"
        )
        logger.warning(message)
        report.warnings.append(message)

    @staticmethod
    def _graph_info(graph: ResolvedGraph, complete: bool) -> dict[str, Any]:
        return {
            "complete": complete,
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
            "nodes": len(graph.entities),
            "edges": len(graph.triples),
        }

    def finish(
        self,
        report: BuildReport,
        state: _BuildState,
        passages: PassageStore,
        extractor: PassageExtractor,
        started: float,
        seeds: list[str],
        graph_info: dict[str, Any],
    ) -> None:
        counts = passages.counts()
        report.documents = counts["documents"]
        report.passages = counts["passages"]
        report.entities_expanded = state.expanded
        report.seeds_not_found = state.seeds_not_found
        report.passages_read = len(state.extractions)
        report.model_calls = extractor.calls
        report.invalid_outputs = sum(1 for e in state.extractions.values() if e.error)
        report.unscored_outputs = sum(1 for e in state.extractions.values() if not e.scored)
        report.nodes = graph_info.get("nodes", 0)
        report.edges = graph_info.get("edges", 0)
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
                "seeds": list(dict.fromkeys(seeds)),
                "graph": graph_info,
                "report": report.model_dump(),
            }
        )


def _seconds_per_passage(model: str) -> float:
    """Model seconds per passage on this project's 2-core machine (every member of a mixture reads
    every passage)."""
    return sum(ref.seconds_per_passage for ref in ModelRef.parse_all(model))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _BuildState:
    """What the current build has gathered: passages read, their weights and extractions, the graph
    they make, and the P(t|e,D) below which its triples are dropped
    (:func:`~kgrag.extract.factory.keep_threshold`)."""

    def __init__(self, min_prob: float) -> None:
        self.min_prob = min_prob
        self.passages: dict[int, Passage] = {}
        self.weights: dict[int, float] = {}
        self.extractions: dict[int, Extraction] = {}
        self.expanded: list[str] = []
        self.seeds_not_found: list[str] = []
        self.graph = ResolvedGraph()

    def source_weights(self) -> dict[int, float]:
        """The weights of the passages read from documents (neighbourhood documents are rewritten
        by every build, so they are not remembered)."""
        return {pid: w for pid, w in self.weights.items() if not self.passages[pid].derived}

    def budget_spent(self, max_passages: int | None, extra: int = 0) -> bool:
        """Whether the passages read (and ``extra`` about to be) reach ``max_passages``."""
        return max_passages is not None and len(self.extractions) + extra >= max_passages
