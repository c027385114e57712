"""Kill a real build at random points, over and over, and check nothing is lost.

    python bench/chaos.py --runs 20 --seed 0

Builds the bundled example with the ``kgrag`` CLI and a real model (the tiny one by default: what
is measured here is the build directory, not the facts) in two stages: the example's seeds, then
the same directory again with one more seed (a cumulative build). Both are first run uninterrupted
as references. Then builds are launched into a third directory and stopped after a random delay
(seeded) by Ctrl-C (SIGINT), SIGTERM or kill -9, until ``--runs`` of them were stopped mid-way; a
launch that finishes first moves on to the next stage (after stage 1 the directory starts over).
After every launch graph.json must open, while stage 1 runs it must still be stage 0's complete
graph, and every completed stage must equal its reference byte for byte. It prints how long Ctrl-C
and SIGTERM took to stop a build, and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def command(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable, "-c", "from kgrag.cli import main; main()", "build", str(args.docs),
        "--seeds-file", str(args.seeds_file), "--out", str(out), "--model", args.model,
        "--threads", str(args.threads), "--hops", str(args.hops), "--max-entities", str(args.max_entities),
        "--top-k", str(args.top_k),
    ]  # fmt: skip


def start(args: argparse.Namespace, out: Path, log: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:  # SIGINT back to its default: a shell may start us with it ignored
        return subprocess.Popen(
            command(args, out) + extra,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def graph_state(out: Path) -> tuple[bytes | None, bool]:
    """graph.json's bytes (None when absent) and whether the manifest calls it complete."""
    graph = out / "graph.json"
    if not graph.exists():
        return None, False
    data = graph.read_bytes()
    json.loads(data)  # it must parse: a reader never sees half a file
    manifest = out / "manifest.json"
    complete = bool(json.loads(manifest.read_text()).get("graph", {}).get("complete")) if manifest.exists() else False
    return data, complete


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="stops that interrupt a running build")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=1, help="fixed, so every run decodes alike")
    parser.add_argument("--docs", type=Path, default=REPO / "examples" / "curie" / "docs")
    parser.add_argument("--seeds-file", type=Path, default=REPO / "examples" / "curie" / "seeds.txt")
    parser.add_argument("--more-seeds", default="Henri Becquerel", help="the seed the second, incremental build adds")
    parser.add_argument("--hops", type=int, default=2)
    parser.add_argument("--max-entities", type=int, default=4)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the build directories here (default: a temp dir)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="kgrag-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "builds.log"
    log.unlink(missing_ok=True)
    # stage 0 builds the seeds file's seeds; stage 1 adds --more-seeds to that build (a cumulative build)
    stages = [[], ["--seeds", args.more_seeds]]
    references = [work / "reference-0", work / "reference-1"]
    chaos = work / "chaos"
    for folder in (*references, chaos):
        shutil.rmtree(folder, ignore_errors=True)

    durations = []
    for i, extra in enumerate(stages):
        if i == 1:
            shutil.copytree(references[0], references[1])
        started = time.monotonic()
        if start(args, references[i], log, extra).wait() != 0:
            print(f"the reference build failed; see {log}")
            return 1
        durations.append(time.monotonic() - started)
        print(f"reference build, stage {i}: {durations[i]:.1f} s")

    rng = random.Random(args.seed)
    stops: dict[str, list[float]] = {name: [] for name in SIGNALS}
    failures: list[str] = []
    interrupted = completions = launches = 0
    stage = 0
    while interrupted < args.runs:
        launches += 1
        delay = rng.uniform(0.5, durations[stage])
        name = rng.choice(list(SIGNALS))
        process = start(args, chaos, log, stages[stage])
        try:
            code = process.wait(timeout=delay)
            outcome = f"stage {stage}: finished before {delay:.1f} s (exit {code})"
            if code != 0:
                failures.append(f"launch {launches}: {outcome}")
        except subprocess.TimeoutExpired:
            sent = time.monotonic()
            process.send_signal(SIGNALS[name])
            code = process.wait()
            took = time.monotonic() - sent
            interrupted += 1
            stops[name].append(took)
            outcome = f"stage {stage}: {name} at {delay:.1f} s, exit {code}, stopped in {took:.2f} s"
            # 130: kgrag stopped the build; -signal: the signal came before kgrag took over (start-up)
            if code not in (130, -SIGNALS[name]) or (name == "SIGKILL" and code != -signal.SIGKILL):
                failures.append(f"launch {launches}: {outcome}")
        try:
            data, complete = graph_state(chaos)
        except (OSError, ValueError) as exc:
            failures.append(f"launch {launches}: graph.json or manifest.json unreadable after {outcome}: {exc}")
            data, complete = None, False
        finished = code == 0 and complete
        if stage == 1 and not finished and data != references[0].joinpath("graph.json").read_bytes():
            failures.append(f"launch {launches}: the stage-0 graph was not kept while stage 1 ran ({outcome})")
        if finished:
            completions += 1
            if data != references[stage].joinpath("graph.json").read_bytes():
                failures.append(f"launch {launches}: stage {stage}'s graph differs from its uninterrupted build's")
            if stage == 1:
                shutil.rmtree(chaos)  # start over, so that the next stops hit a first build again
            stage = 1 - stage
        print(f"launch {launches:2d}: {outcome}; graph.json {'complete' if complete else 'absent or partial'}")

    if start(args, chaos, log, stages[stage]).wait() != 0:
        failures.append(f"the final build failed; see {log}")
    equal = (chaos / "graph.json").read_bytes() == references[stage].joinpath("graph.json").read_bytes()
    if not equal:
        failures.append("the final graph differs from the uninterrupted build's")
    completions += 1

    print()
    print(f"{interrupted} builds stopped mid-way (seed {args.seed}) in {launches} launches")
    for name, took in stops.items():
        if took:
            print(f"{name}: {len(took)} stops, median {statistics.median(took):.2f} s, max {max(took):.2f} s to exit")
    print(f"{completions} completed builds, each compared byte for byte with its uninterrupted reference")
    print(f"result: {'every graph equal, nothing lost' if not failures else f'{len(failures)} FAILURES'}")
    for failure in failures:
        print(f"FAILED {failure}")
    print(f"build directories and the builds' output: {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
