"""The ``kgrag eval`` command: score extraction (or the verbaliser) on a JSONL benchmark."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from kgrag.cli.common import friendly_errors, setup_logging
from kgrag.cli.options import (
    ContinueThreshold,
    LlmConcurrencyOption,
    LlmTimeoutOption,
    LlmUrlOption,
    MinTripleProb,
    ModelOption,
    SchemaOption,
    ThreadsOption,
    setting_default,
)
from kgrag.errors import KgragError

if TYPE_CHECKING:
    from kgrag.evaluation.harness import EvalReport
    from kgrag.evaluation.verbalise_eval import VerbaliseReport

logger = logging.getLogger(__name__)


class Task(StrEnum):
    extract = "extract"
    verbalise = "verbalise"


def eval_command(
    data: Annotated[Path, typer.Argument(help="benchmark JSONL, one {id, text, triples} object per line")],
    schema: SchemaOption = None,
    model: ModelOption = None,
    llm_url: LlmUrlOption = None,
    llm_concurrency: LlmConcurrencyOption = None,
    llm_timeout: LlmTimeoutOption = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="first N examples (triple sets for verbalise)")] = None,
    sample: Annotated[
        Optional[int],
        typer.Option(min=1, help="N examples drawn at random (seeded, in file order) instead of the first N"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of --sample")] = 0,
    report: Annotated[Optional[Path], typer.Option(help="write the JSON report here")] = None,
    predictions: Annotated[Optional[Path], typer.Option(help="write per-example predictions (JSONL) here")] = None,
    task: Annotated[Task, typer.Option(help="extract: triples from text; verbalise: text from triples")] = Task.extract,
    config: Annotated[Optional[Path], typer.Option(help="settings YAML (CLI options override it)")] = None,
    threads: ThreadsOption = None,
    max_triples: Annotated[
        Optional[int], typer.Option(help="most triples per example", show_default=setting_default("max_triples"))
    ] = None,
    continue_threshold: ContinueThreshold = None,
    min_triple_prob: MinTripleProb = None,
    cache: Annotated[
        Optional[Path], typer.Option(help="extraction cache (SQLite) to reuse; off by default so timings are real")
    ] = None,
    relations: Annotated[int, typer.Option(help="rows of the per-relation table shown")] = 15,
    demos: Annotated[
        Optional[Path],
        typer.Option(help="training JSONL: use its most similar examples as few-shot demos (never the dev data)"),
    ] = None,
    n_demos: Annotated[int, typer.Option(min=0, help="demonstrations per input with --demos")] = 4,
    chunked: Annotated[
        bool,
        typer.Option(
            "--chunked",
            help="cut each text into the build's passages and score their union (document-level data: Re-DocRED)",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Measure extraction quality (P/R/F1) or verbaliser quality (BLEU, ROUGE-L) on a benchmark.

    Defaults in parentheses are the settings' own: a --config YAML or KGRAG_* variables replace them."""
    setup_logging(verbose)
    settings = {
        "schema_path": schema,
        "model": model,
        "llm_url": llm_url,
        "llm_concurrency": llm_concurrency,
        "llm_timeout_s": llm_timeout,
        "n_threads": threads,
        "max_triples": max_triples,
        "continue_threshold": continue_threshold,
        "min_triple_prob": min_triple_prob,
    }
    friendly_errors(_run)(
        data,
        settings,
        limit,
        report,
        predictions,
        task,
        config,
        cache,
        relations,
        demos,
        n_demos,
        chunked,
        sample,
        seed,
    )


