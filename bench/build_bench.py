"""Build the bundled example from scratch, then again, and print where the time went.

    .venv/bin/python bench/build_bench.py [--model qwen2.5-0.5b] [--out /tmp/kgrag-bench]

Prints: wall time and its split (embedding, retrieval, model decode with its prefill share, the
rest), passages sent to the model, triples kept, and the re-run time as a fraction of the first.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from kgrag.config import Settings
from kgrag.pipeline import Pipeline
from kgrag.records import BuildReport

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "curie"


def run(settings: Settings, out: Path, seeds: list[str]) -> tuple[BuildReport, float]:
    started = time.perf_counter()
    report = Pipeline(settings, out, show_progress=False).run([EXAMPLE / "docs"], seeds)
    return report, time.perf_counter() - started


def show(label: str, report: BuildReport, wall: float) -> None:
    s = report.seconds
    decode = s.get("decode", 0.0)
    print(f"\n{label}: wall {wall:.1f} s")
    for part in ("embed", "retrieve", "decode", "other"):
        print(f"  {part:<9} {s.get(part, 0.0):8.1f} s  {100 * s.get(part, 0.0) / wall:5.1f} %")
    if decode:
        print(f"  prefill   {s.get('prefill', 0.0):8.1f} s  {100 * s.get('prefill', 0.0) / decode:5.1f} % of decode")
    print(
        f"  passages read {report.passages_read}, sent to the model {report.model_calls}, "
        f"invalid outputs {report.invalid_outputs}"
    )
    print(f"  entities expanded {len(report.entities_expanded)}, nodes {report.nodes}, triples kept {report.edges}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/kgrag-bench"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = {"model": args.model} if args.model else {}
    settings = Settings.load(EXAMPLE / "kgrag.yaml", **overrides)
    seeds = (EXAMPLE / "seeds.txt").read_text(encoding="utf-8").split("\n")
    shutil.rmtree(args.out, ignore_errors=True)
    first, first_wall = run(settings, args.out, seeds)
    show(f"first build ({settings.model}, {settings.n_threads} threads)", first, first_wall)
    again, again_wall = run(settings, args.out, seeds)
    show("identical re-run", again, again_wall)
    print(f"\nre-run / first = {again_wall / first_wall:.3f}")


if __name__ == "__main__":
    main()
