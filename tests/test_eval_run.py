"""``kgrag eval``: the harness with a canned backend (robustness, report, predictions), the
verbaliser scores, and one real run on 5 CoNLL04 dev examples with the 0.5B model."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import SCHEMAS, FakeGenerator, triples_json
from typer.testing import CliRunner

from kgrag.cli import app
from kgrag.config import Settings
from kgrag.evaluation.harness import EvalReport, evaluate_extraction, sample_lines
from kgrag.evaluation.verbalise_eval import evaluate_verbaliser, group_references, unquote
from kgrag.generator.base import Generation

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CONLL_DEV = DATA / "conll04" / "dev.jsonl"

BOOTH = "John Wilkes Booth , who assassinated President Lincoln , was an actor ."
WANG = "In the field of mechanics , Wang Ziqiang at the Institute of Mechanics has made headway ."
OSWALD = "Lee Harvey Oswald shot Kennedy in Dallas ."


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def conll_rows() -> list[Any]:
    return [
        {
            "id": "c-0",
            "text": BOOTH,
            "triples": [["John Wilkes Booth", "Kill", "President Lincoln"]] * 2,  # gold repeats are de-duplicated
            "entities": [["John Wilkes Booth", "Peop"], ["President Lincoln", "Peop"]],
        },
        "{not json",
        {
            "id": "c-2",
            "text": WANG,
            "triples": [["Wang Ziqiang", "Work_For", "Institute of Mechanics"]],
            "entities": [["Wang Ziqiang", "Peop"], ["Institute of Mechanics", "Org"]],
        },
        {"id": "c-3", "text": OSWALD, "triples": [["Lee Harvey Oswald", "Kill", "Kennedy"]]},
    ]


class FailingGenerator(FakeGenerator):
    """Raises an ordinary error on passages containing ``fail_on``."""

    def __init__(self, fail_on: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_on = fail_on

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        if self.fail_on in messages[-1]["content"]:
            raise RuntimeError("backend exploded")
        return super().generate(messages, json_schema, max_tokens)


class ParallelGenerator(FailingGenerator):
    """Serves several requests at once, as a server or the in-process batch decoder does; notes
    the most it had in flight."""

    parallelism = 3

    def __init__(self, fail_on: str, **kwargs: Any) -> None:
        super().__init__(fail_on, **kwargs)
        self._lock = threading.Lock()
        self.in_flight = self.most = 0

    def generate(self, messages: list[dict[str, str]], json_schema: dict[str, Any], max_tokens: int) -> Generation:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.05)
            return super().generate(messages, json_schema, max_tokens)
        finally:
            with self._lock:
                self.in_flight -= 1


OUTPUTS = {
    "Booth": triples_json(
        ["John Wilkes Booth", "Peop", "Kill", "President Lincoln", "Peop"],
        ["john wilkes booth", "Peop", "Kill", "president lincoln", "Peop"],  # same triple, normalized
        ["Abraham Lincoln", "Peop", "Kill", "John Wilkes Booth", "Peop"],  # not in the text: filtered
    ),
    "Wang": triples_json(["wang ziqiang", "Peop", "Work_For", "Institute of Mechanics", "Org"]),
}


@pytest.fixture
def settings() -> Settings:
    return Settings(schema_path=SCHEMAS / "conll04.yaml", model="fake")


def test_report_and_predictions_with_a_bad_line_and_a_failing_example(tmp_path: Path, settings: Settings) -> None:
    data = write_jsonl(tmp_path / "dev.jsonl", conll_rows())
    preds = tmp_path / "out" / "preds.jsonl"
    backend = FailingGenerator("Oswald", outputs=OUTPUTS)
    report = evaluate_extraction(data, settings, predictions=preds, backend=backend, show_progress=False)

    assert (report.examples, report.failed, report.interrupted) == (4, 2, False)
    # gold: Booth-Kill-Lincoln, Wang-Work_For-Institute, Oswald-Kill-Kennedy (the failed example scores nothing)
    # "wang ziqiang" is snapped to the text's "Wang Ziqiang", so it is a strict hit too
    assert (report.strict.tp, report.strict.predicted, report.strict.gold) == (2, 2, 3)
    assert (report.normalized.tp, report.normalized.predicted, report.normalized.gold) == (2, 2, 3)
    assert report.normalized.f1 == pytest.approx(2 * (1.0 * 2 / 3) / (1.0 + 2 / 3))
    assert report.filtered == 1 and report.unfiltered["strict"].predicted == 3
    assert report.entities is not None and report.entities.gold == 4
    assert report.entities_typed is not None and report.entities_typed.tp == 4
    kill = next(r for r in report.per_relation if r.relation == "Kill")
    assert (kill.gold, kill.predicted, kill.normalized.tp) == (2, 1, 1)
    assert report.macro_f1.normalized == pytest.approx((2 / 3 + 1.0) / 2)
    assert report.config.dataset_sha256 and report.config.schema_name == "conll04"
    assert report.config.model_identity == "fake-model@0" and report.config.prompt_version
    assert report.config.snapping == "snap-v1"

    lines = [json.loads(line) for line in preds.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 4
    assert lines[0]["gold"] == [["John Wilkes Booth", "Kill", "President Lincoln"]] * 2
    assert lines[0]["dropped"] == [["Abraham Lincoln", "Peop", "Kill", "John Wilkes Booth", "Peop"]]
    assert lines[0]["tp"] == {"strict": 1, "normalized": 1}
    assert lines[0]["predicted"] == [["John Wilkes Booth", "Kill", "President Lincoln"]]
    assert lines[0]["snapped"] == []  # the lower-case copy was already merged by the extractor
    assert lines[2]["snapped"] == [["wang ziqiang", "Wang Ziqiang"]] and lines[2]["tp"]["strict"] == 1
    assert "unreadable" in lines[1]["error"] and "exploded" in lines[3]["error"]


def test_a_backend_serving_several_at_once_reads_examples_together(tmp_path: Path, settings: Settings) -> None:
    """The same report and predictions (in file order) as one example at a time, the failing
    example failing alone, with several requests in flight."""
    data = write_jsonl(tmp_path / "dev.jsonl", conll_rows())
    one, many = FailingGenerator("Oswald", outputs=OUTPUTS), ParallelGenerator("Oswald", outputs=OUTPUTS)
    reports = [
        evaluate_extraction(data, settings, predictions=tmp_path / f"{n}.jsonl", backend=b, show_progress=False)
        for n, b in (("one", one), ("many", many))
    ]
    assert many.most > 1
    keys = ("examples", "failed", "invalid", "strict", "normalized", "filtered")
    assert [getattr(reports[1], k) for k in keys] == [getattr(reports[0], k) for k in keys]
    assert (tmp_path / "many.jsonl").read_text(encoding="utf-8") == (tmp_path / "one.jsonl").read_text(encoding="utf-8")


def test_ctrl_c_leaves_a_partial_report(tmp_path: Path, settings: Settings) -> None:
    rows = [r for r in conll_rows() if not isinstance(r, str)]
    data = write_jsonl(tmp_path / "dev.jsonl", rows)
    backend = FakeGenerator(OUTPUTS, interrupt_on=2)
    report = evaluate_extraction(data, settings, backend=backend, show_progress=False)
    assert report.interrupted and report.examples == 1
    assert (report.strict.tp, report.strict.gold) == (1, 1)


def test_limit_and_report_keys(tmp_path: Path, settings: Settings) -> None:
    data = write_jsonl(tmp_path / "dev.jsonl", [r for r in conll_rows() if not isinstance(r, str)])
    report = evaluate_extraction(data, settings, limit=2, backend=FakeGenerator(OUTPUTS), show_progress=False)
    assert report.examples == 2 and report.config.limit == 2
    dumped = json.loads(report.model_dump_json())
    assert list(dumped)[:2] == ["strict", "normalized"]
    for key in ("per_relation", "macro_f1", "invalid", "examples_per_s", "config"):
        assert key in dumped
    assert set(dumped["strict"]) >= {"precision", "recall", "f1"}


def test_eval_drops_what_build_drops_under_min_triple_prob(tmp_path: Path, settings: Settings) -> None:
    """Eval applies the build's confidence threshold, so its figures are those of the graph build writes."""
    data = write_jsonl(tmp_path / "dev.jsonl", [r for r in conll_rows() if not isinstance(r, str)])
    unsure = FakeGenerator(OUTPUTS, logprob=-1.0)  # every token at e^-1: P(t|D) = 0.37
    report = evaluate_extraction(data, settings, backend=unsure, show_progress=False)  # default 0.5
    assert report.config.min_prob == settings.min_triple_prob == 0.5
    assert report.strict.predicted == 0 and report.below_threshold == 2  # Booth's and Wang's usable triples
    assert report.unfiltered["strict"].predicted == 3  # the raw output is still scored before any filter
    looser = settings.model_copy(update={"min_triple_prob": 0.3})
    report = evaluate_extraction(data, looser, backend=FakeGenerator(OUTPUTS, logprob=-1.0), show_progress=False)
    assert report.config.min_prob == 0.3 and report.below_threshold == 0 and report.strict.tp == 2


