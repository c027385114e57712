"""Cypher validation with Neo4j's own parser: tools/cypher_lint (node + @neo4j-cypher/language-support).

The node packages install themselves on first use (``npm ci`` into tools/cypher_lint/node_modules,
pinned by its package-lock.json); tests skip only when node or npm is not installed at all.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "cypher_lint"
PACKAGE = TOOL / "node_modules" / "@neo4j-cypher" / "language-support" / "package.json"


def _ensure_installed() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm are not installed: cannot run Neo4j's Cypher parser")
    if not PACKAGE.exists():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=TOOL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci in {TOOL} failed:\n{done.stdout}\n{done.stderr}")
    return node


Query = str | tuple[str, dict[str, Any]]


def lint(queries: dict[str, Query]) -> dict[str, list[dict[str, Any]]]:
    """Errors (not warnings) that Neo4j's parser finds in each named query. A query is its text (with
    ``$rows`` declared) or a (text, declared parameters) pair."""
    node = _ensure_installed()
    items = [(name, *(q if isinstance(q, tuple) else (q, {"rows": []}))) for name, q in queries.items()]
    payload = {"queries": [{"name": n, "query": q, "parameters": p} for n, q, p in items]}
    done = subprocess.run(
        [node, str(TOOL / "lint.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"lint.mjs failed:\n{done.stderr}")
    return {r["name"]: r["errors"] for r in json.loads(done.stdout)["results"]}


def browser_guide_queries() -> dict[str, str]:
    """The ```cypher blocks of the Neo4j Browser guide in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```cypher\n(.*?)```", text, flags=re.S)
    return {f"guide query {i}": block.strip() for i, block in enumerate(blocks, 1)}
