"""Looking entities up by name: how a name matched (exact, alias, closest) and suggestions on a miss,
in the Python API and in ``kgrag lookup``, on a small hand-made graph."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrag.api import KnowledgeGraph
from kgrag.cli import app
from kgrag.errors import KgragError
from kgrag.graph.networkx_store import NetworkXStore
from kgrag.records import Entity, NameMatch, ResolvedGraph, Triple

MARIE, PIERRE, WARSAW, PARIS_CITY, PARIS_MYTH = (
    "person:marie curie",
    "person:pierre curie",
    "location:warsaw",
    "location:paris",
    "person:paris",
)


def edge(head: str, relation: str, tail: str, confidence: float = 0.8) -> Triple:
    types = {MARIE: "Person", PIERRE: "Person", WARSAW: "Location", PARIS_CITY: "Location", PARIS_MYTH: "Person"}
    return Triple(
        head=head,
        head_type=types[head],
        relation=relation,
        tail=tail,
        tail_type=types[tail],
        confidence=confidence,
    )


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    """A build directory holding only graph.json: all that lookup needs."""
    graph = ResolvedGraph(
        entities=[
            Entity(key=MARIE, name="Marie Curie", type="Person", aliases=["Maria Salomea Skłodowska"]),
            Entity(key=PIERRE, name="Pierre Curie", type="Person"),
            Entity(key=WARSAW, name="Warsaw", type="Location", aliases=["Warszawa"]),
            Entity(key=PARIS_CITY, name="Paris", type="Location"),
            Entity(key=PARIS_MYTH, name="Paris", type="Person", aliases=["Alexander [of Troy]"]),
        ],
        triples=[
            edge(MARIE, "spouse", PIERRE),
            edge(MARIE, "born_in", WARSAW, 0.9),
            edge(MARIE, "lived_in", PARIS_CITY),
            edge(PIERRE, "lived_in", PARIS_CITY),
        ],
    )
    root = tmp_path / "build"
    root.mkdir()
    NetworkXStore(root / "graph.json").write(graph)
    return root


# -- the Python API ------------------------------------------------------------------------------------


def test_match_says_how(build_dir: Path) -> None:
    kg = KnowledgeGraph.open(build_dir)
    cases = {
        "Marie Curie": (MARIE, "exact"),
        "  the MARIE curie ": (MARIE, "exact"),  # case, spaces and articles do not make it inexact
        "Maria Salomea Skłodowska": (MARIE, "alias"),  # a recorded alias
        "maria salomea SKŁODOWSKA": (MARIE, "alias"),
        "Marie Skłodowska Curie": (MARIE, "alias"),  # the name with a middle word added
        "Warszawa": (WARSAW, "alias"),
        "Mari Curie": (MARIE, "closest"),  # a typo
        "Pierre Curiee": (PIERRE, "closest"),
    }
    for query, (key, how) in cases.items():
        found = kg.match(query)
        assert found is not None, query
        assert (found.key, found.how, found.query) == (key, how, query)
    assert kg.match("Albert Einstein") is None
    assert kg.match("") is None


def test_match_lists_every_entity_of_the_name_best_connected_first(build_dir: Path) -> None:
    kg = KnowledgeGraph.open(build_dir)
    found = kg.match("paris")
    assert found == NameMatch(query="paris", keys=[PARIS_CITY, PARIS_MYTH], how="exact")
    assert kg.find("paris") == found.keys


def test_lookup_and_find_keep_their_contract(build_dir: Path) -> None:
    kg = KnowledgeGraph.open(build_dir)
    for query in ["Marie Curie", "Maria Salomea Skłodowska", "Mari Curie"]:
        entity = kg.lookup(query)
        assert entity is not None and entity.key == MARIE, query
        assert kg.find(query) == [MARIE]
    assert kg.lookup("Albert Einstein") is None and kg.find("Albert Einstein") == []
    marie = kg.entity(MARIE)
    assert marie == kg.lookup("Marie Curie")
    assert [f.relation for f in marie.facts] == ["born_in", "lived_in", "spouse"]
    with pytest.raises(KgragError, match="no entity with key 'person:nobody'"):
        kg.entity("person:nobody")


def test_suggest_offers_canonical_names(build_dir: Path) -> None:
    kg = KnowledgeGraph.open(build_dir)
    assert kg.suggest("Curie") == ["Marie Curie", "Pierre Curie"]
    assert kg.suggest("Curie", n=1) == ["Marie Curie"]  # the better connected of two equally close
    assert kg.suggest("Marie") == ["Marie Curie"]
    assert kg.suggest("Skłodowsky") == ["Marie Curie"]  # close to a word of an alias
    assert kg.suggest("Warszaw") == ["Warsaw"]  # close to the alias, offered by its canonical name
    assert kg.suggest("Parris") == ["Paris"]  # two entities of one name, offered once
    assert kg.suggest("Albert Einstein") == []
    assert kg.suggest("") == []


# -- kgrag lookup --------------------------------------------------------------------------------------


def lookup(build_dir: Path, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``kgrag lookup BUILD_DIR ARGS``, ANSI styling stripped."""
    result = CliRunner().invoke(app, ["lookup", str(build_dir), *args], env={"COLUMNS": "200"})
    plain = partial(re.sub, r"\x1b\[[0-9;]*m", "")
    return result.exit_code, plain(result.stdout), plain(result.stderr)


def test_cli_exact_match_says_nothing_more(build_dir: Path) -> None:
    code, out, err = lookup(build_dir, "marie curie")
    assert code == 0, err
    assert err == ""
    assert out.splitlines()[0] == "Marie Curie (Person)  aka Maria Salomea Skłodowska"
    assert "born_in →" in out and "Warsaw (Location)" in out


def test_cli_says_when_it_shows_the_closest_match(build_dir: Path) -> None:
    code, out, err = lookup(build_dir, "Mari Curie")
    assert code == 0, err
    assert err == "showing Marie Curie (closest match to 'Mari Curie')\n"
    assert out.startswith("Marie Curie (Person)")


def test_cli_says_when_the_name_is_an_alias(build_dir: Path) -> None:
    code, out, err = lookup(build_dir, "Warszawa")
    assert code == 0, err
    assert err == "'Warszawa' is an alias of Warsaw\n"
    assert out.startswith("Warsaw (Location)  aka Warszawa")


def test_cli_json_stays_pure_json(build_dir: Path) -> None:
    code, out, err = lookup(build_dir, "Mari Curie", "--json")
    assert code == 0, err
    assert json.loads(out)["key"] == MARIE
    assert err == "showing Marie Curie (closest match to 'Mari Curie')\n"


def test_cli_miss_suggests_names(build_dir: Path) -> None:
    code, out, err = lookup(build_dir, "Curie")
    assert code == 1 and out == ""
    assert err == f"error: no entity matching 'Curie' in {build_dir}; did you mean: Marie Curie, Pierre Curie?\n"
    code, out, err = lookup(build_dir, "Albert Einstein")
    assert code == 1
    assert err == f"error: no entity matching 'Albert Einstein' in {build_dir}\n"


def test_cli_prints_names_with_brackets_as_they_are(build_dir: Path) -> None:
    code, out, err = lookup(build_dir, "Alexander [of Troy]")
    assert code == 0, err
    assert err == "'Alexander [of Troy]' is an alias of Paris\n"
    assert out.splitlines()[0] == "Paris (Person)  aka Alexander [of Troy]"
    code, _, err = lookup(build_dir, "[/of Troy]")
    assert code == 1 and err.startswith("error: no entity matching '[/of Troy]'")
