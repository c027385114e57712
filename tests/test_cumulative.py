"""A build directory grows and loses nothing: later builds with other seeds, documents and settings
add to its graph; a fact goes only with its documents or on request; an interrupted build leaves the
last complete graph in place; one writer at a time; checks that need no model fail before it loads.

Builds use the fake generator of test_pipeline.py with the real spaCy, MiniLM and FAISS; the kills,
signals and the lock use real processes (tests/build_worker.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import EMPTY, FakeGenerator, cached_extractions, triples_json
from test_pipeline import CORPUS, EXPECTED, OUTPUTS, facts, settings
from typer.testing import CliRunner

from kgrag.api import KnowledgeGraph
from kgrag.builddir import BuildDir
from kgrag.cli import app
from kgrag.errors import KgragError
from kgrag.index.embedder import MiniLMEmbedder
from kgrag.index.faiss_index import FaissIndex
from kgrag.index.passage_store import PassageStore
from kgrag.pipeline import Pipeline
from kgrag.records import BuildReport
from kgrag.schema import GraphSchema

WORKER = Path(__file__).resolve().parent / "build_worker.py"
MARIE = {f for f in EXPECTED if "Marie Curie" in (f[0], f[2])}
BECQUEREL = {f for f in EXPECTED if f[0] == "Henri Becquerel"}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A private copy of the corpus, which a test may change."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def run(
    inputs: Path | list[Path],
    out: Path,
    embedder: MiniLMEmbedder,
    seeds: tuple[str, ...] = (),
    backend: FakeGenerator | None = None,
    options: dict[str, bool] | None = None,
    **overrides: Any,
) -> BuildReport:
    pipeline = Pipeline(
        settings(**({"top_k": 3} | overrides)),
        out,
        backend=backend or FakeGenerator(OUTPUTS),
        embedder=embedder,
        show_progress=False,
    )
    return pipeline.run(inputs if isinstance(inputs, list) else [inputs], list(seeds), **(options or {}))


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


# -- 1. cumulative builds ------------------------------------------------------------------------------


def test_new_seeds_keep_what_earlier_builds_found(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    """The issue's sequence: a build with other seeds and a smaller top-k used to delete facts."""
    out = tmp_path / "kg"
    run(docs, out, embedder, ("Marie Curie",))
    first = facts(out)
    assert first and first <= EXPECTED
    run(docs, out, embedder, ("Henri Becquerel",), top_k=2)
    second = facts(out)
    assert first < second and second & BECQUEREL
    assert manifest(out)["seeds"] == ["Marie Curie", "Henri Becquerel"]
    assert manifest(out)["graph"]["complete"] is True

    report = run(docs, out, embedder)  # no seeds: the remembered ones are expanded again
    assert report.entities_expanded == ["Marie Curie", "Henri Becquerel"]
    assert facts(out) >= second
    bigger = run(docs, out, embedder, ("Marie Curie",), max_entities=1, hops=1)  # a smaller budget removes nothing
    assert bigger.entities_expanded == ["Marie Curie"] and facts(out) >= second


