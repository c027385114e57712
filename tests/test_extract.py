"""Extraction: locating triples in (possibly cut-off) output, P(t|e,D), parsing and the SQLite cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fakes import SCHEMAS, FakeGenerator, generation, triples_json

from kgrag.config import Settings
from kgrag.extract.cache import ExtractionCache
from kgrag.extract.extractor import Extractor, triple_probability, triple_spans
from kgrag.extract.prompts import build_messages, system_prompt
from kgrag.generator.base import Generation
from kgrag.records import Passage
from kgrag.schema import GraphSchema

SPOUSE = ["Marie Curie", "Person", "spouse", "Pierre Curie", "Person"]
BORN = ["Marie Curie", "Person", "born_in", "Warsaw", "Location"]
PASSAGE = "Marie Curie, born in Warsaw, married Pierre Curie in 1895."


@pytest.fixture(scope="module")
def schema() -> GraphSchema:
    return GraphSchema.load(SCHEMAS / "default.yaml")


def make_extractor(
    schema: GraphSchema, backend: FakeGenerator, cache: ExtractionCache | None = None, max_triples: int = 4
) -> Extractor:
    return Extractor(schema, backend, cache, max_triples=max_triples, max_tokens=200, fingerprint={"prompt": "t"})


def passage(text: str = PASSAGE, pid: int = 0) -> Passage:
    return Passage(id=pid, doc_id="d0", start=0, end=len(text), text=text)


# -- triple_spans ---------------------------------------------------------------------------------


def test_spans_of_complete_output() -> None:
    text = triples_json(SPOUSE, BORN)
    spans = triple_spans(text)
    assert [value for value, _, _ in spans] == [SPOUSE, BORN]
    for value, start, end in spans:
        assert text[start] == "[" and text[end - 1] == "]"
        assert text[start:end] == triples_json(value)[len('{"triples": [') : -2]


def test_spans_of_output_cut_mid_triple() -> None:
    full = triples_json(SPOUSE, BORN)
    cut = full[: full.index("Warsaw")]  # the second triple is unfinished
    assert [value for value, _, _ in triple_spans(cut)] == [SPOUSE]
    cut_in_name = full[: full.index("Pierre") + 3]
    assert triple_spans(cut_in_name) == []
    after_first = full[: full.index("]") + 1]  # first triple closed, list not
    assert [value for value, _, _ in triple_spans(after_first)] == [SPOUSE]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I cannot do that.",
        '{"facts": [["a", "b", "c", "d", "e"]]}',
        '{"triples": ',
        '{"triples": []}',
        '{"triples": [nonsense]}',
        '{"triples" ] [',
    ],
)
def test_spans_of_garbage(text: str) -> None:
    assert triple_spans(text) == []


def test_spans_with_whitespace_and_escapes() -> None:
    text = '{\n  "triples": [\n    ["The \\"Curie\\" lab", "Organization", "located_in", "Paris", "Location"] ,\n  ]\n}'
    spans = triple_spans(text)
    assert [value for value, _, _ in spans] == [['The "Curie" lab', "Organization", "located_in", "Paris", "Location"]]


# -- triple_probability ---------------------------------------------------------------------------


def tokenised(pieces: list[tuple[str, float]]) -> Generation:
    """A generation whose tokens are exactly ``pieces`` (text, log-probability)."""
    offsets, position = [], 0
    for piece, _ in pieces:
        offsets.append(position)
        position += len(piece)
    return Generation(
        text="".join(p for p, _ in pieces), token_offsets=offsets, token_logprobs=[lp for _, lp in pieces]
    )


def test_triple_probability_uses_head_relation_and_tail_tokens() -> None:
    forced = -9.0  # punctuation and types: forced by the grammar, must not count
    gen = tokenised(
        [
            ('{"triples": [["', forced),
            ("Marie", math.log(0.9)),
            (" Curie", math.log(0.8)),
            ('", "', forced),
            ("Person", forced),
            ('", "', forced),
            ("spouse", math.log(0.5)),
            ('", "', forced),
            ("Pierre", math.log(0.6)),
            (" Curie", math.log(0.9)),
            ('", "', forced),
            ("Person", forced),
            ('"]]}', forced),
        ]
    )
    (value, start, end), *_ = triple_spans(gen.text)
    assert value == SPOUSE
    expected = (0.9 * 0.8 * 0.5 * 0.6 * 0.9) ** (1 / 5)
    assert triple_probability(gen, start, end) == pytest.approx(expected)


def test_triple_probability_is_per_triple() -> None:
    first = [('{"triples": [["', 0.0), ("A", math.log(0.5)), ('", "X", "', 0.0), ("r", math.log(0.5))]
    first += [('", "', 0.0), ("B", math.log(0.5)), ('", "X"], ["', 0.0)]
    second = [("C", math.log(0.9)), ('", "X", "', 0.0), ("r", math.log(0.9)), ('", "', 0.0), ("D", math.log(0.9))]
    gen = tokenised([*first, *second, ('", "X"]]}', 0.0)])
    (_, s1, e1), (_, s2, e2) = triple_spans(gen.text)
    assert triple_probability(gen, s1, e1) == pytest.approx(0.5)
    assert triple_probability(gen, s2, e2) == pytest.approx(0.9)


def test_triple_probability_without_token_scores() -> None:
    text = triples_json(SPOUSE)
    (_, start, end), *_ = triple_spans(text)
    assert triple_probability(Generation(text=text), start, end) == 1.0
    # uniform scores give exactly that probability, whatever the tokenisation
    assert triple_probability(generation(text, math.log(0.7)), start, end) == pytest.approx(0.7)


# -- Extractor.parse ------------------------------------------------------------------------------


def test_parse_valid_output(schema: GraphSchema) -> None:
    extractor = make_extractor(schema, FakeGenerator())
    triples, error = extractor.parse(generation(triples_json(SPOUSE, BORN), math.log(0.8)))
    assert error is None
    assert [[t.head, t.head_type, t.relation, t.tail, t.tail_type] for t in triples] == [SPOUSE, BORN]
    assert all(t.prob == pytest.approx(0.8) for t in triples)


def test_parse_reads_a_raw_newline_in_a_name(schema: GraphSchema) -> None:
    """llama.cpp's JSON grammar allows control characters inside strings; strict JSON does not."""
    text = '{"triples": [["Marie\nCurie", "Person", "born_in", "Warsaw", "Location"]]}'
    triples, error = make_extractor(schema, FakeGenerator()).parse(generation(text))
    assert error is None
    assert [(t.head, t.tail) for t in triples] == [("Marie Curie", "Warsaw")]


