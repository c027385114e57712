"""RAG scoring (P(D|e), confidence, evidence spans) and entity resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrag.graph.resolve import Resolver, birth_names, entity_key
from kgrag.graph.score import add_evidence, confident, evidence_span, score_triples
from kgrag.index.embedder import MiniLMEmbedder
from kgrag.index.retriever import softmax
from kgrag.records import Entity, Evidence, ExtractedTriple, Extraction, Passage, ResolvedGraph, Triple
from kgrag.schema import GraphSchema
from kgrag.text import is_alias, normalize

SCHEMAS = Path(__file__).resolve().parents[1] / "kgrag" / "schemas"

# -- softmax --------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.01, 0.05, 0.5, 5.0])
def test_softmax_sums_to_one_and_keeps_order(temperature: float) -> None:
    scores = [0.82, 0.61, 0.74, 0.3]
    probs = softmax(scores, temperature)
    assert sum(probs) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert sorted(range(4), key=lambda i: -probs[i]) == sorted(range(4), key=lambda i: -scores[i])


def test_softmax_temperature_sharpens() -> None:
    scores = [0.8, 0.7, 0.5]
    top = [softmax(scores, t)[0] for t in (10.0, 0.5, 0.05, 0.01)]
    assert top == sorted(top) and top[0] < 0.4 and top[-1] > 0.99
    assert softmax(scores, 1e-4)[0] == pytest.approx(1.0)  # no overflow at tiny temperatures
    assert softmax([0.5, 0.5], 0.05) == pytest.approx([0.5, 0.5])
    assert softmax([0.9], 0.05) == [1.0]
    assert softmax([], 0.05) == []


# -- confidence ------------------------------------------------------------------------------------

DOC = "Intro sentence here. Marie Curie married Pierre Curie in 1895. Later, marie   curie won prizes."


def make_passage(pid: int, text: str = "Marie Curie married Pierre Curie.", derived: bool = False) -> Passage:
    return Passage(id=pid, doc_id=f"doc{pid}", start=0, end=len(text), text=text, derived=derived)


def extraction(pid: int, prob: float, *rows: tuple[str, str, str, str, str]) -> Extraction:
    rows = rows or (("Marie Curie", "Person", "spouse", "Pierre Curie", "Person"),)
    return Extraction(
        passage_id=pid,
        triples=[
            ExtractedTriple(head=h, head_type=ht, relation=r, tail=t, tail_type=tt, prob=prob)
            for h, ht, r, t, tt in rows
        ],
    )


def test_confidence_is_the_sum_over_passages() -> None:
    passages = {1: make_passage(1), 2: make_passage(2)}
    (triple,) = score_triples([extraction(1, 0.5), extraction(2, 1.0)], passages, {1: 0.6, 2: 0.4})
    assert triple.confidence == pytest.approx(0.6 * 0.5 + 0.4 * 1.0)  # 0.7
    assert not triple.derived
    assert sorted((e.passage_id, e.p_doc, e.p_triple) for e in triple.evidence) == [(1, 0.6, 0.5), (2, 0.4, 1.0)]


def test_confidence_is_capped_at_one() -> None:
    passages = {i: make_passage(i) for i in range(3)}
    (triple,) = score_triples([extraction(i, 1.0) for i in range(3)], passages, dict.fromkeys(range(3), 0.9))
    assert triple.confidence == 1.0
    assert len(triple.evidence) == 3


def test_derived_evidence_adds_nothing() -> None:
    passages = {1: make_passage(1), 2: make_passage(2), 3: make_passage(3, derived=True)}
    weights = {1: 0.6, 2: 0.4, 3: 0.9}
    (triple,) = score_triples([extraction(1, 0.5), extraction(2, 1.0), extraction(3, 1.0)], passages, weights)
    assert triple.confidence == pytest.approx(0.7)
    assert not triple.derived
    assert [e.derived for e in sorted(triple.evidence, key=lambda e: e.passage_id)] == [False, False, True]


def test_derived_only_triple_has_no_confidence() -> None:
    passages = {3: make_passage(3, derived=True), 4: make_passage(4, derived=True)}
    (triple,) = score_triples([extraction(3, 1.0), extraction(4, 0.9)], passages, {3: 0.9, 4: 0.8})
    assert triple.derived is True
    assert triple.confidence == 0.0
    assert len(triple.evidence) == 2


def test_low_probability_triples_are_dropped_and_unweighted_passages_count_zero() -> None:
    passages = {1: make_passage(1), 2: make_passage(2)}
    assert score_triples([extraction(1, 0.3)], passages, {1: 1.0}, min_triple_prob=0.5) == []
    (triple,) = score_triples([extraction(1, 0.8), extraction(2, 0.8)], passages, {1: 0.5})
    assert triple.confidence == pytest.approx(0.4)


def test_same_passage_counts_once() -> None:
    triple = Triple(head="a", head_type="X", relation="r", tail="b", tail_type="X", confidence=0.0, derived=True)
    weak = Evidence(doc_id="d", passage_id=1, start=0, end=1, p_doc=0.5, p_triple=0.4)
    strong = weak.model_copy(update={"p_triple": 0.8})
    add_evidence(triple, weak)
    add_evidence(triple, strong)
    add_evidence(triple, weak)
    assert triple.evidence == [strong]
    assert triple.confidence == pytest.approx(0.4) and not triple.derived


def test_distinct_triples_stay_distinct() -> None:
    passages = {1: make_passage(1, "Marie Curie married Pierre Curie in Paris.")}
    rows = [
        ("Marie Curie", "Person", "spouse", "Pierre Curie", "Person"),
        ("Pierre Curie", "Person", "spouse", "Marie Curie", "Person"),
        ("Marie Curie", "Person", "died_in", "Paris", "Location"),
    ]
    triples = score_triples([extraction(1, 0.9, *rows)], passages, {1: 1.0})
    assert sorted(t.key for t in triples) == sorted(rows)


# -- evidence spans --------------------------------------------------------------------------------


def doc_passage() -> Passage:
    start = DOC.index("Marie Curie married")
    return Passage(id=0, doc_id="d", start=start, end=len(DOC), text=DOC[start:])


def test_evidence_span_covers_both_mentions_inside_the_passage() -> None:
    passage = doc_passage()
    start, end = evidence_span(passage, "Marie Curie", "Pierre Curie")
    assert passage.start <= start < end <= passage.end
    assert DOC[start:end] == "Marie Curie married Pierre Curie"


def test_evidence_span_is_the_tightest_window_and_case_and_space_tolerant() -> None:
    passage = doc_passage()
    start, end = evidence_span(passage, "MARIE CURIE", "prizes")
    assert passage.start <= start < end <= passage.end
    assert DOC[start:end] == "marie   curie won prizes"


def test_evidence_span_with_one_or_no_mention() -> None:
    passage = doc_passage()
    start, end = evidence_span(passage, "Pierre Curie", "Sorbonne")
    assert DOC[start:end] == "Pierre Curie"
    assert evidence_span(passage, "Henri Becquerel", "Sorbonne") == (passage.start, passage.end)
    assert evidence_span(passage, "a.b*c", "(x") == (passage.start, passage.end)  # regex characters are literal


def test_scored_evidence_spans_point_into_the_document() -> None:
    passage = doc_passage()
    (triple,) = score_triples([extraction(0, 0.9)], {0: passage}, {0: 1.0})
    (ev,) = triple.evidence
    assert (ev.doc_id, ev.passage_id) == ("d", 0)
    assert passage.start <= ev.start < ev.end <= passage.end
    assert "Marie Curie" in DOC[ev.start : ev.end] and "Pierre Curie" in DOC[ev.start : ev.end]


# -- resolution -------------------------------------------------------------------------------------


def test_normalize_and_alias() -> None:
    assert normalize("  The  Marie-Curie! ") == "marie curie"
    assert normalize("Irène Joliot-Curie") == "irene joliot curie"
    assert normalize("The") == "the"  # a lone article is kept
    assert entity_key("The Marie Curie", "Person") == "person:marie curie"
    assert is_alias("marie curie", "marie skłodowska curie")
    assert not is_alias("marie curie", "pierre curie")
    assert not is_alias("curie", "marie curie")  # one word is too ambiguous
    assert not is_alias("marie curie", "marie curie")


def triple(
    head: str, relation: str, tail: str, head_type: str = "Person", tail_type: str = "Person", pid: int = 0
) -> Triple:
    ev = Evidence(doc_id=f"d{pid}", passage_id=pid, start=0, end=10, p_doc=0.5, p_triple=0.8)
    return Triple(
        head=head,
        head_type=head_type,
        relation=relation,
        tail=tail,
        tail_type=tail_type,
        confidence=0.4,
        evidence=[ev],
    )


@pytest.fixture(params=["no-embedder", "minilm"])
def resolver(request: pytest.FixtureRequest) -> Resolver:
    if request.param == "no-embedder":
        return Resolver(None)
    return Resolver(request.getfixturevalue("embedder"), similarity=0.92)


def entity_of(graph_entities: list, name: str) -> str:
    keys = [e.key for e in graph_entities if e.name == name or name in e.aliases]
    assert len(keys) == 1, (name, graph_entities)
    return keys[0]


def test_resolution_merges_surface_forms_and_aliases(resolver: Resolver) -> None:
    graph = resolver.resolve(
        [
            triple("Marie Curie", "spouse", "Pierre Curie", pid=1),
            triple("marie curie", "discovered", "radium", tail_type="Substance", pid=2),
            triple("The Marie Curie", "award_received", "Nobel Prize in Physics", tail_type="Award", pid=3),
            triple("Marie Skłodowska Curie", "born_in", "Warsaw", tail_type="Location", pid=4),
            triple("Marie Curie", "born_in", "Warsaw", tail_type="Location", pid=5),
        ]
    )
    marie = next(e for e in graph.entities if e.key == "person:marie curie")
    assert marie.name == "Marie Curie" and marie.type == "Person"
    assert set(marie.aliases) == {"marie curie", "The Marie Curie", "Marie Skłodowska Curie"}
    pierre = entity_of(graph.entities, "Pierre Curie")
    assert pierre != marie.key
    assert {e.key for e in graph.entities} == {
        "person:marie curie",
        "person:pierre curie",
        "substance:radium",
        "award:nobel prize in physics",
        "location:warsaw",
    }
    assert all(t.head == marie.key for t in graph.triples)
    # the two born_in triples became one, uniting their evidence
    (born,) = [t for t in graph.triples if t.relation == "born_in"]
    assert sorted(e.passage_id for e in born.evidence) == [4, 5]
    assert born.confidence == pytest.approx(0.8)
    assert len(graph.triples) == 4


def test_resolution_never_merges_different_people(resolver: Resolver) -> None:
    graph = resolver.resolve(
        [
            triple("Marie Curie", "spouse", "Pierre Curie"),
            triple("Pierre Curie", "collaborated_with", "Paul Curie"),
            triple("Irène Joliot-Curie", "child_of", "Marie Curie"),
        ]
    )
    names = {e.name for e in graph.entities}
    assert names == {"Marie Curie", "Pierre Curie", "Paul Curie", "Irène Joliot-Curie"}
    assert all(not e.aliases for e in graph.entities)
    assert len(graph.triples) == 3


def test_resolution_never_merges_across_types(resolver: Resolver) -> None:
    graph = resolver.resolve(
        [
            triple("Washington", "born_in", "Virginia", tail_type="Location"),
            triple("Washington", "located_in", "United States", head_type="Location", tail_type="Location"),
            triple("George Washington", "leader_of", "Washington", tail_type="Location"),
        ]
    )
    keys = {e.key for e in graph.entities}
    assert {"person:washington", "location:washington", "person:george washington"} <= keys
    by_key = {e.key: e for e in graph.entities}
    assert by_key["person:washington"].type == "Person"
    assert by_key["location:washington"].type == "Location"
    assert len(graph.triples) == 3


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("Marie Curie\n\nMarie Skłodowska Curie (born Maria Salomea Skłodowska; 7 November 1867) was",
         [("Marie Skłodowska Curie", "Maria Salomea Skłodowska")]),
        ("Ernesto D'Alessio ( born Ernesto Alonso Vargas Contreras on June 3",
         [("Ernesto D'Alessio", "Ernesto Alonso Vargas Contreras")]),
        ("Hillary Clinton (née Hillary Diane Rodham) is", [("Hillary Clinton", "Hillary Diane Rodham")]),
        ("Paul Desmarais Jr. ( born July 3 , 1954 ) is", []),  # a date, not a name
        ("Henri Becquerel (born in Paris) was", []),
        ("teachers Bronisława, née Boguska, and", []),  # one word: a surname, not a name
    ],
)  # fmt: skip
def test_birth_names_a_text_states(text: str, pairs: list[tuple[str, str]]) -> None:
    assert birth_names(text) == pairs


def test_a_birth_name_becomes_an_alias_and_its_short_form_merges(resolver: Resolver) -> None:
    graph = resolver.resolve(
        [
            triple("Marie Skłodowska Curie", "born_in", "Warsaw", tail_type="Location", pid=1),
            triple("Pierre Curie", "spouse", "Maria Skłodowska", pid=2),  # her birth name, shortened
            triple("Marie Curie", "spouse", "Pierre Curie", pid=3),
        ],
        birth=[("Marie Skłodowska Curie", "Maria Salomea Skłodowska"), ("Ada Lovelace", "Augusta Ada Byron")],
    )
    marie = entity_of(graph.entities, "Marie Curie")
    for name in ("Maria Skłodowska", "Maria Salomea Skłodowska"):
        assert entity_of(graph.entities, name) == marie
    names = {e.name for e in graph.entities}
    assert "Marie Curie" in names  # the later name, not the birth name or its short form
    assert "Augusta Ada Byron" not in names and not any("Augusta Ada Byron" in e.aliases for e in graph.entities)


def test_compatible_types_merge_under_the_majority_type(embedder: MiniLMEmbedder) -> None:
    schema = GraphSchema.load(SCHEMAS / "default.yaml")
    resolver = Resolver(embedder, similarity=0.92, compatible=schema.compatible)
    graph = resolver.resolve(
        [
            triple("Marie Curie", "discovered", "Polonium", tail_type="Substance", pid=1),
            triple("Pierre Curie", "discovered", "polonium", tail_type="Substance", pid=2),
            triple("Marie Curie", "named_after", "Polonium", tail_type="Concept", pid=3),
            triple("Washington", "born_in", "Virginia", tail_type="Location"),
            triple("Washington", "located_in", "United States", head_type="Location", tail_type="Location"),
        ]
    )
    polonium = [e for e in graph.entities if normalize(e.name) == "polonium"]
    assert [(e.key, e.type) for e in polonium] == [("substance:polonium", "Substance")]
    assert {"person:washington", "location:washington"} <= {e.key for e in graph.entities}  # Person/Location never
    assert schema.compatible("Concept", "Substance") and schema.compatible("Substance", "Concept")
    assert not schema.compatible("Person", "Location")


def test_ambiguous_short_alias_stays_on_its_own(resolver: Resolver) -> None:
    graph = resolver.resolve(
        [
            triple("John Smith", "spouse", "Mary Jones"),
            triple("John Quincy Smith", "born_in", "Boston", tail_type="Location"),
            triple("John Maynard Smith", "born_in", "London", tail_type="Location"),
        ]
    )
    people = {e.name for e in graph.entities if e.type == "Person"}
    assert {"John Smith", "John Quincy Smith", "John Maynard Smith"} <= people
    # with a single candidate the short name does merge
    single = resolver.resolve(
        [
            triple("John Smith", "spouse", "Mary Jones"),
            triple("John Quincy Smith", "born_in", "Boston", tail_type="Location"),
        ]
    )
    (smith,) = [e for e in single.entities if "Smith" in e.name]
    assert set([smith.name, *smith.aliases]) == {"John Smith", "John Quincy Smith"}


def test_resolution_drops_self_loops_and_unites_duplicate_evidence(resolver: Resolver) -> None:
    graph = resolver.resolve(
        [
            triple("Marie Curie", "spouse", "Pierre Curie", pid=1),
            triple("marie curie", "spouse", "Pierre  Curie", pid=2),
            triple("The Marie Curie", "spouse", "pierre curie", pid=2),  # same passage: counted once
            triple("Marie Curie", "relative_of", "The Marie Curie", pid=3),  # becomes a self-loop
        ]
    )
    (spouse,) = graph.triples
    assert (spouse.head, spouse.relation, spouse.tail) == ("person:marie curie", "spouse", "person:pierre curie")
    assert sorted(e.passage_id for e in spouse.evidence) == [1, 2]
    assert spouse.confidence == pytest.approx(0.8)
    assert len(graph.entities) == 2


def test_resolution_is_order_independent(resolver: Resolver) -> None:
    triples = [
        triple("Marie Curie", "spouse", "Pierre Curie", pid=1),
        triple("marie curie", "born_in", "Warsaw", tail_type="Location", pid=2),
        triple("Marie Skłodowska Curie", "born_in", "Warsaw", tail_type="Location", pid=3),
    ]
    forward, backward = resolver.resolve(triples), resolver.resolve(list(reversed(triples)))
    assert forward.entities == backward.entities
    for a, b in zip(forward.triples, backward.triples, strict=True):
        assert a.key == b.key and a.confidence == pytest.approx(b.confidence)
        assert sorted(e.passage_id for e in a.evidence) == sorted(e.passage_id for e in b.evidence)


def test_embedding_similarity_merges_only_same_type(embedder: MiniLMEmbedder) -> None:
    resolver = Resolver(embedder, similarity=0.95)
    graph = resolver.resolve(
        [
            triple("Irène Joliot-Curie", "child_of", "Marie Curie"),
            triple("Irene Joliot Curie", "spouse", "Frédéric Joliot"),
            triple("Irene Joliot Curie", "named_after", "Irène Joliot-Curie", head_type="Location"),
        ]
    )
    people = [e for e in graph.entities if e.type == "Person" and "Joliot" in e.name and "Fr" not in e.name]
    assert len(people) == 1
    assert any(e.type == "Location" for e in graph.entities)


def test_confident_leaves_out_weak_grounded_facts_and_the_entities_only_they_named() -> None:
    def fact(tail: str, confidence: float, derived: bool = False) -> Triple:
        return Triple(head="person:marie curie", head_type="Person", relation="r", tail=tail, tail_type="Person",
                      confidence=confidence, derived=derived)  # fmt: skip

    names = ("marie curie", "pierre curie", "ada lovelace", "alan turing")
    entities = [Entity(key=f"person:{n}", name=n.title(), type="Person") for n in names]
    strong, weak, derived = (
        fact("person:pierre curie", 0.3),
        fact("person:ada lovelace", 0.005),
        fact("person:alan turing", 0.0, derived=True),
    )
    graph = ResolvedGraph(entities=entities, triples=[strong, weak, derived])
    kept = confident(graph, 0.01)
    assert kept.triples == [strong, derived]  # a derived fact is marked, not scored: it stays
    assert [e.key for e in kept.entities] == ["person:marie curie", "person:pierre curie", "person:alan turing"]
    assert confident(graph, 0.0) is graph
