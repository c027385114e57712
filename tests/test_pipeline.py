"""The whole build with a fake generator and the real spaCy, MiniLM and FAISS: graph contents,
re-runs from the cache, expansion hops, the entity budget, resume after Ctrl-C, the API and the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from corpora import write_corpus
from fakes import SCHEMAS, FakeGenerator, triples_json
from typer.testing import CliRunner

from kgrag.api import KnowledgeGraph
from kgrag.cli import app
from kgrag.config import Settings
from kgrag.errors import KgragError
from kgrag.graph.networkx_store import NetworkXStore
from kgrag.index.embedder import MiniLMEmbedder
from kgrag.index.faiss_index import FaissIndex
from kgrag.index.passage_store import PassageStore
from kgrag.pipeline import Pipeline
from kgrag.records import BuildReport
from kgrag.text import normalize

CORPUS = {
    "marie.txt": (
        "Marie Curie was a physicist and chemist. Marie Curie was born in Warsaw. "
        "In 1895 Marie Curie married Pierre Curie. Marie Curie discovered polonium.\n\n"
        "Marie Skłodowska Curie received the Nobel Prize in Chemistry."
    ),
    "pierre.txt": (
        "Pierre Curie was a French physicist. Pierre Curie was born in Paris. "
        "Pierre Curie worked at the University of Paris. "
        "Pierre Curie shared the Nobel Prize in Physics with Henri Becquerel."
    ),
    "becquerel.txt": (
        "Henri Becquerel was a French engineer. Henri Becquerel discovered radioactivity. "
        "Henri Becquerel was a member of the French Academy of Sciences."
    ),
}

P, L, ORG, C, S, A = "Person", "Location", "Organization", "Concept", "Substance", "Award"
OUTPUTS = {  # the first key found in a passage wins
    # a verbalised neighbourhood document: whatever comes from it is derived, never grounded
    "Pierre Curie (Person).": triples_json(["Pierre Curie", P, "relative_of", "Marie Curie", P]),
    "Marie Curie was a physicist": triples_json(["Marie Curie", P, "occupation", "physicist", C]),
    "Marie Curie was born in Warsaw": triples_json(
        ["Marie Curie", P, "born_in", "Warsaw", L],
        ["Warsaw", L, "spouse", "Marie Curie", P],  # spouse needs a Person head: dropped by the schema
    ),
    "married Pierre Curie": triples_json(
        ["Marie Curie", P, "spouse", "Pierre Curie", P],
        ["Marie Curie", P, "spouse", "Ada Lovelace", P],  # not in the passage: dropped
    ),
    "discovered polonium": triples_json(["Marie Curie", P, "discovered", "polonium", S]),
    "Marie Skłodowska Curie received": triples_json(
        ["Marie Skłodowska Curie", P, "award_received", "Nobel Prize in Chemistry", A]
    ),
    "Pierre Curie was a French": triples_json(["Pierre Curie", P, "occupation", "physicist", C]),
    "Pierre Curie was born in Paris": triples_json(["Pierre Curie", P, "born_in", "Paris", L]),
    "University of Paris": triples_json(["Pierre Curie", P, "works_for", "University of Paris", ORG]),
    "Nobel Prize in Physics": triples_json(
        ["Pierre Curie", P, "award_received", "Nobel Prize in Physics", A],
        ["Pierre Curie", P, "collaborated_with", "Henri Becquerel", P],
    ),
    "Henri Becquerel was a French": triples_json(["Henri Becquerel", P, "occupation", "engineer", C]),
    "discovered radioactivity": triples_json(["Henri Becquerel", P, "discovered", "radioactivity", C]),
    "French Academy": triples_json(["Henri Becquerel", P, "member_of", "French Academy of Sciences", ORG]),
}
N_SOURCE_PASSAGES = 12  # one sentence per passage

EXPECTED = {
    ("Marie Curie", "born_in", "Warsaw"),
    ("Marie Curie", "spouse", "Pierre Curie"),
    ("Marie Curie", "discovered", "polonium"),
    ("Marie Curie", "award_received", "Nobel Prize in Chemistry"),
    ("Marie Curie", "occupation", "physicist"),
    ("Pierre Curie", "occupation", "physicist"),
    ("Pierre Curie", "born_in", "Paris"),
    ("Pierre Curie", "works_for", "University of Paris"),
    ("Pierre Curie", "award_received", "Nobel Prize in Physics"),
    ("Pierre Curie", "collaborated_with", "Henri Becquerel"),
    ("Henri Becquerel", "occupation", "engineer"),
    ("Henri Becquerel", "discovered", "radioactivity"),
    ("Henri Becquerel", "member_of", "French Academy of Sciences"),
}


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "schema_path": SCHEMAS / "default.yaml",
        "chunk_sentences": 1,
        "chunk_overlap": 0,
        "top_k": 20,  # every passage of the tiny corpus, so the expected graph does not hang on ranking
        "hops": 1,
        "max_entities": 10,
        "n_threads": 1,
        "min_confidence": 0.0,  # every passage of the tiny corpus is retrieved for every entity: keep all
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("docs"), CORPUS)


def build(
    corpus: Path,
    out: Path,
    embedder: MiniLMEmbedder,
    backend: FakeGenerator | None = None,
    seeds: tuple[str, ...] = ("Marie Curie",),
    options: dict[str, bool] | None = None,
    **overrides: Any,
) -> BuildReport:
    """Build with the fake generator; ``options`` are Pipeline.run's (seeds_only, reset, reextract)."""
    backend = backend or FakeGenerator(OUTPUTS)
    pipeline = Pipeline(settings(**overrides), out, backend=backend, embedder=embedder, show_progress=False)
    return pipeline.run([corpus], list(seeds), **(options or {}))