def test_sample_draws_seeded_examples_in_file_order(tmp_path: Path, settings: Settings) -> None:
    rows = [r for r in conll_rows() if not isinstance(r, str)]
    data = write_jsonl(tmp_path / "dev.jsonl", rows)
    ids = [json.loads(line)["id"] for line in sample_lines(data.read_text(encoding="utf-8").splitlines(), 2, seed=1)]
    assert len(ids) == 2 and ids == sorted(ids, key=[r["id"] for r in rows].index)
    preds = tmp_path / "p.jsonl"
    report = evaluate_extraction(
        data, settings, sample=2, seed=1, predictions=preds, backend=FakeGenerator(OUTPUTS), show_progress=False
    )
    assert report.examples == 2 and (report.config.sample, report.config.seed) == (2, 1)
    assert [json.loads(line)["id"] for line in preds.read_text(encoding="utf-8").splitlines()] == ids
    assert sample_lines(["a", "b"], 5, seed=0) == ["a", "b"]


def test_chunked_eval_extracts_each_passage_and_scores_the_union(tmp_path: Path) -> None:
    """A document-level example is cut into the build's passages (real spaCy sentences), each passage
    is one prompt, and the union of their triples is scored against the document's gold."""
    settings = Settings(schema_path=SCHEMAS / "conll04.yaml", model="fake", chunk_sentences=1, chunk_overlap=0)
    text = f"{BOOTH}\n\n{WANG}\n\n{OSWALD}"
    gold = [
        ["John Wilkes Booth", "Kill", "President Lincoln"],
        ["Wang Ziqiang", "Work_For", "Institute of Mechanics"],
        ["Lee Harvey Oswald", "Kill", "Kennedy"],
    ]
    data = write_jsonl(tmp_path / "doc.jsonl", [{"id": "d-0", "text": text, "triples": gold}])
    whole = evaluate_extraction(data, settings, backend=FakeGenerator(OUTPUTS), show_progress=False)
    backend = FakeGenerator(OUTPUTS)
    chunked = evaluate_extraction(data, settings, backend=backend, show_progress=False, chunked=True)

    assert len(backend.passages) == 3 and chunked.config.chunked and not whole.config.chunked
    assert (chunked.strict.tp, chunked.strict.predicted, chunked.strict.gold) == (2, 2, 3)
    assert chunked.examples == 1 and chunked.filtered == 1
    assert whole.strict.tp == 1  # one prompt for the whole text: only the first key's output