def _run(
    data: Path,
    overrides: dict[str, Any],
    limit: int | None,
    report: Path | None,
    predictions: Path | None,
    task: Task,
    config: Path | None,
    cache: Path | None,
    relations: int,
    demos: Path | None = None,
    n_demos: int = 4,
    chunked: bool = False,
    sample: int | None = None,
    seed: int = 0,
) -> None:
    """``overrides``: the options that fill :class:`~kgrag.config.Settings` (None: not given)."""
    console = Console()
    if not data.is_file():
        raise KgragError(f"no dataset file {data}")
    if task is Task.verbalise:
        from kgrag.evaluation.verbalise_eval import evaluate_verbaliser

        logging.getLogger("absl").setLevel(logging.WARNING)  # rouge-score's "Using default tokenizer."
        result = evaluate_verbaliser(data, limit=limit, predictions=predictions)
        _save(result, report)
        console.print(verbalise_table(result))
        return

    from kgrag.config import Settings
    from kgrag.evaluation.harness import evaluate_extraction
    from kgrag.extract.cache import ExtractionCache

    if sample is not None and limit is not None:
        raise KgragError("--limit and --sample exclude each other: give one")
    settings = Settings.load(config, **overrides)
    store = ExtractionCache(cache) if cache is not None else None
    try:
        result = evaluate_extraction(
            data,
            settings,
            limit=limit,
            sample=sample,
            seed=seed,
            predictions=predictions,
            cache=store,
            demos=demos,
            n_demos=n_demos,
            chunked=chunked,
        )
    finally:
        if store is not None:
            store.close()
    _save(result, report)
    console.print(extraction_table(result))
    if result.per_relation:
        console.print(relation_table(result, relations))
    if result.interrupted:
        Console(stderr=True).print("[yellow]interrupted:[/yellow] the report covers the examples finished so far")
        raise typer.Exit(130)


def _save(result: BaseModel, path: Path | None) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.model_dump_json(indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise KgragError(f"cannot write report {path}: {exc}") from exc
    logger.info("wrote %s", path)


def _f(value: float) -> str:
    return f"{value:.3f}"


def extraction_table(result: EvalReport) -> Table:
    c = result.config
    table = Table(
        "match", "P", "R", "F1", "tp / pred / gold", title=f"{Path(c.dataset).name} · {c.model} · {c.schema_name}"
    )
    rows = [("strict", result.strict), ("normalized", result.normalized)]
    rows += [(f"{mode} (unfiltered)", scores) for mode, scores in result.unfiltered.items()]
    if result.entities is not None:
        rows.append(("entities", result.entities))
    if result.entities_typed is not None:
        rows.append(("entities + type", result.entities_typed))
    for name, s in rows:
        table.add_row(name, _f(s.precision), _f(s.recall), _f(s.f1), f"{s.tp} / {s.predicted} / {s.gold}")
    table.caption = (
        f"{result.examples} examples ({result.failed} failed, {result.invalid} invalid outputs, {result.cached} cached)"
        f" · {result.filtered} triples filtered, {result.below_threshold} under P(t|D) {c.min_prob:g}"
        f" · macro F1 strict {_f(result.macro_f1.strict)}"
        f" normalized {_f(result.macro_f1.normalized)} · {result.examples_per_s:.2f} examples/s"
    )
    return table


def relation_table(result: EvalReport, limit: int) -> Table:
    table = Table("relation", "gold", "pred", "strict F1", "norm. P", "norm. R", "norm. F1", title="per relation")
    for row in result.per_relation[:limit]:
        n = row.normalized
        table.add_row(
            row.relation, str(row.gold), str(row.predicted), _f(row.strict.f1), _f(n.precision), _f(n.recall), _f(n.f1)
        )
    if len(result.per_relation) > limit:
        table.caption = f"{len(result.per_relation) - limit} more relations in the JSON report"
    return table


def verbalise_table(result: VerbaliseReport) -> Table:
    table = Table("metric", "value", title=f"verbaliser · {Path(result.config.dataset).name}")
    table.add_row("BLEU (0-100)", f"{result.bleu:.2f}")
    table.add_row("ROUGE-L P / R / F1", " / ".join(_f(x) for x in result.rouge_l.model_dump().values()))
    table.add_row("triple sets / references", f"{result.sets} / {result.references}")
    table.add_row("sacrebleu signature", result.config.bleu_signature)
    return table
