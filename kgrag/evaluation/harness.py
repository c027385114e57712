"""``kgrag eval --task extract``: run the build's extractor on a JSONL benchmark and score it.

Each example's text is one passage (or, with ``chunked``, the passages the build's
:class:`~kgrag.ingest.chunker.Chunker` cuts it into) for the same
:class:`~kgrag.extract.extractor.Extractor`, prompt, schema and post-filter
(:func:`~kgrag.extract.filters.usable_triples`) that ``kgrag build`` uses, and the build's
confidence threshold (:func:`~kgrag.extract.factory.keep_threshold`); there is no
evaluation-only extractor. A bad example (unreadable line, extractor error) is
counted and logged, never fatal; Ctrl-C stops the loop and the report covers the finished examples.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from kgrag import __version__
from kgrag.config import PROMPT_VERSION, Settings
from kgrag.errors import KgragError
from kgrag.evaluation.metrics import (
    PRF,
    Counts,
    add_counts,
    alias_map,
    entity_counts,
    gold_entities,
    key_function,
    macro_f1,
    prf,
    relation_counts,
    triple_counts,
)
from kgrag.extract.cache import ExtractionCache
from kgrag.extract.ensemble import PassageExtractor
from kgrag.extract.factory import keep_threshold, make_extractor
from kgrag.extract.filters import usable_triples
from kgrag.extract.spans import VERSION as SNAP_VERSION
from kgrag.extract.spans import snap_to_text
from kgrag.generator.base import GeneratorBackend
from kgrag.ingest.chunker import Chunker
from kgrag.io import read_lines, sha256_file
from kgrag.records import Document, ExtractedTriple, Extraction, Passage
from kgrag.schema import GraphSchema

logger = logging.getLogger(__name__)

MODES = ("strict", "normalized")


class Example(BaseModel):
    """One benchmark line (extra dataset fields are ignored)."""

    id: str
    text: str
    triples: list[tuple[str, str, str]] = Field(default_factory=list)
    entities: list[Any] | None = None


class RelationRow(BaseModel):
    relation: str  # as the gold data spells it (or the prediction, for relations gold never uses)
    gold: int
    predicted: int
    strict: PRF
    normalized: PRF


class MacroF1(BaseModel):
    strict: float
    normalized: float


class EvalConfig(BaseModel):
    """Everything that produced the figures, so that a report can be reproduced and compared."""

    model: str
    model_identity: str  # name@sha256 prefix of the weights
    schema_name: str
    schema_path: str
    schema_fingerprint: str
    prompt_version: str
    extraction: dict[str, Any]  # Settings.extraction_fingerprint(): what changes a passage's output
    n_threads: int
    dataset: str
    dataset_sha256: str
    limit: int | None
    sample: int | None = None  # examples drawn at random (seeded) instead of the first `limit`
    seed: int | None = None
    kgrag_version: str
    demos: str | None = None  # training file of the retrieved few-shot demonstrations, if any
    demos_sha256: str | None = None
    n_demos: int = 0
    snapping: str | None = None  # version of the name snapping before the filter (kgrag.extract.spans)
    chunked: bool = False  # each example cut into the build's passages (chunk_sentences, chunk_overlap)
    min_prob: float = 0.0  # P(t|e,D) under which a triple is dropped, as in build (extract.factory.keep_threshold)


class EvalReport(BaseModel):
    """Figures of one ``kgrag eval --task extract`` run; the micro scores come first."""

    strict: PRF
    normalized: PRF
    per_relation: list[RelationRow]
    macro_f1: MacroF1
    invalid: int  # examples whose model output was invalid or cut off (their valid triples still count)
    examples_per_s: float  # examples / (wall seconds - model load seconds)
    config: EvalConfig
    examples: int  # examples attempted
    failed: int  # examples that could not be read or raised an error (scored as predicting nothing)
    filtered: int  # predicted triples dropped by the schema/grounding filter (after name snapping)
    below_threshold: int = 0  # usable triples dropped because their P(t|e,D) was under config.min_prob
    unfiltered: dict[str, PRF]  # strict/normalized micro scores of the raw output, before snapping and filter
    entities: PRF | None = None  # names, normalized and alias-aware; where gold entities exist
    entities_typed: PRF | None = None  # names and types; where gold types are the schema's types
    cached: int = 0  # examples answered by the extraction cache
    seconds: float = 0.0
    load_seconds: float = 0.0
    interrupted: bool = False


def sample_lines(lines: list[str], n: int, seed: int) -> list[str]:
    """``n`` lines drawn at random with ``seed``, kept in file order (all of them when n >= len)."""
    if n >= len(lines):
        return lines
    chosen = sorted(random.Random(seed).sample(range(len(lines)), n))
    return [lines[i] for i in chosen]


def plain(triples: list[ExtractedTriple]) -> list[tuple[str, str, str]]:
    return [(t.head, t.relation, t.tail) for t in triples]


class _Tally:
    """Running counts of a run."""

    def __init__(self, schema: GraphSchema) -> None:
        self.entity_types = set(schema.entity_type_names)
        self.total = {m: Counts() for m in MODES}
        self.raw = {m: Counts() for m in MODES}
        self.by_relation: dict[str, dict[str, Counts]] = {m: {} for m in MODES}
        self.spelling: dict[str, str] = {}  # case-folded relation -> display name
        self.entities: Counts | None = None
        self.entities_typed: Counts | None = None
        self.examples = self.failed = self.invalid = self.filtered = self.below_threshold = self.cached = 0

    def add(self, example: Example, kept: list[ExtractedTriple], raw: list[ExtractedTriple]) -> dict[str, int]:
        """Score one example; returns its true positives per mode."""
        for _, relation, _ in example.triples:
            self.spelling.setdefault(" ".join(relation.split()).casefold(), relation)
        for t in kept:
            self.spelling.setdefault(" ".join(t.relation.split()).casefold(), t.relation)
        golds = gold_entities(example.entities) if example.entities is not None else None
        aliases = alias_map(golds) if golds else None
        hits = {}
        for mode in MODES:
            key = key_function(mode, aliases)
            counts = triple_counts(example.triples, plain(kept), key)
            self.total[mode] += counts
            self.raw[mode] += triple_counts(example.triples, plain(raw), key)
            add_counts(self.by_relation[mode], relation_counts(example.triples, plain(kept), key))
            hits[mode] = counts.tp
        if golds is not None:
            predicted = {(n, ty) for t in kept for n, ty in ((t.head, t.head_type), (t.tail, t.tail_type))}
            self.entities = (self.entities or Counts()) + entity_counts(golds, predicted)
            if golds and all(e.type in self.entity_types for e in golds):
                typed = entity_counts(golds, predicted, typed=True)
                self.entities_typed = (self.entities_typed or Counts()) + typed
        return hits

    def per_relation(self) -> list[RelationRow]:
        names = sorted(set(self.by_relation["strict"]) | set(self.by_relation["normalized"]))
        rows = []
        for name in names:
            strict = self.by_relation["strict"].get(name, Counts())
            normalized = self.by_relation["normalized"].get(name, Counts())
            rows.append(
                RelationRow(
                    relation=self.spelling.get(name, name),
                    gold=normalized.gold,
                    predicted=normalized.predicted,
                    strict=prf(strict),
                    normalized=prf(normalized),
                )
            )
        return sorted(rows, key=lambda r: (-r.gold, r.relation))


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not show,
    )


@contextmanager
def _open_predictions(path: Path | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise KgragError(f"cannot write predictions {path}: {exc}") from exc
    with handle:
        yield handle


def _write(handle: IO[str] | None, record: dict[str, Any]) -> None:
    if handle is not None:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()


def evaluate_extraction(
    data: Path,
    settings: Settings,
    *,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    predictions: Path | None = None,
    backend: GeneratorBackend | None = None,
    cache: ExtractionCache | None = None,
    show_progress: bool = True,
    demos: Path | None = None,
    n_demos: int = 4,
    chunked: bool = False,
) -> EvalReport:
    """Run the extractor over the first ``limit`` examples of ``data`` (or ``sample`` of them drawn
    with ``seed``: WebNLG's first examples all share one category) and score its triples.

    ``predictions`` (JSONL) receives, per example, the gold triples beside the predicted ones, the
    triples the filter dropped (as generated) and the names snapped to the text's spelling. The
    backend defaults to the settings' llama.cpp model (several, comma-separated: their mixture).
    ``demos`` (a training JSONL) replaces the schema's examples by the ``n_demos`` training examples
    most similar to each input (:class:`~kgrag.extract.demos.DemoRetriever`).
    ``chunked`` cuts each example into the passages ``kgrag build`` would make of it (the settings'
    ``chunk_sentences`` and ``chunk_overlap``), extracts each, and scores the union against the
    example's gold: for document-level data (Re-DocRED), where one prompt's ``max_triples`` would
    cap recall far below the gold count."""
    data = Path(data)
    schema = GraphSchema.load(settings.schema_path)
    lines = read_lines(data, limit)
    if sample is not None:
        lines = sample_lines(lines, sample, seed)
    retriever = None
    if demos is not None:
        from kgrag.extract.demos import DemoRetriever

        if Path(demos).resolve() == data.resolve():
            raise KgragError(f"the demonstrations file {demos} is the evaluated dataset itself")
        retriever = DemoRetriever(demos, schema)
    extractor = make_extractor(settings, schema, cache, backend, retriever, n_demos)
    min_prob = keep_threshold(settings, extractor)
    config = EvalConfig(
        model=settings.model,
        model_identity=extractor.identity,
        schema_name=schema.name,
        schema_path=str(settings.schema_path),
        schema_fingerprint=schema.fingerprint(),
        prompt_version=PROMPT_VERSION,
        extraction=settings.extraction_fingerprint(),
        n_threads=settings.n_threads,
        dataset=str(data),
        dataset_sha256=sha256_file(data),
        limit=limit,
        sample=sample,
        seed=seed if sample is not None else None,
        kgrag_version=__version__,
        demos=str(demos) if retriever is not None else None,
        demos_sha256=retriever.sha256 if retriever is not None else None,
        n_demos=n_demos if retriever is not None else 0,
        snapping=SNAP_VERSION,
        chunked=chunked,
        min_prob=min_prob,
    )
    chunker = Chunker(settings.chunk_sentences, settings.chunk_overlap) if chunked else None
    tally = _Tally(schema)
    load_seconds = 0.0
    interrupted = False
    started = time.perf_counter()
    with _open_predictions(predictions) as out, _progress(show_progress) as progress:
        task = progress.add_task(data.name, total=len(lines))
        # a backend that serves several passages at once gets a window of examples together
        width = 4 * extractor.parallelism if extractor.parallelism > 1 else 1
        try:
            for start in range(0, len(lines), width):
                window = lines[start : start + width]
                load_seconds += _window(start, window, extractor, schema, tally, out, chunker, min_prob)
                f1 = prf(tally.total["strict"]).f1
                progress.update(task, advance=len(window), description=f"{data.name}  strict F1 {f1:.3f}")
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("interrupted after %d of %d examples; the report covers those", tally.examples, len(lines))
    seconds = time.perf_counter() - started
    busy = max(seconds - load_seconds, 1e-9)
    return EvalReport(
        strict=prf(tally.total["strict"]),
        normalized=prf(tally.total["normalized"]),
        per_relation=tally.per_relation(),
        macro_f1=MacroF1(**{m: macro_f1(tally.by_relation[m]) for m in MODES}),
        invalid=tally.invalid,
        examples_per_s=tally.examples / busy,
        config=config,
        examples=tally.examples,
        failed=tally.failed,
        filtered=tally.filtered,
        below_threshold=tally.below_threshold,
        unfiltered={m: prf(tally.raw[m]) for m in MODES},
        entities=prf(tally.entities) if tally.entities is not None else None,
        entities_typed=prf(tally.entities_typed) if tally.entities_typed is not None else None,
        cached=tally.cached,
        seconds=seconds,
        load_seconds=load_seconds,
        interrupted=interrupted,
    )


def _passages(i: int, example: Example, chunker: Chunker | None) -> list[Passage]:
    """The example's text as one passage, or as the build's passages of it."""
    whole = Passage(id=i, doc_id=example.id, start=0, end=len(example.text), text=example.text)
    if chunker is None:
        return [whole]
    document = Document(id=example.id, source=example.id, title=example.id, text=example.text)
    return chunker.chunk([document]) or [whole]


def _merge(passages: list[Passage], parts: dict[int, Extraction], example_id: str) -> Extraction:
    """One extraction holding the triples of every passage, in passage order; the first error (if
    any) is kept."""
    merged = Extraction(passage_id=passages[0].id)
    for passage in passages:
        part = parts[passage.id]
        merged.triples += part.triples
        merged.seconds += part.seconds
        merged.completion_tokens += part.completion_tokens
        merged.prompt_tokens += part.prompt_tokens
        if part.error and merged.error is None:
            merged.error = part.error if len(passages) == 1 else f"passage {passage.start}-{passage.end}: {part.error}"
            logger.debug("example %s: %s", example_id, merged.error)
    return merged


def _extract_each(
    extractor: PassageExtractor, jobs: list[tuple[Example, list[Passage]]]
) -> list[Extraction | Exception]:
    """Each example's extraction (or why it failed), its passages read together with the other
    examples' (a backend serving several at once gets them all); when reading them together fails,
    each example is read alone, so one bad example never takes the others with it."""
    if len(jobs) > 1:
        every = [p for _, passages in jobs for p in passages]
        flat = [p.model_copy(update={"id": n}) for n, p in enumerate(every)]  # ids unique across examples
        try:
            parts = {passage.id: part for passage, part in extractor.extract_many(flat)}
        except Exception as exc:  # retried one example at a time below
            logger.debug("reading %d examples together failed (%s); reading each alone", len(jobs), exc)
        else:
            results: list[Extraction | Exception] = []
            offset = 0
            for example, passages in jobs:
                mine = {p.id: parts[offset + k] for k, p in enumerate(passages)}
                results.append(_merge(passages, mine, example.id))
                offset += len(passages)
            return results
    results = []
    for example, passages in jobs:
        try:
            parts = {passage.id: part for passage, part in extractor.extract_many(passages)}
            results.append(_merge(passages, parts, example.id))
        except Exception as exc:  # one bad example never stops the run
            results.append(exc)
    return results


def _window(
    start: int,
    lines: list[str],
    extractor: PassageExtractor,
    schema: GraphSchema,
    tally: _Tally,
    out: IO[str] | None,
    chunker: Chunker | None = None,
    min_prob: float = 0.0,
) -> float:
    """Extract and score examples ``start``… (``lines``); returns the seconds spent loading the
    model, if it loaded."""
    read: list[tuple[int, Example | str]] = []  # each line's example, or why it is unreadable
    for i, line in enumerate(lines, start):
        try:
            read.append((i, Example.model_validate_json(line)))
        except ValidationError as exc:
            read.append((i, exc.errors()[0]["msg"]))
    jobs = [(example, _passages(i, example, chunker)) for i, example in read if isinstance(example, Example)]
    was_loaded = extractor.loaded
    cached = [all(extractor.is_cached(p) for p in passages) for _, passages in jobs]
    started = time.perf_counter()
    results = _extract_each(extractor, jobs)
    wall = time.perf_counter() - started
    outcomes = iter(zip(results, cached))
    for i, example in read:  # in file order
        if isinstance(example, str):
            tally.examples += 1
            tally.failed += 1
            logger.warning("example %d: unreadable line: %s", i, example)
            _write(out, {"line": i, "error": f"unreadable line: {example}"})
        else:
            _score(i, example, *next(outcomes), schema, tally, out, min_prob)
    if was_loaded or not extractor.loaded:
        return 0.0
    return max(wall - max((r.seconds for r in results if isinstance(r, Extraction)), default=0.0), 0.0)


def _score(
    i: int,
    example: Example,
    result: Extraction | Exception,
    cached: bool,
    schema: GraphSchema,
    tally: _Tally,
    out: IO[str] | None,
    min_prob: float,
) -> None:
    """Score example ``i``'s extraction (or count its failure) and write its prediction line."""
    error: str | None = None
    if isinstance(result, Exception):
        logger.warning("example %s: extraction failed: %s", example.id, result)
        extraction = Extraction(passage_id=i, error=f"failed: {result}")
        error = extraction.error
        tally.failed += 1
    else:
        extraction = result
    tally.examples += 1
    tally.cached += int(cached)
    if extraction.error and error is None:
        tally.invalid += 1
    usable = usable_triples(extraction.triples, schema, example.text)
    kept = [t for t in usable if t.prob >= min_prob]
    tally.below_threshold += len(usable) - len(kept)
    dropped = [t for t in extraction.triples if not usable_triples([t], schema, example.text)]
    names = dict.fromkeys(name for t in extraction.triples for name in (t.head, t.tail))
    snapped = [[name, spelled] for name in names if (spelled := snap_to_text(name, example.text)) != name]
    tally.filtered += len(dropped)
    hits = tally.add(example, kept, extraction.triples)
    _write(
        out,
        {
            "id": example.id,
            "text": example.text,
            "gold": [list(t) for t in example.triples],
            "predicted": [list(t) for t in plain(kept)],
            # everything the model wrote, in order, with P(t|D) and P(continue) before it
            "generated": [t.model_dump(mode="json") for t in extraction.triples],
            "dropped": [[t.head, t.head_type, t.relation, t.tail, t.tail_type] for t in dropped],
            "snapped": snapped,  # [generated name, the passage's spelling it was replaced by]
            "tp": hits,
            "error": extraction.error,
        },
    )
