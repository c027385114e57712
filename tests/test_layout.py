"""Imports run one way: cli → api → pipeline/evaluation/finetune → stages → parts → foundation.

Every module of the package is parsed with :mod:`ast` (imports inside functions and under
``TYPE_CHECKING`` count too) and each ``kgrag`` import is checked against the layers below: a
module may import its own package and anything in a lower layer, never a higher one, and
sideways only where :data:`SIDEWAYS` says so. docs/ARCHITECTURE.md draws the same map.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kgrag"

# unit (a top-level module or subpackage of kgrag) -> layer; higher layers may import lower ones
LAYERS: dict[str, int] = {
    # foundation: what every layer may use
    "kgrag": 0,  # the root package itself (``from kgrag import __version__``)
    "kgrag.errors": 0,
    "kgrag.io": 1,
    "kgrag.text": 1,
    "kgrag.records": 1,
    "kgrag.signals": 1,
    "kgrag.schema": 2,
    "kgrag.config": 2,
    "kgrag.builddir": 2,
    "kgrag.db": 2,
    # parts: documents, vectors, language models
    "kgrag.ingest": 3,
    "kgrag.index": 3,
    "kgrag.generator": 3,
    # stages of a build, and the stores they write
    "kgrag.extract": 4,
    "kgrag.graph": 4,
    "kgrag.neo4j": 4,
    # what runs the stages
    "kgrag.pipeline": 5,
    "kgrag.evaluation": 5,
    "kgrag.finetune": 5,
    # the Python API, then the command line over it
    "kgrag.api": 6,
    "kgrag.cli": 7,
}
# imports between different units of one layer that are allowed, as (importer, imported)
SIDEWAYS = {("kgrag.neo4j", "kgrag.graph")}  # Neo4j writes and exports the graph that graph/ resolves
# modules exempt from the check, with the reason
EXEMPT = {"kgrag/__init__.py": "re-exports the public API (api, config, schema) lazily"}


def unit_of(module: str) -> str:
    """``kgrag.generator.registry`` -> ``kgrag.generator``; ``kgrag.api`` -> ``kgrag.api``."""
    return ".".join(module.split(".")[:2])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every ``kgrag`` import in ``source`` (the text of ``module``), relative
    imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base == "kgrag":  # from kgrag import config / __version__
                found += [
                    (node.lineno, f"kgrag.{alias.name}" if unit_of(f"kgrag.{alias.name}") in LAYERS else "kgrag")
                    for alias in node.names
                ]
            else:
                found.append((node.lineno, base))
    return [(line, name) for line, name in found if name == "kgrag" or name.startswith("kgrag.")]


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that run against the layers."""
    importer = unit_of(module)
    wrong = []
    for line, name in imported_modules(source, module, is_package):
        target = unit_of(name)
        if target == importer or target not in LAYERS:
            continue
        up, down = LAYERS[importer], LAYERS[target]
        if down > up or (down == up and (importer, target) not in SIDEWAYS):
            wrong.append(f"{module}:{line} imports {name} (layer {down}) from layer {up}")
    return wrong


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    missing = sorted({unit_of(module_name(p)) for p in SOURCES} - set(LAYERS))
    assert not missing, f"give these a layer in tests/test_layout.py and docs/ARCHITECTURE.md: {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_run_one_way(path: Path) -> None:
    rel = str(path.relative_to(PACKAGE.parent))
    if rel in EXEMPT:
        pytest.skip(EXEMPT[rel])
    wrong = violations(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("kgrag.generator.llama_cpp", "def load():\n    from kgrag.finetune.adapter import x\n"),
        ("kgrag.extract.filters", "from kgrag.cli.common import console\n"),
        ("kgrag.index.retriever", "from kgrag.graph.score import softmax\n"),
        ("kgrag.graph.resolve", "from ..neo4j import cypher\n"),
        ("kgrag.config", "if TYPE_CHECKING:\n    from kgrag.generator.registry import DEFAULT_MODEL\n"),
    ],
)
def test_the_check_catches_imports_against_the_direction(module: str, source: str) -> None:
    assert len(violations(source, module)) == 1


def test_the_check_allows_imports_down_and_within_a_package() -> None:
    source = "from kgrag.generator.ref import ModelRef\nfrom . import spans\nfrom kgrag import __version__\n"
    assert violations(source, "kgrag.extract.factory") == []
