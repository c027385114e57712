"""Several models on one passage (``--model a,b``): the mixture of their triples, its cache use,
the factory's choice, and one real run of the two shipped CoNLL04 adapters together."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fakes import SCHEMAS, FakeGenerator, triples_json

from kgrag.config import Settings
from kgrag.extract.cache import ExtractionCache
from kgrag.extract.ensemble import EnsembleExtractor, mix
from kgrag.extract.extractor import Extractor
from kgrag.extract.factory import keep_threshold, make_extractor
from kgrag.generator.ref import model_names
from kgrag.generator.registry import get_spec, missing_packages
from kgrag.records import ExtractedTriple, Extraction, Passage
from kgrag.schema import GraphSchema

CONLL_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll04" / "dev.jsonl"
BOOTH = "John Wilkes Booth , who assassinated President Lincoln , was an actor ."
KILL = ["John Wilkes Booth", "Peop", "Kill", "President Lincoln", "Peop"]
LIVE = ["John Wilkes Booth", "Peop", "Live_In", "Washington", "Loc"]


def triple(head: str, relation: str, tail: str, prob: float) -> ExtractedTriple:
    return ExtractedTriple(head=head, head_type="Peop", relation=relation, tail=tail, tail_type="Peop", prob=prob)


def test_model_names_split_on_commas() -> None:
    assert model_names("qwen2.5-1.5b") == ["qwen2.5-1.5b"]
    assert model_names(" a , b,a,, ") == ["a", "b"]


def test_mix_averages_probabilities_with_zero_for_a_missing_model() -> None:
    a = Extraction(
        passage_id=1,
        triples=[triple("Booth", "Kill", "Lincoln", 0.9), triple("Booth", "Live_In", "Ford", 0.95)],
        completion_tokens=10,
        prompt_tokens=100,
        seconds=1.0,
    )
    b = Extraction(
        passage_id=1,
        triples=[triple("booth", "Kill", "LINCOLN", 0.8), triple("Lincoln", "Work_For", "Senate", 0.8)],
        completion_tokens=20,
        prompt_tokens=200,
        seconds=2.0,
        error="1 invalid triples dropped",
    )
    mixed = mix([a, b], 7, min_prob=0.45)
    probs = {(t.head, t.relation, t.tail): t.prob for t in mixed.triples}
    # both wrote it (names differ in case only: the first spelling is kept); one wrote it at 0.95 -> 0.475;
    # one wrote it at 0.8 -> 0.4 < 0.45, dropped
    assert probs.keys() == {("Booth", "Kill", "Lincoln"), ("Booth", "Live_In", "Ford")}
    assert math.isclose(probs[("Booth", "Kill", "Lincoln")], 0.85)
    assert math.isclose(probs[("Booth", "Live_In", "Ford")], 0.475)
    assert (mixed.passage_id, mixed.completion_tokens, mixed.prompt_tokens, mixed.seconds) == (7, 30, 300, 3.0)
    assert mixed.error == "1 invalid triples dropped"
    assert len(mix([a, b], 7, min_prob=0.0).triples) == 3  # 0: the union
    assert mix([a, b], 7, min_prob=0.5).triples == [mixed.triples[0]]  # 0.5: what both wrote


def _extractor(schema: GraphSchema, backend: FakeGenerator, cache: ExtractionCache | None) -> Extractor:
    return Extractor(schema, backend, cache, max_triples=6, max_tokens=400, prompt_style="compact")


def test_ensemble_runs_each_member_through_its_own_cache(tmp_path: Path) -> None:
    schema = GraphSchema.load(SCHEMAS / "conll04.yaml")
    cache = ExtractionCache(tmp_path / "cache.sqlite")
    first = FakeGenerator({"Booth": triples_json(KILL)}, identity="m1@0", logprob=-0.01)
    second = FakeGenerator({"Booth": triples_json(KILL, LIVE)}, identity="m2@0", logprob=-0.01)
    ensemble = EnsembleExtractor([_extractor(schema, first, cache), _extractor(schema, second, cache)], 0.45)
    passage = Passage(id=3, doc_id="d", start=0, end=len(BOOTH), text=BOOTH)
    assert ensemble.identity == "m1@0 & m2@0" and not ensemble.is_cached(passage)

    extraction = ensemble.extract(passage)
    assert [(t.relation, round(t.prob, 2)) for t in extraction.triples] == [("Kill", 0.99), ("Live_In", 0.5)]
    assert ensemble.calls == 2 and ensemble.is_cached(passage)
    assert ensemble.extract(passage) == extraction and first.calls == second.calls == 1  # from the cache

    # a third member reruns only itself
    third = FakeGenerator({"Booth": triples_json(LIVE)}, identity="m3@0", logprob=-0.01)
    bigger = EnsembleExtractor([ensemble.members[0], ensemble.members[1], _extractor(schema, third, cache)], 0.45)
    assert [t.relation for t in bigger.extract(passage).triples] == ["Kill", "Live_In"]
    assert (first.calls, second.calls, third.calls) == (1, 1, 1)
    with pytest.raises(ValueError):
        EnsembleExtractor([ensemble.members[0]], 0.45)


def test_factory_builds_one_extractor_per_model() -> None:
    schema = GraphSchema.load(SCHEMAS / "conll04.yaml")
    settings = Settings(schema_path=SCHEMAS / "conll04.yaml", model="qwen2.5-0.5b-conll04, qwen2.5-1.5b-conll04")
    ensemble = make_extractor(settings, schema, None)
    assert isinstance(ensemble, EnsembleExtractor) and ensemble.min_prob == settings.ensemble_min_prob == 0.45
    assert [m.compact for m in ensemble.members] == [True, True]  # each adapter's own prompt style
    first, second = ensemble.identity.split(" & ")
    assert first.startswith("qwen2.5-0.5b@") and second.startswith("qwen2.5-1.5b@") and not ensemble.loaded
    single = make_extractor(settings.model_copy(update={"model": "qwen2.5-0.5b"}), schema, None)
    assert isinstance(single, Extractor) and not single.compact
    fake = make_extractor(settings, schema, None, backend=FakeGenerator())  # a given backend: one model
    assert isinstance(fake, Extractor) and fake.identity == "fake-model@0"
    # build and eval drop under one threshold: a mixture's own (min_triple_prob on top of its mean would
    # drop everything only one of two models wrote), one model's min_triple_prob
    assert keep_threshold(settings.model_copy(update={"min_triple_prob": 0.5}), ensemble) == 0.45
    assert keep_threshold(settings.model_copy(update={"min_triple_prob": 0.3}), fake) == 0.3


@pytest.mark.model
def test_two_real_adapters_mixed_on_conll04_dev(tmp_path: Path) -> None:
    from kgrag.evaluation.harness import evaluate_extraction

    for base in ("qwen2.5-0.5b", "qwen2.5-1.5b"):
        if missing_packages(get_spec(base)):
            pytest.fail(f"the {base} model packages are missing: run scripts/setup.sh")
    model = "qwen2.5-0.5b-conll04,qwen2.5-1.5b-conll04"
    settings = Settings(schema_path=SCHEMAS / "conll04.yaml", model=model, n_threads=2)
    predictions = tmp_path / "predictions.jsonl"
    report = evaluate_extraction(CONLL_DEV, settings, limit=8, predictions=predictions, show_progress=False)
    assert report.invalid == 0 and report.failed == 0
    assert "+lora:qwen2.5-0.5b-conll04@" in report.config.model_identity
    assert "+lora:qwen2.5-1.5b-conll04@" in report.config.model_identity
    assert report.strict.f1 >= 0.5  # measured 0.632 on these 8 (all 231 dev: see README)
    rows: list[dict[str, Any]] = [json.loads(line) for line in predictions.read_text().splitlines()]
    probs = [t["prob"] for row in rows for t in row["generated"]]
    assert probs and all(0.45 <= p <= 1.0 for p in probs)
