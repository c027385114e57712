"""End to end with the real 0.5B model, real spaCy, real MiniLM and real FAISS (about a minute)."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora import CURIES, write_corpus

from kgrag.api import KnowledgeGraph
from kgrag.config import Settings
from kgrag.generator.registry import get_spec, missing_packages
from kgrag.index.passage_store import PassageStore
from kgrag.pipeline import Pipeline

pytestmark = pytest.mark.model
SETTINGS = Settings(model="qwen2.5-0.5b", top_k=3, hops=2, max_entities=4)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if missing_packages(get_spec("qwen2.5-0.5b")):
        pytest.fail("the 0.5B model packages are missing: run scripts/setup.sh")
    docs = write_corpus(tmp_path_factory.mktemp("docs"), CURIES)
    out = tmp_path_factory.mktemp("build")
    settings = Settings(model="qwen2.5-0.5b", top_k=3, hops=2, max_entities=4)
    report = Pipeline(settings, out, show_progress=False).run([docs], ["Marie Curie"])
    assert report.model_calls > 0
    return out


def test_expected_triples_with_spans_inside_their_passages(built: Path) -> None:
    kg = KnowledgeGraph.open(built)
    marie = kg.lookup("marie curie")
    assert marie is not None and marie.type == "Person"
    facts = {(f.relation, f.target) for f in marie.facts}
    assert ("spouse", "Pierre Curie") in facts
    assert ("born_in", "Warsaw") in facts
    store = PassageStore(built / "passages.sqlite")
    for fact in marie.facts:
        assert 0.0 <= fact.confidence <= 1.0
        for ev in fact.sources:
            passage = store.passage(ev.passage_id)
            assert passage.start <= ev.start < ev.end <= passage.end
            doc = store.document(ev.doc_id)
            assert doc is not None
            assert ev.derived or fact.target.casefold() in doc.text[ev.start : ev.end].casefold()
    store.close()


def test_rerun_is_cached_and_identical(built: Path) -> None:
    before = (built / "graph.json").read_text(encoding="utf-8")
    settings = Settings(model="qwen2.5-0.5b", top_k=3, hops=2, max_entities=4)
    docs = next(p for p in built.parent.iterdir() if p.name.startswith("docs"))
    report = Pipeline(settings, built, show_progress=False).run([docs], ["Marie Curie"])
    assert report.model_calls == 0
    assert (built / "graph.json").read_text(encoding="utf-8") == before