def test_parse_gives_each_later_triple_the_continue_share_before_it(schema: GraphSchema) -> None:
    extractor = make_extractor(schema, FakeGenerator())
    gen = generation(triples_json(SPOUSE, BORN)).model_copy(update={"continue_ratios": [0.3]})
    triples, _ = extractor.parse(gen)
    assert [t.p_continue for t in triples] == [None, 0.3]
    plain, _ = extractor.parse(generation(triples_json(SPOUSE, BORN)))
    assert [t.p_continue for t in plain] == [None, None]


def test_parse_drops_invalid_triples(schema: GraphSchema) -> None:
    extractor = make_extractor(schema, FakeGenerator(), max_triples=6)
    text = triples_json(
        SPOUSE,
        ["Marie Curie", "Person", "married_to", "Pierre Curie", "Person"],  # unknown relation
        ["Marie Curie", "Human", "born_in", "Warsaw", "Location"],  # unknown entity type
        ["Marie Curie", "Person", "born_in"],  # wrong arity
        ["Marie Curie", "Person", "born_in", "Warsaw", "Location", "extra"],  # wrong arity
        BORN,
    )
    triples, error = extractor.parse(generation(text))
    assert [t.relation for t in triples] == ["spouse", "born_in"]
    assert error is not None  # reported, never raised


def test_parse_deduplicates(schema: GraphSchema) -> None:
    extractor = make_extractor(schema, FakeGenerator())
    text = triples_json(SPOUSE, ["marie curie", "Person", "spouse", "PIERRE CURIE", "Person"], SPOUSE)
    triples, error = extractor.parse(generation(text))
    assert len(triples) == 1 and triples[0].head == "Marie Curie"
    assert error is None


def test_parse_reports_truncation_and_keeps_finished_triples(schema: GraphSchema) -> None:
    extractor = make_extractor(schema, FakeGenerator())
    full = triples_json(SPOUSE, BORN)
    triples, error = extractor.parse(generation(full[: full.index("Warsaw")], truncated=True))
    assert [t.relation for t in triples] == ["spouse"]
    assert error is not None and "cut off" in error


@pytest.mark.parametrize("text", ["", "sorry", '{"triples": [["Marie Curie", "Person", "spouse"'])
def test_parse_garbage_never_raises(schema: GraphSchema, text: str) -> None:
    triples, error = make_extractor(schema, FakeGenerator()).parse(generation(text))
    assert triples == [] and error


def test_open_relations_accept_new_relation_names(schema: GraphSchema) -> None:
    extractor = Extractor(schema, FakeGenerator(), None, max_triples=4, max_tokens=200, open_relations=True)
    triples, error = extractor.parse(
        generation(triples_json(["Marie Curie", "Person", "admired", "Paris", "Location"]))
    )
    assert error is None and triples[0].relation == "admired"
    assert "enum" not in extractor.json_schema["properties"]["triples"]["items"]["prefixItems"][2]


