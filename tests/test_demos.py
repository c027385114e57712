"""Retrieval-augmented demonstrations: nearest training examples (real MiniLM, real FAISS) as few-shot turns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import SCHEMAS, FakeGenerator, generation

from kgrag.extract.demos import DemoRetriever, generic_type, to_demo
from kgrag.extract.extractor import Extractor
from kgrag.generator.base import Generation
from kgrag.index.embedder import MiniLMEmbedder
from kgrag.records import Passage
from kgrag.schema import GraphSchema

TRAIN = [
    {
        "id": "t-0",
        "text": "John Smith , a spokesman for General Motors in Detroit , said sales fell .",
        "triples": [["John Smith", "Work_For", "General Motors"], ["General Motors", "OrgBased_In", "Detroit"]],
        "entities": [["John Smith", "Peop"], ["General Motors", "Org"], ["Detroit", "Loc"]],
    },
    {
        "id": "t-1",
        "text": "Lee Harvey Oswald shot President John F. Kennedy in Dallas in 1963 .",
        "triples": [["Lee Harvey Oswald", "Kill", "President John F. Kennedy"]],
        "entities": [["Lee Harvey Oswald", "Peop"], ["President John F. Kennedy", "Peop"], ["Dallas", "Loc"]],
    },
    {
        "id": "t-2",
        "text": "Boston is the largest city in Massachusetts .",
        "triples": [["Boston", "Located_In", "Massachusetts"]],
        "entities": [["Boston", "Loc"], ["Massachusetts", "Loc"]],
    },
    {
        "id": "t-3",
        "text": "The weather was cold and rainy all week .",
        "triples": [],
        "entities": [],
    },
    {
        "id": "t-4",
        "text": "Mary Jones of Chicago works as an engineer at Boeing .",
        "triples": [["Mary Jones", "Live_In", "Chicago"], ["Mary Jones", "Work_For", "Boeing"]],
        "entities": [["Mary Jones", "Peop"], ["Chicago", "Loc"], ["Boeing", "Org"]],
    },
    {
        "id": "t-5",
        "text": "The assassin John Wilkes Booth killed Abraham Lincoln at Ford 's Theatre .",
        "triples": [["John Wilkes Booth", "Kill", "Abraham Lincoln"]],
        "entities": [["John Wilkes Booth", "Peop"], ["Abraham Lincoln", "Peop"], ["Ford 's Theatre", "Loc"]],
    },
]


@pytest.fixture(scope="module")
def schema() -> GraphSchema:
    return GraphSchema.load(SCHEMAS / "conll04.yaml")


def write_train(folder: Path) -> Path:
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TRAIN), encoding="utf-8")
    return path


@pytest.fixture()
def train_file(tmp_path: Path) -> Path:
    return write_train(tmp_path)


@pytest.fixture(scope="module")
def retriever(schema: GraphSchema, embedder: MiniLMEmbedder, tmp_path_factory: pytest.TempPathFactory) -> DemoRetriever:
    folder = tmp_path_factory.mktemp("demos")
    return DemoRetriever(write_train(folder), schema, embedder=embedder, cache_dir=folder / "cache")


def test_nearest_returns_the_k_most_similar_examples(retriever: DemoRetriever) -> None:
    demos = retriever.nearest("An assassin shot and killed the president .", 2)
    assert {d["text"] for d in demos} == {TRAIN[1]["text"], TRAIN[5]["text"]}  # the two killings
    city = retriever.nearest("Springfield is the capital city of Illinois .", 1)
    assert [d["text"] for d in city] == [TRAIN[2]["text"]]
    assert len(retriever.nearest("anything", 10)) == len(TRAIN)  # never more than there are
    assert retriever.nearest("anything", 0) == []


def test_nearest_never_returns_the_query_text_itself(retriever: DemoRetriever) -> None:
    query = TRAIN[2]["text"]
    demos = retriever.nearest(query, 3)
    assert len(demos) == 3
    assert all(d["text"] != query for d in demos)
    # whitespace differences do not sneak the same text back in
    assert all(d["text"] != query for d in retriever.nearest("  " + query.replace(" ", "  "), 3))


def test_conll04_triples_become_typed_schema_examples(retriever: DemoRetriever, schema: GraphSchema) -> None:
    demo = next(d for d in retriever.nearest("A spokesman for the carmaker in Michigan .", 6) if "General" in d["text"])
    assert demo["triples"] == [
        ["John Smith", "Peop", "Work_For", "General Motors", "Org"],
        ["General Motors", "Org", "OrgBased_In", "Detroit", "Loc"],
    ]
    # a triple whose relation the schema lacks or whose types break its domain/range is dropped
    record = {"text": "x", "triples": [["A", "Work_For", "B"], ["A", "Unknown", "B"], ["B", "Work_For", "A"]]}
    record["entities"] = [["A", "Peop"], ["B", "Org"]]
    assert to_demo(record, schema) == {"text": "x", "triples": [["A", "Peop", "Work_For", "B", "Org"]]}
    assert to_demo({"text": "x", "triples": [["A", "Unknown", "B"]]}, schema) is None  # nothing left to teach


def test_untyped_triples_get_the_schemas_generic_type() -> None:
    webnlg = GraphSchema.load(SCHEMAS / "webnlg.yaml")
    assert generic_type(webnlg) == "Entity"
    record = {"text": "Aarhus Airport is in Aarhus .", "triples": [["Aarhus_Airport", "cityServed", "Aarhus"]]}
    assert to_demo(record, webnlg) == {
        "text": record["text"],
        "triples": [["Aarhus_Airport", "Entity", "cityServed", "Aarhus", "Entity"]],
    }


def test_index_is_reused_from_disk(
    train_file: Path, schema: GraphSchema, embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    first = DemoRetriever(train_file, schema, embedder=embedder, cache_dir=tmp_path / "demos")
    assert first.built and first.index_path.exists() and first.index_path.name.endswith(".faiss")
    stamp = first.index_path.stat().st_mtime_ns
    second = DemoRetriever(train_file, schema, embedder=embedder, cache_dir=tmp_path / "demos")
    assert not second.built and second.index_path == first.index_path
    assert second.index_path.stat().st_mtime_ns == stamp
    query = "Who killed Lincoln ?"
    assert second.nearest(query, 3) == first.nearest(query, 3)
    # a changed training file gets its own index
    with train_file.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "t-6", "text": "Paris is in France .", "triples": []}) + "\n")
    third = DemoRetriever(train_file, schema, embedder=embedder, cache_dir=tmp_path / "demos")
    assert third.built and third.index_path != first.index_path and third.index.ntotal == len(TRAIN) + 1


class _Recorder(FakeGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[list[dict[str, str]]] = []

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        self.messages.append(messages)
        return generation('{"triples": []}')


def test_extractor_puts_demos_in_the_prompt_and_the_cache_key(retriever: DemoRetriever, schema: GraphSchema) -> None:
    text = "Kate Brown , an official of the Ford Motor Company in Dearborn , resigned ."
    passage = Passage(id=0, doc_id="d", start=0, end=len(text), text=text)
    backend = _Recorder()
    plain = Extractor(schema, backend, None, 4, 200, fingerprint={"prompt": "t"})
    with_demos = Extractor(schema, backend, None, 4, 200, fingerprint={"prompt": "t"}, demos=retriever, n_demos=2)
    plain.extract(passage)
    with_demos.extract(passage)
    static, retrieved = backend.messages
    assert len(static) == 2 + 2 * len(schema.examples)
    assert len(retrieved) == 2 + 2 * 2
    assert retrieved[0] == static[0] and retrieved[-1] == static[-1]
    # the most similar demo sits right before the passage
    assert retrieved[-3]["content"] == f"Passage: {retriever.nearest(text, 1)[0]['text']}"
    assert json.loads(retrieved[-2]["content"])["triples"] == retriever.nearest(text, 1)[0]["triples"]
    assert plain.key(passage) != with_demos.key(passage)
    three = Extractor(schema, backend, None, 4, 200, fingerprint={"prompt": "t"}, demos=retriever, n_demos=3)
    assert three.key(passage) != with_demos.key(passage)
