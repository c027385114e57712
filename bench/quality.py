"""Extraction quality on the dev sets (a benchmark, not a timed test).

Runs the ``kgrag eval`` harness on the first ``--limit`` examples of each dev set (a seeded random
sample of that size for WebNLG, whose dev file is sorted by category) with each model
and prints one table: dataset, model, P/R/F1 strict and normalized, examples/s. With ``--out`` each
run's JSON report and predictions are kept there for comparison and error analysis.

    .venv/bin/python bench/quality.py --limit 50
    .venv/bin/python bench/quality.py --limit 50 --models qwen2.5-0.5b qwen2.5-1.5b --datasets conll04
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from kgrag.config import Settings
from kgrag.evaluation.harness import EvalReport, evaluate_extraction

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SCHEMAS = ROOT / "schemas"
# dataset -> (dev file under the data folder, schema file names in order of preference)
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "conll04": ("conll04/dev.jsonl", ("conll04.yaml",)),
    "webnlg": ("webnlg/dev.jsonl", ("webnlg.yaml",)),
    "redocred": ("redocred/dev.jsonl", ("redocred.yaml", "default.yaml")),
}
DOCUMENT_LEVEL = {"redocred"}  # evaluated like build reads documents: cut into passages (eval --chunked)
SAMPLED = {"webnlg"}  # sorted by category (the first 50 dev texts are all Airport): a seeded random sample

logger = logging.getLogger("bench.quality")


def schema_for(dataset: str) -> Path:
    for name in DATASETS[dataset][1]:
        if (SCHEMAS / name).exists():
            return SCHEMAS / name
    raise SystemExit(f"no schema for {dataset} in {SCHEMAS}")


def run(dataset: str, model: str, limit: int, data_dir: Path, out: Path | None) -> EvalReport:
    path = data_dir / DATASETS[dataset][0]
    schema = schema_for(dataset)
    logger.info("%s with %s (%s, first %d examples)", dataset, model, schema.name, limit)
    settings = Settings(schema_path=schema, model=model)
    predictions = out / f"{dataset}-{model}.predictions.jsonl" if out else None
    sampled = dataset in SAMPLED
    report = evaluate_extraction(
        path,
        settings,
        limit=None if sampled else limit,
        sample=limit if sampled else None,
        predictions=predictions,
        chunked=dataset in DOCUMENT_LEVEL,
    )
    if out:
        (out / f"{dataset}-{model}.report.json").write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return report


def table(rows: list[tuple[str, str, EvalReport]], limit: int) -> Table:
    t = Table(
        "dataset", "model", "P", "R", "F1", "P norm.", "R norm.", "F1 norm.", "ex/s", "invalid",
        title=f"extraction quality, dev sets, first {limit} examples",
    )  # fmt: skip
    for dataset, model, r in rows:
        s, n = r.strict, r.normalized
        scores = [f"{x:.3f}" for x in (s.precision, s.recall, s.f1, n.precision, n.recall, n.f1)]
        mark = " (interrupted)" if r.interrupted else ""
        t.add_row(dataset, model + mark, *scores, f"{r.examples_per_s:.2f}", str(r.invalid))
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=50, help="first N examples of each dev set (default 50)")
    parser.add_argument("--models", nargs="+", default=["qwen2.5-0.5b"], help="bundled model names or .gguf paths")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=DATA, help=f"shared data folder (default {DATA})")
    parser.add_argument("--out", type=Path, default=None, help="folder for each run's report and predictions")
    args = parser.parse_args()
    console = Console()
    if not console.is_terminal:  # a pipe or file gets 80 columns by default: too narrow for the table
        console = Console(width=140)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, EvalReport]] = []
    for model in args.models:
        for dataset in args.datasets:
            report = run(dataset, model, args.limit, args.data_dir, args.out)
            rows.append((dataset, model, report))
            if report.interrupted:
                break
        if rows and rows[-1][2].interrupted:
            break
    console.print(table(rows, args.limit))


if __name__ == "__main__":
    main()