def test_cli_eval_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kgrag.extract.factory as factory

    data = write_jsonl(tmp_path / "dev.jsonl", [r for r in conll_rows() if not isinstance(r, str)])
    monkeypatch.setattr(factory, "LazyLlamaCpp", lambda ref, options: FakeGenerator(OUTPUTS))
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(data),
            "--schema",
            str(SCHEMAS / "conll04.yaml"),
            "--model",
            "fake",
            "--report",
            str(out),
            "--min-triple-prob",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "strict" in result.output and "per relation" in result.output
    report = EvalReport.model_validate_json(out.read_text(encoding="utf-8"))
    assert report.examples == 3 and report.config.min_prob == 0.3


def test_cli_eval_missing_file_is_one_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1


def test_verbaliser_scores_against_grouped_references(tmp_path: Path) -> None:
    triples = [["Aarhus Airport", "cityServed", '"Aarhus, Denmark"']]
    data = write_jsonl(
        tmp_path / "webnlg.jsonl",
        [
            {"id": "w-0-0", "text": "Aarhus Airport city served Aarhus, Denmark.", "triples": triples},
            {"id": "w-0-1", "text": "Aarhus Airport serves the city of Aarhus, Denmark.", "triples": triples},
            {
                "id": "w-1-0",
                "text": "The leader of Aarhus is Jacob Bundsgaard.",
                "triples": [["Aarhus", "leader", "Jacob Bundsgaard"]],
            },
        ],
    )
    groups, failed = group_references(data.read_text(encoding="utf-8").splitlines())
    assert failed == 0 and [len(refs) for _, refs in groups] == [2, 1]
    assert unquote('"Aarhus, Denmark"') == "Aarhus, Denmark"

    first = evaluate_verbaliser(data, limit=1)
    assert first.sets == 1 and first.references == 2
    assert first.bleu == pytest.approx(100.0) and first.rouge_l.f1 == pytest.approx(1.0)
    both = evaluate_verbaliser(data, predictions=tmp_path / "hyp.jsonl")
    assert both.sets == 2 and 0 < both.bleu < 100 and 0 < both.rouge_l.f1 < 1
    assert json.loads((tmp_path / "hyp.jsonl").read_text(encoding="utf-8").splitlines()[1])["hypothesis"] == (
        "Aarhus leader Jacob Bundsgaard."
    )


@pytest.mark.model
def test_real_model_on_five_conll04_dev_examples(tmp_path: Path) -> None:
    if not CONLL_DEV.exists():
        pytest.skip(f"no {CONLL_DEV}")
    settings = Settings(schema_path=SCHEMAS / "conll04.yaml", model="qwen2.5-0.5b")
    report = evaluate_extraction(CONLL_DEV, settings, limit=5, predictions=tmp_path / "p.jsonl", show_progress=False)
    dumped = json.loads(report.model_dump_json())
    assert list(dumped)[:2] == ["strict", "normalized"]
    for mode in ("strict", "normalized"):
        assert 0.0 <= dumped[mode]["f1"] <= 1.0 and dumped[mode]["gold"] == 7
    assert report.examples == 5 and report.failed == 0 and report.examples_per_s > 0
    assert report.config.model_identity.startswith("qwen2.5-0.5b@") and len(report.config.dataset_sha256) == 64
    assert report.normalized.f1 >= report.strict.f1
    assert len((tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()) == 5
