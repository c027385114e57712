"""``kgrag build``, ``lookup`` and ``export``: make a graph from documents, read it, write it out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kgrag.cli.common import console, err, friendly_errors, setup_logging
from kgrag.cli.options import (
    ContinueThreshold,
    LlmConcurrencyOption,
    LlmTimeoutOption,
    LlmUrlOption,
    MinConfidence,
    MinTripleProb,
    ModelOption,
    SchemaOption,
    ThreadsOption,
    setting_default,
)
from kgrag.errors import KgragError


def _read_seeds(seeds: list[str], seeds_file: Path | None) -> list[str]:
    names = list(seeds)
    if seeds_file is not None:
        try:
            lines = seeds_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise KgragError(f"cannot read seeds file {seeds_file}: {exc}") from exc
        names += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return names


@friendly_errors
def build(
    inputs: Annotated[list[Path], typer.Argument(help="document files or folders")],
    out: Annotated[Path, typer.Option("--out", "-o", help="build directory")] = Path("build/kg"),
    seeds: Annotated[
        list[str], typer.Option("--seeds", "-s", help="seed entity (repeatable; none: the build's remembered seeds)")
    ] = [],  # noqa: B006
    seeds_file: Annotated[Optional[Path], typer.Option(help="file with one seed entity per line")] = None,
    schema: SchemaOption = None,
    config: Annotated[Optional[Path], typer.Option(help="settings YAML (CLI options override it)")] = None,
    hops: Annotated[Optional[int], typer.Option(help="expansion rounds", show_default=setting_default("hops"))] = None,
    max_entities: Annotated[
        Optional[int], typer.Option(help="most entities expanded", show_default=setting_default("max_entities"))
    ] = None,
    max_passages: Annotated[
        Optional[int], typer.Option(min=1, help="most passages read with the model (default: no cap)")
    ] = None,
    model: ModelOption = None,
    llm_url: LlmUrlOption = None,
    llm_concurrency: LlmConcurrencyOption = None,
    llm_timeout: LlmTimeoutOption = None,
    top_k: Annotated[
        Optional[int], typer.Option(help="passages retrieved per entity", show_default=setting_default("top_k"))
    ] = None,
    threads: ThreadsOption = None,
    open_relations: Annotated[
        Optional[bool],
        typer.Option(help="allow relations outside the schema", show_default=setting_default("open_relations")),
    ] = None,
    continue_threshold: ContinueThreshold = None,
    min_triple_prob: MinTripleProb = None,
    min_confidence: MinConfidence = None,
    push: Annotated[bool, typer.Option("--push", help="also write to Neo4j as it builds")] = False,
    seeds_only: Annotated[
        bool, typer.Option("--seeds-only", help="forget earlier builds' seeds and passages: the graph of these seeds")
    ] = False,
    reset: Annotated[
        bool,
        typer.Option("--reset", help="start the build over from these inputs (may change --model or --schema)"),
    ] = False,
    reextract: Annotated[
        bool, typer.Option("--reextract", help="keep the build, read its passages again with a new model or schema")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build a knowledge graph from documents and seed entities, adding to what OUT already holds.

    Later builds add seeds, documents and hops; a fact goes only when its documents change (or --seeds-only, --reset).

    An interrupted build resumes when the same command is run again. Defaults in parentheses are the settings' own:
    a --config YAML or KGRAG_* variables replace them.
    """
    from kgrag.api import KnowledgeGraph
    from kgrag.config import Settings

    setup_logging(verbose)
    settings = Settings.load(
        config,
        schema_path=schema,
        hops=hops,
        max_entities=max_entities,
        max_passages=max_passages,
        model=model,
        llm_url=llm_url,
        llm_concurrency=llm_concurrency,
        llm_timeout_s=llm_timeout,
        top_k=top_k,
        n_threads=threads,
        open_relations=open_relations,
        continue_threshold=continue_threshold,
        min_triple_prob=min_triple_prob,
        min_confidence=min_confidence,
    )
    kg = KnowledgeGraph.build(
        inputs,
        _read_seeds(seeds, seeds_file),
        out,
        settings=settings,
        push=push,
        seeds_only=seeds_only,
        reset=reset,
        reextract=reextract,
    )
    report = kg.report
    table = Table(title=f"built {out}", show_header=False)
    for label, value in [
        ("documents / passages", f"{report.documents} / {report.passages}"),
        ("entities expanded", str(len(report.entities_expanded))),
        ("passages read / sent to the model", f"{report.passages_read} / {report.model_calls}"),
        ("invalid model outputs", str(report.invalid_outputs)),
        *([("outputs without token probabilities", str(report.unscored_outputs))] if report.unscored_outputs else []),
        ("nodes / edges", f"{report.nodes} / {report.edges}"),
        ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items())),
        ("GraphML", str(kg.dir.graphml)),
    ]:
        table.add_row(label, value)
    console.print(table)
    if report.seeds_not_found:
        names = ", ".join(repr(s) for s in report.seeds_not_found)
        err.print(f"[yellow]warning:[/yellow] no passage retrieved for {names} mentions it", soft_wrap=True)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)


@friendly_errors
def lookup(
    build_dir: Annotated[Path, typer.Argument(help="build directory")],
    name: Annotated[str, typer.Argument(help="entity name (case and alias tolerant)")],
    limit: Annotated[int, typer.Option(help="most facts shown")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="print the entity as JSON")] = False,
) -> None:
    """Facts about an entity, with their sources."""
    from kgrag.api import KnowledgeGraph

    kg = KnowledgeGraph.open(build_dir)
    found = kg.match(name)
    if found is None:
        suggestions = kg.suggest(name)
        hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
        raise KgragError(f"no entity matching {name!r} in {build_dir}{hint}")
    entity = kg.entity(found.key)
    if found.how == "closest":  # on stderr, so --json stays pure JSON
        err.print(f"showing {entity.name} (closest match to {name!r})", markup=False, highlight=False, soft_wrap=True)
    elif found.how == "alias":
        err.print(f"{name!r} is an alias of {entity.name}", markup=False, highlight=False, soft_wrap=True)
    if json_out:
        sys.stdout.write(entity.model_dump_json(indent=1) + "\n")
        return
    aliases = f"  aka {', '.join(entity.aliases)}" if entity.aliases else ""
    console.print(f"[bold]{escape(entity.name)}[/bold] ({escape(entity.type)}){escape(aliases)}", highlight=False)
    table = Table("relation", "entity", "conf.", "evidence")
    for fact in entity.facts[:limit]:
        arrow = f"{fact.relation} →" if fact.direction == "out" else f"← {fact.relation}"
        source, text = kg.evidence_text(fact.sources[0]) if fact.sources else ("", "")
        mark = " (derived)" if fact.derived else ""
        table.add_row(  # Text cells: names and evidence such as "[citation needed]" are not markup
            Text(arrow),
            Text(f"{fact.target} ({fact.target_type})"),
            f"{fact.confidence:.2f}{mark}",
            Text(f"{Path(source).name}: “{' '.join(text.split())[:160]}”"),
        )
    console.print(table)


@friendly_errors
def export(
    build_dir: Annotated[Path, typer.Argument(help="build directory")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="graphml, json, cypher or neo4j-csv")] = "graphml",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="file to write")] = None,
) -> None:
    """Export a built graph: GraphML (Gephi/yEd/NetworkX), node-link JSON, a Cypher script or neo4j-admin CSVs."""
    from kgrag.api import KnowledgeGraph

    path = KnowledgeGraph.open(build_dir).export(fmt, output)
    console.print(f"wrote {path}", highlight=False)