def facts(out: Path) -> set[tuple[str, str, str]]:
    """(head name, relation, tail name) of every grounded edge in graph.json."""
    g = NetworkXStore.load(out / "graph.json")
    return {
        (g.nodes[h]["name"], d["relation"], g.nodes[t]["name"]) for h, t, d in g.edges(data=True) if not d["derived"]
    }


def edge_keys(out: Path) -> list[tuple[str, str, str]]:
    g = NetworkXStore.load(out / "graph.json")
    return [(h, k, t) for h, t, k in g.edges(keys=True)]


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder) -> tuple[Path, BuildReport]:
    """One complete single-hop build, shared by the read-only tests below."""
    out = tmp_path_factory.mktemp("build")
    backend = FakeGenerator(OUTPUTS)
    report = build(corpus, out, embedder, backend)
    assert backend.calls == report.model_calls == N_SOURCE_PASSAGES
    return out, report


@pytest.fixture(scope="module")
def two_hops(
    corpus: Path, tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder
) -> tuple[Path, BuildReport]:
    """A complete two-hop build that retrieves only 3 passages per entity, so that hop 2 finds more."""
    out = tmp_path_factory.mktemp("two_hops")
    return out, build(corpus, out, embedder, top_k=3, hops=2)


# -- the graph ---------------------------------------------------------------------------------------


def test_build_holds_the_expected_triples(built: tuple[Path, BuildReport]) -> None:
    out, report = built
    assert facts(out) == EXPECTED
    assert report.documents == 3 and report.passages == N_SOURCE_PASSAGES
    assert report.passages_read == N_SOURCE_PASSAGES
    assert report.entities_expanded == ["Marie Curie"] and report.hops_run == 1
    assert report.invalid_outputs == 0 and not report.interrupted
    g = NetworkXStore.load(out / "graph.json")
    assert (report.nodes, report.edges) == (g.number_of_nodes(), g.number_of_edges())
    marie = g.nodes["person:marie curie"]
    assert marie["name"] == "Marie Curie" and marie["type"] == "Person"
    assert "Marie Skłodowska Curie" in marie["aliases"]
    # the dropped triples left no trace
    names = {d["name"] for _, d in g.nodes(data=True)}
    assert "Ada Lovelace" not in names
    assert g.out_degree("location:warsaw") == 0  # the ill-typed "Warsaw spouse Marie Curie"
    for _, _, d in g.edges(data=True):
        assert 0.0 < d["confidence"] <= 1.0