# -- prompts ----------------------------------------------------------------------------------------


def test_prompt_puts_fixed_part_first_and_passage_last(schema: GraphSchema) -> None:
    system = system_prompt(schema, 4)
    assert "spouse" in system and "Person" in system and "At most 4 triples" in system
    messages = build_messages(schema, system, PASSAGE)
    assert messages[0] == {"role": "system", "content": system}
    assert messages[-1] == {"role": "user", "content": f"Passage: {PASSAGE}"}
    assert len(messages) == 2 + 2 * len(schema.examples)
    other = build_messages(schema, system, "Another passage.")
    assert other[:-1] == messages[:-1]  # the shared prefix llama.cpp can reuse


# -- the extraction cache -------------------------------------------------------------------------


def test_extract_calls_the_backend_once_per_passage_text(schema: GraphSchema, tmp_path: Path) -> None:
    backend = FakeGenerator({"Warsaw": triples_json(SPOUSE, BORN)})
    cache = ExtractionCache(tmp_path / "cache.sqlite")
    extractor = make_extractor(schema, backend, cache)
    first = extractor.extract(passage(pid=3))
    assert backend.calls == 1 and extractor.calls == 1
    assert backend.passages == [f"Passage: {PASSAGE}"]
    assert backend.schemas[0] == extractor.json_schema
    assert first.passage_id == 3 and len(first.triples) == 2 and first.error is None
    assert extractor.is_cached(passage())

    again = extractor.extract(passage(pid=3))
    same_text = extractor.extract(passage(pid=7))  # another passage id with the same text
    assert backend.calls == 1 and extractor.calls == 1
    assert again == first
    assert same_text.triples == first.triples and same_text.passage_id == 7
    assert len(cache) == 1
    cache.close()

    # the cache is on disk: a new extractor (a re-run) still does not call the model
    reopened = ExtractionCache(tmp_path / "cache.sqlite")
    later = make_extractor(schema, FakeGenerator(interrupt_on=1), reopened)
    assert later.extract(passage(pid=3)) == first
    assert later.calls == 0
    reopened.close()


def test_invalid_outputs_are_cached_too(schema: GraphSchema, tmp_path: Path) -> None:
    backend = FakeGenerator(default="garbage")
    cache = ExtractionCache(tmp_path / "cache.sqlite")
    extractor = make_extractor(schema, backend, cache)
    result = extractor.extract(passage())
    assert result.triples == [] and result.error
    assert extractor.extract(passage()) == result
    assert backend.calls == 1
    cache.close()


def test_cache_misses_on_other_weights_schema_or_settings(schema: GraphSchema, tmp_path: Path) -> None:
    cache = ExtractionCache(tmp_path / "cache.sqlite")
    outputs = {"Warsaw": triples_json(SPOUSE)}
    make_extractor(schema, FakeGenerator(outputs), cache).extract(passage())

    other_model = FakeGenerator(outputs, identity="fake-model@1")
    make_extractor(schema, other_model, cache).extract(passage())
    assert other_model.calls == 1

    conll = GraphSchema.load(SCHEMAS / "conll04.yaml")
    other_schema = FakeGenerator(outputs)
    make_extractor(conll, other_schema, cache).extract(passage())
    assert other_schema.calls == 1

    other_limit = FakeGenerator(outputs)
    make_extractor(schema, other_limit, cache, max_triples=2).extract(passage())
    assert other_limit.calls == 1

    fingerprints = [
        Settings(max_tokens=100).extraction_fingerprint(),
        Settings(max_tokens=200).extraction_fingerprint(),
    ]
    counts = []
    for fingerprint in fingerprints:
        backend = FakeGenerator(outputs)
        Extractor(schema, backend, cache, 4, 200, fingerprint=fingerprint).extract(passage())
        counts.append(backend.calls)
    assert counts == [1, 1]

    other_text = FakeGenerator(outputs)
    make_extractor(schema, other_text, cache).extract(passage(PASSAGE + " "))
    assert other_text.calls == 1

    same = FakeGenerator(outputs)
    make_extractor(schema, same, cache).extract(passage(pid=9))
    assert same.calls == 0
    cache.close()


def test_extract_without_cache_always_calls(schema: GraphSchema) -> None:
    backend = FakeGenerator()
    extractor = make_extractor(schema, backend, None)
    extractor.extract(passage())
    extractor.extract(passage())
    assert backend.calls == 2 and not extractor.is_cached(passage())