def test_seeds_only_gives_the_graph_of_exactly_these_seeds(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    out, fresh = tmp_path / "kg", tmp_path / "fresh"
    run(docs, out, embedder, ("Marie Curie",))
    run(docs, out, embedder, ("Henri Becquerel",), options={"seeds_only": True})
    run(docs, fresh, embedder, ("Henri Becquerel",))
    assert (out / "graph.json").read_bytes() == (fresh / "graph.json").read_bytes()
    assert manifest(out)["seeds"] == ["Henri Becquerel"]


def test_rerunning_a_command_is_idempotent_after_growth(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = tmp_path / "kg"
    run(docs, out, embedder, ("Marie Curie",), hops=2)
    run(docs, out, embedder, ("Henri Becquerel",), hops=2)
    graph = (out / "graph.json").read_bytes()
    report = run(docs, out, embedder, ("Henri Becquerel",), hops=2, backend=FakeGenerator(OUTPUTS, interrupt_on=1))
    assert report.model_calls == 0 and (out / "graph.json").read_bytes() == graph


def test_new_documents_add_facts(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "marie.txt").write_text(CORPUS["marie.txt"], encoding="utf-8")
    (second / "pierre.txt").write_text(CORPUS["pierre.txt"], encoding="utf-8")
    out = tmp_path / "kg"
    run(first, out, embedder, ("Marie Curie", "Pierre Curie"), top_k=20)
    before = facts(out)
    run(second, out, embedder, top_k=20)  # other documents, the remembered seeds
    after = facts(out)
    assert before < after and ("Pierre Curie", "born_in", "Paris") in after - before
    assert PassageStore(out / "passages.sqlite").counts()["documents"] == 2


def test_changed_and_deleted_documents_take_their_facts_with_them(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    out = tmp_path / "kg"
    run(docs, out, embedder, ("Marie Curie", "Pierre Curie", "Henri Becquerel"), top_k=20)
    assert facts(out) == EXPECTED
    pierre = docs / "pierre.txt"
    pierre.write_text(CORPUS["pierre.txt"].replace("Pierre Curie was born in Paris. ", ""), encoding="utf-8")
    run(docs, out, embedder, top_k=20)
    assert facts(out) == EXPECTED - {("Pierre Curie", "born_in", "Paris")}
    (docs / "becquerel.txt").unlink()
    run(docs, out, embedder, top_k=20)
    assert facts(out) == EXPECTED - {("Pierre Curie", "born_in", "Paris")} - BECQUEREL
    counts = PassageStore(out / "passages.sqlite").counts()
    assert counts["documents"] == 2  # the old pierre.txt and becquerel.txt are retired, not counted
    pierre.write_text(CORPUS["pierre.txt"], encoding="utf-8")  # the old text is back: so is its fact
    run(docs, out, embedder, top_k=20)
    assert ("Pierre Curie", "born_in", "Paris") in facts(out)


def test_building_from_another_working_directory_keeps_the_documents(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative input paths resolve elsewhere; a document counts as gone only when its own file is."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "kg"
    run(Path("docs"), out, embedder, ("Marie Curie",))
    before = facts(out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "extra.txt").write_text("Henri Becquerel discovered radioactivity.", encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    run(Path("extra.txt"), out, embedder)
    assert before <= facts(out)


def test_another_model_or_schema_is_refused_until_reset(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = tmp_path / "kg"
    run(docs, out, embedder, ("Marie Curie",))
    other_schema = tmp_path / "schema.yaml"
    schema = (Path(__file__).resolve().parents[1] / "kgrag" / "schemas" / "default.yaml").read_text(encoding="utf-8")
    other_schema.write_text(schema.replace("name: default", "name: mine", 1), encoding="utf-8")
    with pytest.raises(KgragError, match="--reset") as refused:
        run(docs, out, embedder, ("Marie Curie",), schema_path=other_schema)
    assert "\n" not in str(refused.value)
    graph = (out / "graph.json").read_bytes()
    assert manifest(out)["schema"]["name"] == "default"  # the refusal changed nothing
    report = run(docs, out, embedder, ("Henri Becquerel",), schema_path=other_schema, options={"reset": True})
    assert report.status == "complete" and (out / "graph.json").read_bytes() != graph
    fresh = tmp_path / "fresh"
    run(docs, fresh, embedder, ("Henri Becquerel",), schema_path=other_schema)
    assert (out / "graph.json").read_bytes() == (fresh / "graph.json").read_bytes()


def test_a_schema_changed_only_in_how_it_filters_is_applied_without_a_reset(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    """Upgrading to a schema whose changes the model never reads (``named``, ``expand``,
    ``compatible``) keeps the build and applies them to its cached extractions."""
    out = tmp_path / "kg"
    default = (Path(__file__).resolve().parents[1] / "kgrag" / "schemas" / "default.yaml").read_text(encoding="utf-8")
    before = tmp_path / "before.yaml"
    before.write_text(default.replace("    named: true\n", ""), encoding="utf-8")
    described = ("Pierre Curie", "member_of", "physicist")  # an Organization without a name
    output = triples_json(["Pierre Curie", "Person", "member_of", "physicist", "Organization"])
    backend = FakeGenerator({"Pierre Curie was a French physicist": output})
    run(docs, out, embedder, ("Pierre Curie",), backend, schema_path=before)
    assert described in facts(out)
    calls = backend.calls
    after = tmp_path / "after.yaml"
    after.write_text(default, encoding="utf-8")
    report = run(docs, out, embedder, ("Pierre Curie",), backend, schema_path=after)
    assert report.status == "complete" and backend.calls == calls  # read from the cache
    assert described not in facts(out)
    assert manifest(out)["schema"]["fingerprint"] == GraphSchema.load(after).fingerprint()


# -- 2. interrupted builds -----------------------------------------------------------------------------


def test_an_interrupted_build_keeps_the_last_complete_graph(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    out, reference = tmp_path / "kg", tmp_path / "reference"
    for target in (out, reference):
        run(docs, target, embedder, ("Marie Curie",))
    graph = (out / "graph.json").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        run(docs, out, embedder, ("Henri Becquerel",), backend=FakeGenerator(OUTPUTS, interrupt_on=2))
    assert (out / "graph.json").read_bytes() == graph
    state = manifest(out)
    assert state["status"] == "interrupted" and state["graph"]["complete"] is True
    assert KnowledgeGraph.open(out).lookup("Marie Curie") is not None
    run(docs, out, embedder, ("Henri Becquerel",))
    run(docs, reference, embedder, ("Henri Becquerel",))
    assert (out / "graph.json").read_bytes() == (reference / "graph.json").read_bytes()


def test_an_interrupted_first_build_shows_what_it_finished_marked_incomplete(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    out = tmp_path / "kg"
    with pytest.raises(KeyboardInterrupt):
        run(docs, out, embedder, ("Marie Curie",), backend=FakeGenerator(OUTPUTS, interrupt_on=3))
    assert manifest(out)["graph"]["complete"] is False and facts(out)


def test_an_interrupted_embedding_keeps_its_finished_batches(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kgrag.pipeline as pipeline_module

    class Stopping:
        dim = embedder.dim

        def __init__(self, stop_on: int | None) -> None:
            self.texts: list[str] = []
            self.calls = 0
            self.stop_on = stop_on

        def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> Any:
            self.calls += 1
            if self.calls == self.stop_on:
                raise KeyboardInterrupt
            self.texts += texts
            return embedder.encode(texts, batch_size)

    monkeypatch.setattr(pipeline_module, "EMBED_CHUNK", 4)
    out = tmp_path / "kg"
    first = Stopping(stop_on=3)
    pipeline = Pipeline(settings(), out, backend=FakeGenerator(OUTPUTS), embedder=first, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run([docs], ["Marie Curie"])
    assert FaissIndex(out / "index.faiss", embedder.dim).size == 8 == len(first.texts)  # two batches were saved
    again = Stopping(stop_on=None)
    pipeline = Pipeline(settings(), out, backend=FakeGenerator(OUTPUTS), embedder=again, show_progress=False)
    pipeline.run([docs], ["Marie Curie"])
    assert FaissIndex(out / "index.faiss", embedder.dim).size == 12
    assert not set(first.texts) & set(again.texts)  # no finished batch was embedded again


# -- 3. one writer -------------------------------------------------------------------------------------


def _hold_lock(out: Path) -> subprocess.Popen[str]:
    code = (
        "import sys, time; from kgrag.builddir import BuildDir\n"
        f"with BuildDir({str(out)!r}).lock('build'):\n"
        "    print('locked', flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_is_refused_with_one_line_naming_the_holder(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    out = tmp_path / "kg"
    run(docs, out, embedder, ("Marie Curie",))
    graph = (out / "graph.json").read_bytes()
    holder = _hold_lock(out)
    try:
        with pytest.raises(KgragError, match=rf"in use by a kgrag build \(pid {holder.pid} on .*, since ") as refused:
            run(docs, out, embedder, ("Henri Becquerel",))
        assert "\n" not in str(refused.value)
        result = CliRunner().invoke(app, ["push", str(out)])
        assert result.exit_code == 1 and f"pid {holder.pid}" in result.output
        assert (out / "graph.json").read_bytes() == graph and manifest(out)["status"] == "complete"
    finally:
        holder.kill()  # SIGKILL: the operating system releases the lock of a dead process
        holder.wait()
    assert run(docs, out, embedder, ("Henri Becquerel",)).status == "complete"
    assert not (out / ".lock.json").exists()


# -- real processes: signals and kills mid-build -------------------------------------------------------


def _worker(out: Path, docs: Path, progress: Path, *seeds: str, delay: float = 0.3) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(WORKER), str(out), str(docs), str(progress), "--delay", str(delay)]
    for seed in seeds:
        command += ["--seeds", seed]
    # Popen does not reset SIGINT; a test runner started in the background may have it ignored
    return subprocess.Popen(command, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_calls(progress: Path, calls: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if progress.exists() and progress.read_text() and int(progress.read_text()) >= calls:
            return
        assert process.poll() is None, "the build ended before it was to be stopped"
        time.sleep(0.05)
    raise AssertionError("the build did not get there in time")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill-9"])
def test_a_build_stopped_mid_way_keeps_the_last_graph_and_resumes(
    how: signal.Signals, docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    out, reference = tmp_path / "kg", tmp_path / "reference"
    for target in (out, reference):
        run(docs, target, embedder, ("Marie Curie",))
    graph = (out / "graph.json").read_bytes()
    progress = tmp_path / "progress"
    worker = _worker(out, docs, progress, "Henri Becquerel")
    _wait_for_calls(progress, 1, worker)
    stopped = time.monotonic()
    worker.send_signal(how)
    code = worker.wait(timeout=60)
    took = time.monotonic() - stopped
    assert code == (-signal.SIGKILL if how == signal.SIGKILL else 130)
    if how != signal.SIGKILL:
        assert took < 5, f"took {took:.1f} s to stop"
        assert manifest(out)["status"] == "interrupted"
    assert (out / "graph.json").read_bytes() == graph  # still the last complete graph
    assert KnowledgeGraph.open(out).lookup("Marie Curie") is not None
    assert not BuildDir(out).lock_info.exists() or how == signal.SIGKILL
    run(docs, out, embedder, ("Henri Becquerel",))  # the same build again completes it
    run(docs, reference, embedder, ("Henri Becquerel",))
    assert (out / "graph.json").read_bytes() == (reference / "graph.json").read_bytes()


# -- 6. fail fast, say why -----------------------------------------------------------------------------


@pytest.fixture
def no_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to load the embedder fails the test: these checks must come first."""
    import kgrag.pipeline as pipeline_module

    def refuse() -> None:
        raise AssertionError("the embedder was loaded before the check")

    monkeypatch.setattr(pipeline_module, "MiniLMEmbedder", refuse)


def test_an_unknown_model_fails_before_anything_loads(docs: Path, tmp_path: Path, no_embedder: None) -> None:
    started = time.monotonic()
    with pytest.raises(KgragError, match=r"unknown model 'no-such-model'.*qwen2\.5-0\.5b-conll04"):
        Pipeline(settings(model="no-such-model"), tmp_path / "kg", show_progress=False).run([docs], ["Marie Curie"])
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("files", "message"),
    [({}, "none of the inputs had readable text"), ({"dots.txt": "... !!! ..."}, "no passage")],
    ids=["empty-folder", "no-sentences"],
)
def test_inputs_without_passages_fail_before_the_embedder_loads(
    files: dict[str, str], message: str, tmp_path: Path, no_embedder: None
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    with pytest.raises(KgragError, match=message):
        Pipeline(settings(), tmp_path / "kg", backend=FakeGenerator(), show_progress=False).run([folder], ["X"])


def test_a_seed_no_passage_mentions_is_named(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = tmp_path / "kg"
    report = run(docs, out, embedder, ("Marie Curie", "Ada Lovelace"))
    assert report.seeds_not_found == ["Ada Lovelace"]
    assert manifest(out)["report"]["seeds_not_found"] == ["Ada Lovelace"]


def test_more_seeds_than_max_entities_says_which_are_expanded(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    report = run(docs, tmp_path / "kg", embedder, ("Marie Curie", "Pierre Curie", "Henri Becquerel"), max_entities=2)
    assert report.entities_expanded == ["Marie Curie", "Pierre Curie"]
    assert "3 seeds but --max-entities 2: expanding the first 2" in caplog.text


def test_a_build_without_facts_says_so(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    report = run(docs, tmp_path / "kg", embedder, ("Marie Curie",), backend=FakeGenerator(default=EMPTY))
    assert report.status == "complete" and report.warnings and "the graph is empty" in report.warnings[0]


def test_max_passages_caps_what_one_build_reads(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    backend = FakeGenerator(OUTPUTS)
    report = run(docs, tmp_path / "kg", embedder, ("Marie Curie",), backend=backend, max_passages=2, top_k=20)
    assert report.passages_read == 2 == backend.calls


def test_the_encoding_of_a_document_is_kept(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "old.txt").write_bytes("Marie Curie était née à Varsovie. Elle a étudié à Paris.".encode("cp1252"))
    out = tmp_path / "kg"
    run(folder, out, embedder, ("Marie Curie",))
    store = PassageStore(out / "passages.sqlite")
    try:
        doc_id = next(iter(store.sources()))
        document = store.document(doc_id)
    finally:
        store.close()
    assert document is not None and "née à Varsovie" in document.text
    assert document.encoding in {"cp1252", "iso8859-1"}


def test_builds_keep_no_temporary_files(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    out = tmp_path / "kg"
    run(docs, out, embedder, ("Marie Curie",))
    left = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".graph"))
    assert left == []
    assert not os.path.exists(out / ".lock.json")
    shutil.rmtree(out)


# -- the real CLI with the tiny real model -------------------------------------------------------------


def _cli(out: Path, docs: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from kgrag.cli import main; main()", "build", str(docs), "--out", str(out)]
    command += ["--model", "smollm2-135m", "--threads", "1", "--top-k", "2", "--max-entities", "2", *extra]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"COLUMNS": "400"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(condition: Any, process: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.model
def test_two_real_builds_into_one_directory(docs: Path, tmp_path: Path) -> None:
    """The second of two concurrent CLI builds stops at once with one line naming the first; the first
    completes undisturbed."""
    out = tmp_path / "kg"
    first = _cli(out, docs, "--seeds", "Marie Curie")
    _wait_for(lambda: (out / ".lock.json").exists(), first)
    second = _cli(out, docs, "--seeds", "Pierre Curie")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and f"(pid {first.pid} on " in lines[-1] and "Traceback" not in err
    assert first.wait(timeout=600) == 0
    assert manifest(out)["status"] == "complete" and manifest(out)["seeds"] == ["Marie Curie"]
    assert KnowledgeGraph.open(out).report.status == "complete"


@pytest.mark.model
def test_a_real_build_stopped_by_ctrl_c_resumes_to_the_same_graph(docs: Path, tmp_path: Path) -> None:
    out, reference = tmp_path / "kg", tmp_path / "reference"
    assert _cli(reference, docs, "--seeds", "Marie Curie").wait(timeout=600) == 0
    build = _cli(out, docs, "--seeds", "Marie Curie")
    _wait_for(lambda: cached_extractions(out) >= 1, build)
    sent = time.monotonic()
    build.send_signal(signal.SIGINT)
    _, err = build.communicate(timeout=60)
    assert build.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert time.monotonic() - sent < 5
    assert _cli(out, docs, "--seeds", "Marie Curie").wait(timeout=600) == 0
    assert (out / "graph.json").read_bytes() == (reference / "graph.json").read_bytes()


def test_a_long_build_says_how_long_and_how_to_shorten_it(
    tmp_path: Path, embedder: MiniLMEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    """The estimate needs no model: the bundled model's measured seconds per passage."""
    passages = PassageStore(tmp_path / "passages.sqlite")
    index = FaissIndex(tmp_path / "index.faiss", embedder.dim)
    try:
        short = Pipeline(settings(model="qwen2.5-1.5b", max_entities=2, top_k=3, hops=1), tmp_path / "kg")
        with caplog.at_level("INFO", logger="kgrag.pipeline"):
            short.estimate(passages, index, n_seeds=2)
        assert "up to 6 passages to read with the model (~61 s" in caplog.text
        assert "--max-passages" not in caplog.text
        long = Pipeline(settings(model="qwen2.5-1.5b", max_entities=100, top_k=8, hops=2), tmp_path / "kg")
        with caplog.at_level("INFO", logger="kgrag.pipeline"):
            long.estimate(passages, index, n_seeds=2)
        assert "this build may take 2.3 h" in caplog.text and "--max-passages N" in caplog.text
    finally:
        passages.close()