def test_min_confidence_leaves_out_the_facts_retrieval_barely_tied_to_the_entity(
    built: tuple[Path, BuildReport], corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    out, _ = built
    every = NetworkXStore.load(out / "graph.json")
    confidences = sorted(d["confidence"] for _, _, d in every.edges(data=True))
    floor = confidences[len(confidences) // 2]
    strict = tmp_path / "strict"
    build(corpus, strict, embedder, FakeGenerator(OUTPUTS), min_confidence=floor)
    kept = NetworkXStore.load(strict / "graph.json")
    assert 0 < kept.number_of_edges() < every.number_of_edges()
    assert all(d["confidence"] >= floor for _, _, d in kept.edges(data=True))
    assert facts(strict) <= facts(out)
    assert all(kept.degree(node) > 0 for node in kept.nodes)  # no entity left without a fact


def test_a_birth_name_a_document_states_joins_the_entity_no_triple_of_it_names(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "marie.txt").write_text(
        "Marie Curie\n\nMarie Skłodowska Curie (born Maria Salomea Skłodowska) was a chemist. "
        "She studied physics in Paris.\n\nPierre Curie married Maria Skłodowska in 1895.",
        encoding="utf-8",
    )
    spouse = triples_json(["Pierre Curie", P, "spouse", "Maria Skłodowska", P])
    backend = FakeGenerator({"Pierre Curie married": spouse})
    build(docs, tmp_path / "kg", embedder, backend, seeds=("Pierre Curie",), top_k=3)
    g = NetworkXStore.load(tmp_path / "kg" / "graph.json")
    marie = g.nodes["person:marie skłodowska curie"]  # her later name, though only her birth name has a fact
    assert marie["aliases"] == ["Maria Salomea Skłodowska", "Maria Skłodowska"]


def test_a_mixture_build_keeps_what_the_mixture_keeps(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model a,b``: a triple only one model wrote, at 0.95, has mixture P(t|e,D) 0.475; the build
    keeps it (ensemble_min_prob 0.45) as eval does, and min_triple_prob (0.5) does not drop it again."""
    import kgrag.extract.factory as factory

    members = {
        "fake-a": FakeGenerator(OUTPUTS, identity="fake-a@0", logprob=math.log(0.95)),
        "fake-b": FakeGenerator(identity="fake-b@0"),  # writes nothing
    }
    monkeypatch.setattr(factory, "LazyLlamaCpp", lambda ref, options: members[ref.value])
    pipeline = Pipeline(settings(model="fake-a,fake-b"), tmp_path / "kg", embedder=embedder, show_progress=False)
    pipeline.run([corpus], ["Marie Curie"])
    assert facts(tmp_path / "kg") == EXPECTED
    g = NetworkXStore.load(tmp_path / "kg" / "graph.json")
    probs = {e["p_triple"] for _, _, d in g.edges(data=True) for e in d["evidence"]}
    assert probs and all(p == pytest.approx(0.475) for p in probs)


def test_evidence_spans_lie_inside_their_passages(built: tuple[Path, BuildReport]) -> None:
    out, _ = built
    g = NetworkXStore.load(out / "graph.json")
    store = PassageStore(out / "passages.sqlite")
    try:
        for head, tail, data in g.edges(data=True):
            assert data["evidence"], (head, tail)
            for ev in data["evidence"]:
                passage = store.passage(ev["passage_id"])
                document = store.document(ev["doc_id"])
                assert document is not None and passage.doc_id == ev["doc_id"]
                assert document.text[passage.start : passage.end] == passage.text
                assert passage.start <= ev["start"] < ev["end"] <= passage.end
                span = f" {normalize(document.text[ev['start'] : ev['end']])} "
                for key in (head, tail):
                    names = [g.nodes[key]["name"], *g.nodes[key]["aliases"]]
                    assert any(f" {normalize(n)} " in span for n in names), (key, span)
                assert 0.0 < ev["p_doc"] <= 1.0 and 0.5 <= ev["p_triple"] <= 1.0
    finally:
        store.close()


def test_build_directory_contents(built: tuple[Path, BuildReport]) -> None:
    out, _ = built
    for name in ("manifest.json", "passages.sqlite", "index.faiss", "cache.sqlite", "graph.json", "schema.json"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "complete"
    assert manifest["model"] == "fake-model@0"
    assert manifest["schema"]["name"] == "default"
    assert manifest["report"]["model_calls"] == N_SOURCE_PASSAGES
    assert FaissIndex(out / "index.faiss", 384).size == N_SOURCE_PASSAGES


def copy_of(build_dir: Path, tmp_path: Path) -> Path:
    """A copy of a finished build directory, to build on without changing the shared one."""
    return Path(shutil.copytree(build_dir, tmp_path / "build"))


def test_rerun_uses_the_cache_and_gives_the_same_graph(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, built: tuple[Path, BuildReport]
) -> None:
    out, first = copy_of(built[0], tmp_path), built[1]
    graph = (out / "graph.json").read_bytes()
    assert first.model_calls == N_SOURCE_PASSAGES
    backend = FakeGenerator(OUTPUTS, interrupt_on=1)  # any model call would fail the test
    second = build(corpus, out, embedder, backend)
    assert second.model_calls == 0 and backend.calls == 0
    assert second.passages_read == first.passages_read
    assert (out / "graph.json").read_bytes() == graph
    assert PassageStore(out / "passages.sqlite").counts() == {
        "documents": 3,
        "passages": N_SOURCE_PASSAGES,
        "derived_passages": 0,
    }
    other = FakeGenerator(OUTPUTS, identity="other-model@1")  # other weights: nothing cached applies
    with pytest.raises(KgragError, match="--reset"):  # a build directory holds one model's reading
        build(corpus, out, embedder, other)
    report = build(corpus, out, embedder, other, options={"reextract": True})
    assert report.model_calls == other.calls == N_SOURCE_PASSAGES
    assert (out / "graph.json").read_bytes() == graph


# -- expansion -----------------------------------------------------------------------------------------


def test_second_hop_adds_entities_and_indexes_a_neighbourhood_document(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, two_hops: tuple[Path, BuildReport]
) -> None:
    one = tmp_path / "one"
    build(corpus, one, embedder, top_k=3, hops=1)
    two, report = two_hops
    assert report.hops_run == 2
    assert report.entities_expanded[0] == "Marie Curie" and len(report.entities_expanded) > 1
    nodes_one = set(NetworkXStore.load(one / "graph.json").nodes)
    nodes_two = set(NetworkXStore.load(two / "graph.json").nodes)
    assert nodes_one < nodes_two
    assert facts(one) < facts(two) <= EXPECTED

    store = PassageStore(two / "passages.sqlite")
    try:
        counts = store.counts()
        assert counts["passages"] == N_SOURCE_PASSAGES and counts["derived_passages"] > 0
        total = store.next_passage_id()
        derived = [p for p in store.passages_from(0) if p.derived]
        assert len(derived) == counts["derived_passages"]
        sources = {store.document(p.doc_id).source for p in derived}  # type: ignore[union-attr]
        assert "graph:person:marie curie" in sources
        marie_doc = next(store.document(p.doc_id) for p in derived if p.text.startswith("Marie Curie (Person)."))
        assert marie_doc is not None and marie_doc.derived
        assert "Marie Curie spouse Pierre Curie." in marie_doc.text
    finally:
        store.close()
    assert FaissIndex(two / "index.faiss", 384).size == total


def test_triples_only_from_neighbourhood_documents_are_derived(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, built: tuple[Path, BuildReport]
) -> None:
    out = copy_of(built[0], tmp_path)  # hop 1 comes from the cache
    report = build(corpus, out, embedder, hops=2, max_entities=2)
    assert report.hops_run == 2 and report.model_calls > 0
    g = NetworkXStore.load(out / "graph.json")
    derived = [(h, k, t, d) for h, t, k, d in g.edges(keys=True, data=True) if d["derived"]]
    assert [(h, k, t) for h, k, t, _ in derived] == [("person:pierre curie", "relative_of", "person:marie curie")]
    (_, _, _, data), *_ = derived
    assert data["confidence"] == 0.0
    assert data["evidence"] and all(ev["derived"] for ev in data["evidence"])
    assert facts(out) == EXPECTED  # grounded facts are unchanged by the derived documents
    kg = KnowledgeGraph.open(out)
    pierre = kg.lookup("Pierre Curie")
    assert pierre is not None and pierre.facts[-1].derived  # derived facts sort last


@pytest.mark.parametrize(("max_entities", "seeds"), [(2, ("Marie Curie", "Pierre Curie", "Henri Becquerel")), (3, ())])
def test_max_entities_is_respected(
    corpus: Path,
    tmp_path: Path,
    embedder: MiniLMEmbedder,
    built: tuple[Path, BuildReport],
    max_entities: int,
    seeds: tuple[str, ...],
) -> None:
    report = build(
        corpus,
        copy_of(built[0], tmp_path),
        embedder,
        seeds=seeds or ("Marie Curie",),
        top_k=3,
        hops=4,
        max_entities=max_entities,
    )
    assert len(report.entities_expanded) == max_entities
    if seeds:
        assert report.entities_expanded == list(seeds[:max_entities])
        assert report.hops_run == 1


def test_seeds_are_required_and_deduplicated(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, built: tuple[Path, BuildReport]
) -> None:
    with pytest.raises(KgragError, match="seed"):
        build(corpus, tmp_path / "none", embedder, seeds=(" ", ""))
    out = copy_of(built[0], tmp_path)
    report = build(corpus, out, embedder, seeds=("Marie Curie", " Marie Curie ", "Marie Curie"))
    assert report.entities_expanded == ["Marie Curie"]
    assert (out / "graph.json").read_bytes() == (built[0] / "graph.json").read_bytes()


def test_a_failed_build_is_not_marked_complete(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = tmp_path / "build"
    with pytest.raises(KgragError, match="no such file or folder"):
        build(tmp_path / "missing", out, embedder)
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["status"] != "complete"


# -- interruption and resume ---------------------------------------------------------------------------


def test_interrupted_build_resumes_without_redoing_work(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, built: tuple[Path, BuildReport]
) -> None:
    reference, _ = built
    out = tmp_path / "build"
    crashing = FakeGenerator(OUTPUTS, interrupt_on=6)
    with pytest.raises(KeyboardInterrupt):
        build(corpus, out, embedder, crashing)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "interrupted" and manifest["report"]["status"] == "interrupted"
    assert manifest["report"]["model_calls"] == 5
    partial = facts(out)  # graph.json holds what was finished
    assert partial < EXPECTED

    backend = FakeGenerator(OUTPUTS)
    report = build(corpus, out, embedder, backend)
    assert report.model_calls == backend.calls == N_SOURCE_PASSAGES - 5
    assert not set(backend.passages) & set(crashing.passages)  # no finished passage was sent again
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["status"] == "complete"
    assert (out / "graph.json").read_bytes() == (reference / "graph.json").read_bytes()
    keys = edge_keys(out)
    assert len(keys) == len(set(keys))
    g = NetworkXStore.load(out / "graph.json")
    names = [(d["type"], normalize(d["name"])) for _, d in g.nodes(data=True)]
    assert len(names) == len(set(names))
    counts = PassageStore(out / "passages.sqlite").counts()
    assert counts["passages"] == N_SOURCE_PASSAGES


def test_interrupted_second_hop_resumes(
    corpus: Path,
    tmp_path: Path,
    embedder: MiniLMEmbedder,
    built: tuple[Path, BuildReport],
    two_hops: tuple[Path, BuildReport],
) -> None:
    out = copy_of(built[0], tmp_path)  # every source passage is cached: the first model call is in hop 2
    only = {"seeds_only": True}  # the copied build read every passage; this one reads only its own
    with pytest.raises(KeyboardInterrupt):
        build(corpus, out, embedder, FakeGenerator(OUTPUTS, interrupt_on=1), options=only, top_k=3, hops=2)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "interrupted" and manifest["report"]["hops_run"] == 1
    report = build(corpus, out, embedder, options=only, top_k=3, hops=2)
    assert 0 < report.model_calls < two_hops[1].model_calls and report.hops_run == 2
    assert (out / "graph.json").read_bytes() == (two_hops[0] / "graph.json").read_bytes()
    assert len(edge_keys(out)) == len(set(edge_keys(out)))


def test_multi_hop_rerun_is_identical(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, two_hops: tuple[Path, BuildReport]
) -> None:
    out = tmp_path / "build"
    shutil.copytree(two_hops[0], out)
    graph = (out / "graph.json").read_bytes()
    report = build(corpus, out, embedder, FakeGenerator(OUTPUTS, interrupt_on=1), top_k=3, hops=2)
    assert report.model_calls == 0
    assert (out / "graph.json").read_bytes() == graph


# -- the Python API ------------------------------------------------------------------------------------


def test_api_lookup_is_case_and_alias_tolerant(built: tuple[Path, BuildReport]) -> None:
    out, _ = built
    kg = KnowledgeGraph.open(out)
    assert len(kg) == NetworkXStore.load(out / "graph.json").number_of_nodes()
    assert kg.manifest["status"] == "complete"
    for query in ["Marie Curie", "marie curie", "MARIE CURIE", "  the Marie Curie ", "Marie Skłodowska Curie"]:
        entity = kg.lookup(query)
        assert entity is not None and entity.key == "person:marie curie", query
    assert kg.lookup("Pierre Curie").key == "person:pierre curie"  # type: ignore[union-attr]
    assert kg.lookup("Henri Becqerel").name == "Henri Becquerel"  # type: ignore[union-attr]  # a typo
    assert kg.lookup("Albert Einstein") is None


def test_api_facts_have_sources(built: tuple[Path, BuildReport]) -> None:
    out, _ = built
    kg = KnowledgeGraph.open(out)
    marie = kg.lookup("marie curie")
    assert marie is not None and marie.type == "Person"
    found = {(f.relation, f.direction, f.target) for f in marie.facts}
    assert ("spouse", "out", "Pierre Curie") in found
    assert ("born_in", "out", "Warsaw") in found
    assert ("award_received", "out", "Nobel Prize in Chemistry") in found
    confidences = [f.confidence for f in marie.facts]
    assert confidences == sorted(confidences, reverse=True)
    for fact in marie.facts:
        assert fact.sources
        source, text = kg.evidence_text(fact.sources[0])
        assert Path(source).name == "marie.txt"
        assert normalize(fact.target) in normalize(text)
    pierre = kg.lookup("pierre curie")
    assert pierre is not None
    assert ("spouse", "in", "Marie Curie") in {(f.relation, f.direction, f.target) for f in pierre.facts}
    assert [e.key for e in kg.entities()] == sorted(NetworkXStore.load(out / "graph.json").nodes)


def test_api_export(built: tuple[Path, BuildReport], tmp_path: Path) -> None:
    out, _ = built
    kg = KnowledgeGraph.open(out)
    graphml = kg.export("graphml", tmp_path / "g.graphml")
    back = nx.read_graphml(graphml, force_multigraph=True)
    assert back.number_of_nodes() == len(kg) and back.number_of_edges() == kg.graph.number_of_edges()
    nodelink = kg.export("json", tmp_path / "g.json")
    assert len(json.loads(nodelink.read_text(encoding="utf-8"))["edges"]) == kg.graph.number_of_edges()
    default = kg.export()
    assert default == out / "graph.graphml" and default.exists()
    with pytest.raises(KgragError, match="unknown export format"):
        kg.export("xml")


def test_a_build_from_another_folder_uses_the_bundled_default_schema(
    corpus: Path, tmp_path: Path, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No schema given and a working folder with nothing in it: the schema ships inside the package."""
    monkeypatch.delenv("KGRAG_SCHEMA_PATH", raising=False)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "out"
    plain = Settings(chunk_sentences=1, chunk_overlap=0, top_k=2, hops=1, max_entities=1, n_threads=1)
    Pipeline(plain, out, backend=FakeGenerator(OUTPUTS), embedder=embedder, show_progress=False).run(
        [corpus], ["Marie Curie"]
    )
    assert json.loads((out / "schema.json").read_text(encoding="utf-8"))["name"] == "default"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["schema_path"] == "default" and manifest["schema"]["name"] == "default"
    assert list(cwd.iterdir()) == []


def test_api_open_a_non_build_dir(tmp_path: Path) -> None:
    with pytest.raises(KgragError, match="no built graph"):
        KnowledgeGraph.open(tmp_path)


# -- the command line ------------------------------------------------------------------------------------


def one_error_line(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_cli_build_missing_input_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    args = ["build", str(missing), "--seeds", "Marie Curie", "--schema", str(SCHEMAS / "default.yaml")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert str(missing) in one_error_line(result)


def test_cli_build_unknown_schema_file(corpus: Path, tmp_path: Path) -> None:
    schema = tmp_path / "nope.yaml"
    args = ["build", str(corpus), "--seeds", "Marie Curie", "--schema", str(schema), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert str(schema) in one_error_line(result)


def test_cli_build_malformed_schema_file(corpus: Path, tmp_path: Path) -> None:
    schema = tmp_path / "broken.yaml"
    schema.write_text("entity_types: [Person\nrelation_types: []\n", encoding="utf-8")
    args = ["build", str(corpus), "--seeds", "Marie Curie", "--schema", str(schema), "--out", str(tmp_path / "out")]
    assert str(schema) in one_error_line(CliRunner().invoke(app, args))


def test_cli_lookup_on_a_non_build_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["lookup", str(tmp_path), "Marie Curie"])
    assert "no built graph" in one_error_line(result)


def test_cli_export_unknown_format(built: tuple[Path, BuildReport]) -> None:
    out, _ = built
    result = CliRunner().invoke(app, ["export", str(out), "--format", "xml"])
    assert "unknown export format" in one_error_line(result)


def test_cli_lookup_and_export(built: tuple[Path, BuildReport], tmp_path: Path) -> None:
    out, _ = built
    result = CliRunner().invoke(app, ["lookup", str(out), "marie curie", "--json"])
    assert result.exit_code == 0, result.output
    entity = json.loads(result.stdout)
    assert entity["name"] == "Marie Curie" and entity["facts"]
    table = CliRunner().invoke(app, ["lookup", str(out), "Pierre Curie"])
    assert table.exit_code == 0 and "spouse" in table.stdout
    unknown = CliRunner().invoke(app, ["lookup", str(out), "Albert Einstein"])
    assert "no entity matching" in one_error_line(unknown)
    target = tmp_path / "graph.graphml"
    exported = CliRunner().invoke(app, ["export", str(out), "--format", "graphml", "--output", str(target)])
    assert exported.exit_code == 0 and target.exists()


# -- retrieval ---------------------------------------------------------------------------------------------


def test_retriever_skips_stale_neighbourhood_documents(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    """Old neighbourhood documents stay in the index; however many outrank the source passages, the
    retriever still returns top_k of the passages it may use."""
    from kgrag.index.retriever import Retriever
    from kgrag.records import Document, Passage

    rows = [("src0", "Marie Curie was a physicist who was born in Warsaw.", False)]
    rows += [("src1", "The weather in the harbour was calm that morning.", False)]
    rows += [(f"g{i}", f"Marie Curie (Person). Marie Curie spouse Pierre Curie. Fact {i}.", True) for i in range(8)]
    store = PassageStore(tmp_path / "passages.sqlite")
    index = FaissIndex(tmp_path / "index.faiss", embedder.dim)
    store.add(
        [Document(id=doc, source=doc, title=doc, text=text, derived=derived) for doc, text, derived in rows],
        [
            Passage(id=i, doc_id=doc, start=0, end=len(text), text=text, derived=derived)
            for i, (doc, text, derived) in enumerate(rows)
        ],
    )
    index.add(embedder.encode([text for _, text, _ in rows]))
    retriever = Retriever(embedder, index, store, top_k=2, temperature=0.05)
    try:
        hits = retriever.retrieve("Marie Curie")
        assert [h.passage.id for h in hits] == [0, 1]  # every derived document is inactive
        assert sum(h.prob for h in hits) == pytest.approx(1.0)
        retriever.active_derived = {"g2", "g5"}  # the current neighbourhood documents do count
        hits = retriever.retrieve("Marie Curie")
        assert len(hits) == 2 and {h.passage.doc_id for h in hits} <= {"src0", "g2", "g5"}
        retriever.top_k = 20  # more than the index holds
        assert {h.passage.doc_id for h in retriever.retrieve("Marie Curie")} == {"src0", "src1", "g2", "g5"}
    finally:
        store.close()
